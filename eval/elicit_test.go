package eval

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"fspo/elicit"
)

// --elicitation on the fixture: every curve point with its interval, the
// candidate pairs are the users' records that are not queries, and the
// active order asks each pair once, the first of largest gain first.
func TestRunElicitation(t *testing.T) {
	f := newFixture(t)
	c := f.config(t.TempDir())
	c.Runs = map[string]string{FSPO: f.runs[FSPO], PrefFT: f.runs[PrefFT]}
	c.Elicitation, c.ElicitMembers = true, 3
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Elicitation
	if e == nil || e.Members != 3 || e.MeanPool <= 0 {
		t.Fatalf("elicitation %+v", e)
	}
	for _, strategy := range []string{Random, Active} {
		rates := map[string]map[string]float64{Random: e.Random, Active: e.Active}[strategy]
		for _, k := range ElicitLabels {
			key := strconv.Itoa(k)
			w, ci, kept := rates[key], e.CI95[strategy][key], e.ShotsKept[strategy][key]
			if w < 0 || w > 100 || ci[0] > w || ci[1] < w || kept > float64(k) || kept < 1 {
				t.Errorf("%s k=%d: win rate %v, interval %v, shots kept %v", strategy, k, w, ci, kept)
			}
		}
	}

	d, err := loadData(c)
	if err != nil {
		t.Fatal(err)
	}
	for u, recs := range d.test {
		pool := candidatePairs(d, u)
		queries := 0
		for _, ep := range d.episodes {
			if ep.User != u {
				continue
			}
			queries++
			for _, r := range pool {
				if r.Key() == ep.Query.Key() {
					t.Errorf("user %s: query %s is a candidate pair", u, r.Key())
				}
			}
		}
		if len(pool)+queries != len(recs) {
			t.Errorf("user %s: %d candidates + %d queries of %d records", u, len(pool), queries, len(recs))
		}
	}
	com, _ := elicit.NewCommittee([][]float64{{0.9, 0.5, 0.2, 0.6}, {0.1, 0.5, 0.8, 0.6}})
	order := activeOrder(com, 4)
	first, _ := com.Next(nil)
	seen := map[int]bool{}
	for _, j := range order {
		seen[j] = true
	}
	if len(order) != 4 || len(seen) != 4 || order[0] != first {
		t.Errorf("active order %v: want each of 4 pairs once, %d first", order, first)
	}
}

// --cot-descriptions 3 on the fixture: the COT model states one of its
// candidate descriptions and answers after it, for every query.
func TestRunCOTDescriptions(t *testing.T) {
	f := newFixture(t)
	c := f.config(t.TempDir())
	c.Runs = map[string]string{FSPOCOT: f.runs[FSPOCOT], PrefFT: f.runs[PrefFT]}
	c.COTDescriptions = 3
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := ReadSamples(filepath.Join(c.Out, SamplesJSONL))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range samples {
		if s.Method == FSPOCOT {
			n++
			if s.ParseError != "" {
				t.Errorf("query %s: %s", s.Query, s.ParseError)
			}
		}
	}
	if _, ok := rep.Winrates[FSPOCOT]; !ok || n != rep.Queries {
		t.Fatalf("fspo_cot: %d samples of %d queries, win rate present %v", n, rep.Queries, ok)
	}
}
