package model

import (
	"context"
	"slices"
	"testing"

	"fspo/tensor"
)

// TestGenerateSameOnTwoThreads: one sequence on 2 threads splits its
// attention over a Team; the tokens must be those of 1 thread.
func TestGenerateSameOnTwoThreads(t *testing.T) {
	m := loadStories(t)
	defer tensor.SetThreads(0)
	gen := func(threads int) []int {
		tensor.SetThreads(threads)
		out, err := m.Generate(context.Background(), []int{BOS, 403, 407}, GenOptions{MaxTokens: 300, Temperature: 0.8, Seed: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Tokens
	}
	one, two := gen(1), gen(2)
	if len(one) < 50 {
		t.Fatalf("only %d tokens generated", len(one))
	}
	if !slices.Equal(one, two) {
		t.Fatalf("2 threads generated %v,\nwant (1 thread) %v", two, one)
	}
}
