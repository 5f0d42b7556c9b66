package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// sharedModelDir finds ../shared/models/stories260K from the working
// directory or one of its parents.
func sharedModelDir(tb testing.TB) string {
	tb.Helper()
	dir, _ := os.Getwd()
	for {
		cand := filepath.Join(dir, "..", "shared", "models", "stories260K")
		if _, err := os.Stat(filepath.Join(cand, "stories260K.bin")); err == nil {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("stories260K not found in ../shared/models above the working directory")
		}
		dir = parent
	}
}

func loadStories(tb testing.TB) *Model {
	tb.Helper()
	m, err := LoadLlama2C(filepath.Join(sharedModelDir(tb), "stories260K.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

type refLogprobs struct {
	Cases []struct {
		Text     string    `json:"text"`
		Tokens   []int     `json:"tokens"`
		Logprobs []float64 `json:"next_token_logprobs"`
		Sum      float64   `json:"sum_logprob"`
	} `json:"cases"`
}

// reference-logprobs.json was made by the upstream llama2.c C implementation
// (see the README beside it).
func loadRefLogprobs(tb testing.TB) refLogprobs {
	raw, err := os.ReadFile(filepath.Join(sharedModelDir(tb), "reference-logprobs.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var ref refLogprobs
	if err := json.Unmarshal(raw, &ref); err != nil {
		tb.Fatal(err)
	}
	return ref
}

func TestCachedForwardMatchesReferenceLogprobs(t *testing.T) {
	m := loadStories(t)
	for _, tc := range loadRefLogprobs(t).Cases {
		cache := m.NewCache()
		logits := make([]float32, m.Config.Vocab)
		maxDiff := 0.0
		for i := 0; i+1 < len(tc.Tokens); i++ {
			if err := m.Forward([]Step{{Cache: cache, Tokens: tc.Tokens[i : i+1], Logits: logits}}); err != nil {
				t.Fatal(err)
			}
			lp, _ := logSoftmaxAt(logits, make([]float32, len(logits)), tc.Tokens[i+1])
			maxDiff = math.Max(maxDiff, math.Abs(float64(lp)-tc.Logprobs[i]))
		}
		if maxDiff > 1e-4 {
			t.Errorf("%q: max |logprob - reference| = %.2e, want <= 1e-4", tc.Text, maxDiff)
		}
	}
}
