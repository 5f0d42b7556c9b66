package episode

import (
	"strings"
	"testing"

	"fspo/dataset"
)

func whitespace(s string) int { return len(strings.Fields(s)) }

func TestMeasure(t *testing.T) {
	// Five zero-shot episodes whose prompt+completion have 3..7 words
	// ("Q: x" is 2 words, "A+: y…" is 1 + k words, k = 0..4 extra words).
	var eps []Episode
	for k := range 5 {
		y := "y" + strings.Repeat(" w", k)
		eps = append(eps, Episode{User: "u", Query: dataset.Record{User: "u", Prompt: "x", Chosen: y, Rejected: "n"}})
	}
	got, err := Measure(eps, ZeroShot, Compact, whitespace)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Episodes: 5, Min: 4, P50: 6, P95: 8, Max: 8, Mean: 6}
	if got != want {
		t.Errorf("Measure = %+v, want %+v", got, want)
	}
	if s, err := Fit(eps, ZeroShot, Compact, whitespace, 8); err != nil || s != want {
		t.Errorf("Fit(8) = %+v, %v; want no error", s, err)
	}
	_, err = Fit(eps, ZeroShot, Compact, whitespace, 6)
	if err == nil || !strings.HasPrefix(err.Error(), "2 of 5 episodes (zero-shot, compact layout) are longer than the 6-token context") {
		t.Errorf("Fit(6): %v", err)
	}
	if _, err := Measure(eps, Oracle, Compact, whitespace); err == nil || !strings.HasPrefix(err.Error(), "episode 0: oracle template") {
		t.Errorf("Measure of oracle episodes without descriptions: %v", err)
	}
	if s, err := Measure(nil, Plain, Paper, whitespace); err != nil || s.Episodes != 0 {
		t.Errorf("Measure(nil) = %+v, %v", s, err)
	}
}

func TestMeasureUsesLongerCompletion(t *testing.T) {
	ep := Episode{User: "u", Query: dataset.Record{User: "u", Prompt: "x", Chosen: "a", Rejected: "b c d e"}}
	s, err := Measure([]Episode{ep}, ZeroShot, Compact, whitespace)
	if err != nil {
		t.Fatal(err)
	}
	if s.Max != 7 { // "Q: x A+: b c d e"
		t.Errorf("length %d, want 7 (the rejected completion is longer)", s.Max)
	}
}

func TestSummarizePercentiles(t *testing.T) {
	lens := make([]int, 100)
	for i := range lens {
		lens[i] = 100 - i // 100..1, unsorted
	}
	s := summarize(lens)
	if s.P50 != 50 || s.P95 != 95 || s.Min != 1 || s.Max != 100 || s.Mean != 50.5 {
		t.Errorf("summarize(1..100) = %+v", s)
	}
}
