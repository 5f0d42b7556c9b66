package episode

import (
	"fmt"
	"reflect"
	"testing"

	"fspo/dataset"
)

// records makes counts[u] records for each user u.
func records(counts map[string]int) map[string][]dataset.Record {
	by := map[string][]dataset.Record{}
	for u, n := range counts {
		for i := range n {
			by[u] = append(by[u], dataset.Record{User: u, Prompt: fmt.Sprintf("%s q%d", u, i),
				Chosen: fmt.Sprintf("%s good%d", u, i), Rejected: fmt.Sprintf("%s bad%d", u, i)})
		}
	}
	return by
}

func TestBuildWindows(t *testing.T) {
	by := records(map[string]int{"bob": 11, "alice": 9, "carol": 2})
	for _, tc := range []struct {
		n, passes int
		want      map[string]int // episodes per user
	}{
		{n: 4, passes: 1, want: map[string]int{"alice": 1, "bob": 2}},
		{n: 2, passes: 3, want: map[string]int{"alice": 9, "bob": 9}},
		{n: 0, passes: 2, want: map[string]int{"alice": 18, "bob": 22, "carol": 4}},
		{n: 1, passes: TrainPasses(1), want: map[string]int{"alice": 16, "bob": 20, "carol": 4}},
		{n: 10, passes: 1, want: map[string]int{"bob": 1}},
		{n: 11, passes: 5, want: map[string]int{}},
	} {
		t.Run(fmt.Sprintf("n=%d,passes=%d", tc.n, tc.passes), func(t *testing.T) {
			eps := Build(by, tc.n, tc.passes, 1)
			got := map[string]int{}
			prev := ""
			for _, ep := range eps {
				got[ep.User]++
				if ep.User < prev {
					t.Fatalf("users out of order: %s after %s", ep.User, prev)
				}
				prev = ep.User
				if len(ep.Shots) != tc.n {
					t.Fatalf("%d shots, want %d", len(ep.Shots), tc.n)
				}
				for _, s := range append(ep.Shots, ep.Query) {
					if s.User != ep.User {
						t.Fatalf("episode of %s holds a record of %s", ep.User, s.User)
					}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("episodes per user %v, want %v", got, tc.want)
			}
			// Within one pass, windows are disjoint: each user's records
			// appear at most once, and exactly (m / (n+1)) * (n+1) of them.
			perPass := map[string]int{}
			for u, c := range tc.want {
				perPass[u] = c / tc.passes
			}
			i := 0
			for _, u := range []string{"alice", "bob", "carol"} {
				for range tc.passes {
					seen := map[string]bool{}
					for range perPass[u] {
						ep := eps[i]
						i++
						for _, r := range append(ep.Shots, ep.Query) {
							if seen[r.Prompt] {
								t.Fatalf("user %s: record %q in two windows of one pass", u, r.Prompt)
							}
							seen[r.Prompt] = true
						}
					}
					if want := perPass[u] * (tc.n + 1); len(seen) != want {
						t.Errorf("user %s: a pass covers %d records, want %d", u, len(seen), want)
					}
				}
			}
		})
	}
}

func TestBuildZeroShotCoversEveryRecord(t *testing.T) {
	by := records(map[string]int{"a": 7})
	eps := Build(by, 0, EvalPasses, 3)
	seen := map[string]bool{}
	for _, ep := range eps {
		if ep.Shots != nil {
			t.Errorf("zero-shot episode has shots %v", ep.Shots)
		}
		seen[ep.Query.Prompt] = true
	}
	if len(eps) != 7 || len(seen) != 7 {
		t.Errorf("%d episodes over %d distinct queries, want 7 and 7", len(eps), len(seen))
	}
}

func TestBuildDeterministic(t *testing.T) {
	by := records(map[string]int{"a": 20, "b": 13})
	a := Build(by, 3, 4, 42)
	b := Build(by, 3, 4, 42)
	if !reflect.DeepEqual(a, b) {
		t.Error("same seed gave different episodes")
	}
	// Input order does not matter.
	rev := map[string][]dataset.Record{}
	for u, rs := range by {
		for i := len(rs) - 1; i >= 0; i-- {
			rev[u] = append(rev[u], rs[i])
		}
	}
	if !reflect.DeepEqual(a, Build(rev, 3, 4, 42)) {
		t.Error("episodes depend on the order of the input records")
	}
	if reflect.DeepEqual(a, Build(by, 3, 4, 43)) {
		t.Error("different seeds gave the same episodes")
	}
	// Passes are shuffled independently: the first pass differs from the second.
	first, second := a[:5], a[5:10]
	if reflect.DeepEqual(first, second) {
		t.Error("two passes gave the same windows")
	}
	// Pinned: the generator is this package's own, so the order never changes
	// with the Go release. Recorded from this implementation at seed 42.
	var got []string
	for _, ep := range a[:3] {
		got = append(got, ep.Query.Prompt)
	}
	want := []string{"a q8", "a q0", "a q14"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("first queries %q, want %q", got, want)
	}
}

func TestRNG(t *testing.T) {
	// SplitMix64 from state 0: the first outputs published with the
	// reference implementation (https://prng.di.unimi.it/splitmix64.c).
	r := &rng{0}
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	for i, w := range want {
		if got := r.next(); got != w {
			t.Errorf("output %d = %#x, want %#x", i, got, w)
		}
	}
	// intn is uniform enough: each of 6 faces within 5% of 1/6 over 60k draws.
	r = &rng{7}
	var counts [6]int
	for range 60000 {
		counts[r.intn(6)]++
	}
	for f, c := range counts {
		if c < 9500 || c > 10500 {
			t.Errorf("face %d drawn %d times of 60000", f, c)
		}
	}
}

func TestTrainPasses(t *testing.T) {
	for n, want := range map[int]int{0: 2, 4: 10, 8: 18} {
		if got := TrainPasses(n); got != want {
			t.Errorf("TrainPasses(%d) = %d, want %d", n, got, want)
		}
	}
}
