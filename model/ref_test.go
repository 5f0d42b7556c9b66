package model

import (
	"encoding/json"
	"math"
	"testing"

	"fspo/internal/testenv"
)

// loadStories loads the built-in stories260K checkpoint.
func loadStories(tb testing.TB) *Model {
	tb.Helper()
	m, err := LoadLlama2C(testenv.Model(tb).Checkpoint)
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
// (see models/stories260k/testdata/README.md).
func loadRefLogprobs(tb testing.TB) refLogprobs {
	var ref refLogprobs
	if err := json.Unmarshal(testenv.Reference(tb, "reference-logprobs.json"), &ref); err != nil {
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
