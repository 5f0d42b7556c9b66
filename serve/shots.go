package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"

	"fspo/store"
)

// Shot selection strategies: which of a user's stored preferences become
// the few-shot context of an answer (METHOD.md §2: N examples, oldest first).
var strategies = map[string]string{
	"recent":  "the N most recent preferences",
	"random":  "N preferences drawn at random (seeded by the request's seed)",
	"all-fit": "as many of the most recent preferences as fit the shot byte budget",
}

func shotBytes(p store.Preference) int { return len(p.Prompt) + len(p.Chosen) + len(p.Rejected) }

// selectShots returns the shots of user by strategy, oldest first.
func (s *Server) selectShots(ctx context.Context, user, strategy string, n int, seed uint64) ([]Shot, error) {
	if _, ok := strategies[strategy]; !ok {
		return nil, fmt.Errorf("unknown shot strategy %q", strategy)
	}
	if n <= 0 && strategy != "all-fit" {
		return nil, nil
	}
	q := store.PrefQuery{}
	if strategy == "recent" {
		q.Last = n
	}
	prefs, err := s.cfg.Store.Preferences(ctx, user, q)
	if err != nil {
		return nil, err
	}
	switch strategy {
	case "random":
		if len(prefs) > n {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			idx := rng.Perm(len(prefs))[:n]
			sort.Ints(idx)
			picked := make([]store.Preference, n)
			for i, j := range idx {
				picked[i] = prefs[j]
			}
			prefs = picked
		}
	case "all-fit":
		// Walk back from the newest and stop at the first that would overflow,
		// so the context is always a contiguous recent window.
		total, first := 0, len(prefs)
		for i := len(prefs) - 1; i >= 0; i-- {
			if total+shotBytes(prefs[i]) > s.cfg.ShotBudget {
				break
			}
			total += shotBytes(prefs[i])
			first = i
		}
		prefs = prefs[first:]
	}
	shots := make([]Shot, len(prefs))
	for i, p := range prefs {
		shots[i] = Shot{Prompt: p.Prompt, Chosen: p.Chosen, Rejected: p.Rejected}
	}
	return shots, nil
}
