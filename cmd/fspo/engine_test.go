package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/internal/testenv"
	"fspo/modelpath"
)

// sharedModel returns the repository's stories260K, the model the tests
// share; its reference outputs come from testenv.Reference.
func sharedModel(t *testing.T) modelpath.Paths {
	t.Helper()
	return testenv.Model(t)
}

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader(""), Getenv: os.Getenv}
	err := Run(context.Background(), env, args)
	return out.String(), errb.String(), err
}

func TestGenerateReproducesLlama2cGreedy(t *testing.T) {
	p := sharedModel(t)
	for _, tc := range []struct {
		ref  string
		args []string
	}{
		{"reference-greedy-n64.txt", []string{"--steps", "64"}},
		{"reference-greedy-cat-n100.txt", []string{"--steps", "100", "--prompt", "Once upon a time, there was a cat"}},
	} {
		want := testenv.Reference(t, tc.ref)
		got, _, err := runCLI(t, append([]string{"generate", "--model", p.Checkpoint, "--temperature", "0"}, tc.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s: got\n%q\nwant\n%q", tc.ref, got, want)
		}
	}
}

func TestScoreJSONMatchesReference(t *testing.T) {
	p := sharedModel(t)
	raw := testenv.Reference(t, "reference-logprobs.json")
	var ref struct {
		Cases []struct {
			Text     string    `json:"text"`
			Tokens   []int     `json:"tokens"`
			Logprobs []float64 `json:"next_token_logprobs"`
			Sum      float64   `json:"sum_logprob"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for _, tc := range ref.Cases {
		out, _, err := runCLI(t, "score", "--model", p.Checkpoint, "--text", tc.Text, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var got scoreResult
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("score output %q: %v", out, err)
		}
		if len(got.Tokens) != len(tc.Tokens) {
			t.Fatalf("%q: tokens %v, want %v", tc.Text, got.Tokens, tc.Tokens)
		}
		for i := range tc.Tokens {
			if got.Tokens[i] != tc.Tokens[i] {
				t.Fatalf("%q: tokens %v, want %v", tc.Text, got.Tokens, tc.Tokens)
			}
		}
		maxDiff := 0.0
		for i, lp := range tc.Logprobs {
			maxDiff = math.Max(maxDiff, math.Abs(float64(got.Logprobs[i])-lp))
		}
		if maxDiff > 1e-4 || math.Abs(got.Sum-tc.Sum) > 1e-3 {
			t.Errorf("%q: max |logprob diff| %.2e, sum %.6f vs %.6f", tc.Text, maxDiff, got.Sum, tc.Sum)
		}
		t.Logf("%q: max |logprob - reference| = %.2e", tc.Text, maxDiff)
	}
}

func TestBadInputErrors(t *testing.T) {
	p := sharedModel(t)
	long := strings.Repeat("the cat and the dog ", 200)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"prompt too long", []string{"generate", "--model", p.Checkpoint, "--prompt", long}, "context"},
		{"score too long", []string{"score", "--model", p.Checkpoint, "--text", long}, "context"},
		{"missing model", []string{"score", "--model", "/nonexistent/m.bin", "--text", "x"}, "nonexistent"},
		{"unknown flag", []string{"score", "--bogus"}, "bogus"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	} {
		_, _, err := runCLI(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestConvertRoundTrip: llama2.c → fspo → llama2.c keeps every weight, and
// the converted model scores a text exactly as the original.
func TestConvertRoundTrip(t *testing.T) {
	p := sharedModel(t)
	dir := t.TempDir()
	own := filepath.Join(dir, "m.fspo")
	back := filepath.Join(dir, "stories260K.bin")
	if _, _, err := runCLI(t, "convert", "--model", p.Checkpoint, "--out", own); err != nil {
		t.Fatal(err)
	}
	// the tokenizer must sit beside the converted checkpoint for --model to find it
	tokBytes, err := os.ReadFile(p.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, filepath.Base(p.Tokenizer)), tokBytes, 0o644)
	if _, _, err := runCLI(t, "convert", "--model", own, "--out", back); err != nil {
		t.Fatal(err)
	}
	a, _, err := runCLI(t, "score", "--model", p.Checkpoint, "--text", "The cat sat.", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{own, back} {
		b, _, err := runCLI(t, "score", "--model", m, "--text", "The cat sat.", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Errorf("%s scores differently:\n%s\n%s", m, a, b)
		}
	}
}

func TestTokenizerVocabMismatch(t *testing.T) {
	p := sharedModel(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(p.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	// keep the first 300 tokens of the 512: a tokenizer of another model
	off := 4
	for i := 0; i < 300; i++ {
		n := int(raw[off+4]) | int(raw[off+5])<<8 | int(raw[off+6])<<16 | int(raw[off+7])<<24
		off += 8 + n
	}
	os.WriteFile(filepath.Join(dir, "tok512.bin"), raw[:off], 0o644)
	ck, _ := os.ReadFile(p.Checkpoint)
	os.WriteFile(filepath.Join(dir, "m.bin"), ck, 0o644)
	_, _, err = runCLI(t, "score", "--model", filepath.Join(dir, "m.bin"), "--text", "hi")
	if err == nil || !strings.Contains(err.Error(), "vocab") {
		t.Fatalf("error %v, want a vocabulary size mismatch", err)
	}
}
