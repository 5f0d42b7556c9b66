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

	"fspo/modelpath"
)

// sharedModel finds stories260K and its reference outputs (made by the
// upstream llama2.c C implementation; see the README beside them).
func sharedModel(t *testing.T) modelpath.Paths {
	t.Helper()
	p, err := modelpath.FindDefault()
	if err != nil {
		t.Skipf("stories260K not available: %v", err)
	}
	return p
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
	dir := filepath.Dir(p.Checkpoint)
	for _, tc := range []struct {
		ref  string
		args []string
	}{
		{"reference-greedy-n64.txt", []string{"--steps", "64"}},
		{"reference-greedy-cat-n100.txt", []string{"--steps", "100", "--prompt", "Once upon a time, there was a cat"}},
	} {
		want, err := os.ReadFile(filepath.Join(dir, tc.ref))
		if err != nil {
			t.Fatal(err)
		}
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
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(p.Checkpoint), "reference-logprobs.json"))
	if err != nil {
		t.Fatal(err)
	}
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
