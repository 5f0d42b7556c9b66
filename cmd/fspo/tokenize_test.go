package main

import (
	"encoding/json"
	"fspo/internal/testenv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hfFolder unpacks the real Llama 2 tokenizer files of tokenizer/hf/testdata
// into a model folder.
func hfFolder(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	data, cfg := testenv.HFTokenizer(t, name)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTokenizeHFFolder(t *testing.T) {
	dir := hfFolder(t, "llama2")
	// Ids from Hugging Face tokenizers: tokenizer/hf/testdata/llama2/golden.json.
	for _, tc := range []struct {
		args []string
		want tokenizeResult
	}{
		{[]string{"--text", "Hello world"}, tokenizeResult{[]int{1, 22557, 1526}, "<s> Hello world"}},
		{[]string{"--raw", "--text", "Hello world"}, tokenizeResult{[]int{22557, 1526}, "Hello world"}},
	} {
		out, _, err := runCLI(t, append([]string{"tokenize", "--json", "--model", dir}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var got tokenizeResult
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if !slices.Equal(got.IDs, tc.want.IDs) || got.Text != tc.want.Text {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestTokenizeBadFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model":{"type":"WordPiece"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "tokenize", "--model", dir, "--text", "x")
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json") || !strings.Contains(err.Error(), "model.type") {
		t.Fatalf("error %v, want one naming tokenizer.json and model.type", err)
	}
}

func TestRenderQwen3(t *testing.T) {
	dir := hfFolder(t, "qwen3")
	msgs := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(msgs, []byte(`[{"role": "user", "content": "Hello!"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "render", "--model", dir, "--messages", msgs, "--add-generation-prompt")
	if err != nil {
		t.Fatal(err)
	}
	// From tokenizer/chat/testdata/golden.json (@huggingface/jinja).
	if want := "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, _, err := runCLI(t, "render", "--model", t.TempDir(), "--messages", msgs); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("missing config: error %v, want one naming tokenizer_config.json", err)
	}
}
