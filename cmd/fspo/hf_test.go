package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stories260K converted to a Hugging Face folder (F32) scores exactly as
// the llama2.c file; the folder converts on to BF16, keeping its tokenizer.
func TestConvertToHuggingFaceFolder(t *testing.T) {
	p := sharedModel(t)
	dir := filepath.Join(t.TempDir(), "stories-hf")
	if _, _, err := runCLI(t, "convert", "--model", p.Checkpoint, "--out", dir); err != nil {
		t.Fatal(err)
	}
	want, _, err := runCLI(t, "score", "--model", p.Checkpoint, "--text", "The cat sat.", "--json")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := runCLI(t, "score", "--model", dir, "--text", "The cat sat.", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Hugging Face folder scores differently:\n%s\n%s", got, want)
	}
	bf := filepath.Join(t.TempDir(), "stories-bf16")
	if _, _, err := runCLI(t, "convert", "--model", dir, "--out", bf, "--dtype", "bf16"); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(bf, "config.json"))
	if err != nil || !strings.Contains(string(cfg), `"torch_dtype": "bfloat16"`) {
		t.Errorf("config %s, %v", cfg, err)
	}
	if _, _, err := runCLI(t, "score", "--model", bf, "--text", "The cat sat.", "--json"); err != nil {
		t.Error(err)
	}
	if _, _, err := runCLI(t, "convert", "--model", dir, "--out", bf, "--dtype", "i8"); err == nil || !strings.Contains(err.Error(), "--dtype") {
		t.Errorf("--dtype i8: %v", err)
	}
}

func TestHuggingFaceFolderWithoutTokenizer(t *testing.T) {
	_, _, err := runCLI(t, "score", "--model", "../../hf/testdata/tiny/qwen3", "--text", "x")
	if err == nil || !strings.Contains(err.Error(), "tokenizer.json is not supported yet") {
		t.Errorf("error %v", err)
	}
}
