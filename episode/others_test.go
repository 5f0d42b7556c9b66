package episode

import (
	"strings"
	"testing"

	"fspo/dataset"
)

func TestOthers(t *testing.T) {
	by := map[string][]dataset.Record{
		"a": {{User: "a", Prompt: "p", Chosen: "x", Rejected: "y"}, {User: "a", Prompt: "q", Chosen: "x", Rejected: "y", Description: "likes A"}},
		"b": {{User: "b", Prompt: "p", Chosen: "x", Rejected: "y", Description: "likes B"}},
		"c": {{User: "c", Prompt: "p", Chosen: "x", Rejected: "y", Description: "likes A"}}, // same text as a's
		"d": {{User: "d", Prompt: "p", Chosen: "x", Rejected: "y"}},
	}
	descs := Descriptions(by)
	if len(descs) != 3 || descs["a"] != "likes A" || descs["b"] != "likes B" {
		t.Fatalf("Descriptions = %v", descs)
	}
	o := NewOthers(descs)
	for seed := range int64(20) {
		ep := Episode{User: "a", Query: dataset.Record{User: "a", Prompt: "p", Chosen: "x", Rejected: "y", Description: "likes A"}}
		// Neither a itself nor c (same description) is eligible: always b.
		if got := o.For(ep, seed); got != "likes B" {
			t.Errorf("seed %d: For = %q, want %q", seed, got, "likes B")
		}
		ep.Query.RejectedDescription = ""
		text, err := Render(COT, Compact, ep, o.Option(ep, seed)...)
		if err != nil || !strings.HasPrefix(text.Rejected, "U: likes B\n") {
			t.Errorf("Render with Others.Option: %q, %v", text.Rejected, err)
		}
	}
	// Several eligible users: the draw depends on the seed and is repeatable.
	many := map[string]string{"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}
	o = NewOthers(many)
	ep := Episode{User: "a", Query: dataset.Record{User: "a", Prompt: "p", Chosen: "x", Rejected: "y", Description: "A"}}
	seen := map[string]int{}
	for seed := range int64(400) {
		d := o.For(ep, seed)
		if d != o.For(ep, seed) {
			t.Fatal("For is not deterministic")
		}
		seen[d]++
	}
	if len(seen) != 4 || seen["A"] != 0 {
		t.Errorf("draws over 400 seeds %v, want the four other users", seen)
	}
	if got := NewOthers(map[string]string{"a": "A"}).For(ep, 1); got != "" {
		t.Errorf("For with no other user = %q, want empty", got)
	}
	if opts := NewOthers(nil).Option(ep, 1); opts != nil {
		t.Errorf("Option with no other user = %v, want nil", opts)
	}
}
