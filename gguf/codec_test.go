package gguf_test

import (
	"slices"
	"strings"
	"testing"

	"fspo/gguf"
	"fspo/gguf/internal/reftest"
)

// TestCodecFromLlama2CVocabulary: a SentencePiece vocabulary written into
// GGUF metadata and read back tokenizes and decodes exactly as llama2.c's
// tokenizer it came from.
func TestCodecFromLlama2CVocabulary(t *testing.T) {
	path, _, want, err := reftest.Stories(t.TempDir(), gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := gguf.ReadTokenizerFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := meta.Codec()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range reftest.StoryTexts {
		ids := got.Encode(s, true)
		if w := want.Encode(s, true, false); !slices.Equal(ids, w) {
			t.Errorf("%q: ids %v, want %v", s, ids, w)
		}
		if d := got.DecodeIDs(ids, true); strings.TrimPrefix(d, " ") != s {
			t.Errorf("%q: decoded %q", s, d)
		}
	}
}

// TestCodecErrors: vocabularies this build cannot tokenize are errors that
// name the metadata key.
func TestCodecErrors(t *testing.T) {
	for _, c := range []struct {
		tok  gguf.Tokenizer
		want string
	}{
		{gguf.Tokenizer{Model: "bert"}, "tokenizer.ggml.model"},
		{gguf.Tokenizer{Model: "gpt2", Pre: "falcon"}, "tokenizer.ggml.pre"},
		{gguf.Tokenizer{Model: "gpt2", Pre: "qwen2", Tokens: []string{"a", "b"}, Merges: []string{"ab"}}, "tokenizer.ggml.merges[0]"},
		{gguf.Tokenizer{Model: "llama", BOS: 1, EOS: 2, Tokens: []string{"a"}, Scores: []float32{0}}, "tokenizer.ggml.tokens"},
	} {
		_, err := c.tok.Codec()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one naming %s", c.tok, err, c.want)
		}
	}
}

// TestWriteTokenizer: a tokenizer-only file reads back to the same metadata.
func TestWriteTokenizer(t *testing.T) {
	path, _, _, err := reftest.Stories(t.TempDir(), gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	want, err := gguf.ReadTokenizerFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want.ChatTemplate = "{{ messages[0].content }}"
	out := t.TempDir() + "/" + gguf.TokenizerFile
	if err := gguf.WriteTokenizer(out, want); err != nil {
		t.Fatal(err)
	}
	got, err := gguf.ReadTokenizerFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tokens, want.Tokens) || !slices.Equal(got.Scores, want.Scores) || got.ChatTemplate != want.ChatTemplate || got.BOS != want.BOS || got.Model != want.Model {
		t.Errorf("tokenizer changed in the round trip")
	}
}
