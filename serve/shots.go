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
	var prefs []store.Preference
	var err error
	switch strategy {
	case "recent":
		prefs, err = s.cfg.Store.Preferences(ctx, user, store.PrefQuery{Last: n})
	case "random":
		prefs, err = s.randomPreferences(ctx, user, n, seed)
	case "all-fit":
		prefs, err = s.newestWithin(ctx, user, s.cfg.ShotBudget)
	}
	if err != nil {
		return nil, err
	}
	if strategy == "all-fit" {
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

// minShotBytes is the smallest shot (three non-empty texts): all-fit never
// needs more than budget/minShotBytes+1 of the newest rows.
const minShotBytes = 3

// newestWithin reads user's newest preferences, oldest first, doubling the
// count read until they exceed budget bytes or run out: at most twice the
// rows all-fit can use.
func (s *Server) newestWithin(ctx context.Context, user string, budget int) ([]store.Preference, error) {
	for k := 8; ; k *= 2 {
		k = min(k, budget/minShotBytes+1)
		prefs, err := s.cfg.Store.Preferences(ctx, user, store.PrefQuery{Last: k})
		if err != nil {
			return nil, err
		}
		total := 0
		for _, p := range prefs {
			total += shotBytes(p)
		}
		if len(prefs) < k || total > budget || k == budget/minShotBytes+1 {
			return prefs, nil
		}
	}
}

// randomPreferences draws n of user's preferences at random (seeded),
// oldest first, reading only those n rows.
func (s *Server) randomPreferences(ctx context.Context, user string, n int, seed uint64) ([]store.Preference, error) {
	total, err := s.cfg.Store.CountPreferences(ctx, user, "")
	if err != nil {
		return nil, err
	}
	if total <= n {
		return s.cfg.Store.Preferences(ctx, user, store.PrefQuery{})
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	idx := rng.Perm(total)[:n]
	sort.Ints(idx)
	out := make([]store.Preference, 0, n)
	for _, i := range idx {
		p, err := s.cfg.Store.Preferences(ctx, user, store.PrefQuery{Offset: i, First: 1})
		if err != nil {
			return nil, err
		}
		out = append(out, p...) // empty when a row was deleted meanwhile
	}
	return out, nil
}
