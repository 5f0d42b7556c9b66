// Package episode builds few-shot episodes from a user's preference records
// and renders them as text (METHOD.md §2; Singh et al. 2025, "FSPO",
// arXiv 2502.19312, §3): N of the user's (question, preferred,
// dispreferred) examples in the prompt, then a new question whose preferred
// response is the completion.
package episode

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"fspo/dataset"
)

// Episode is one few-shot context: N shots of one user and a query record
// of the same user that is not among the shots.
type Episode struct {
	User  string
	Shots []dataset.Record
	Query dataset.Record
}

// EvalPasses is the number of passes over each user's records for
// evaluation: every record is a query at most once.
const EvalPasses = 1

// TrainPasses is the number of passes for training with n shots: 2(N+1),
// so each record appears in many contexts (METHOD.md §2).
func TrainPasses(n int) int { return 2 * (n + 1) }

// Build makes the episodes of every user, users in sorted order. For each
// pass, a user's records are shuffled with a generator seeded from (seed,
// user, pass) and cut into disjoint windows of n+1 records, dropping the
// remainder; in each window the first n are the shots and the last the
// query. n = 0 makes zero-shot episodes: every record is a query once per
// pass. Before shuffling, a user's records are put in the order of their
// keys (dataset.Record.Key), so the result depends on the records, not on
// the order they were read in. A user with fewer than n+1 records gets no
// episodes (dataset.Validate reports such users).
//
// Build panics if n < 0, like an index out of range: callers validate the
// number of shots where it is read.
func Build(byUser map[string][]dataset.Record, n, passes int, seed int64) []Episode {
	if n < 0 {
		panic(fmt.Sprintf("episode.Build: %d shots", n))
	}
	users := slices.Sorted(maps.Keys(byUser))
	var eps []Episode
	for _, u := range users {
		recs := sortedByKey(byUser[u])
		for pass := range passes {
			perm := slices.Clone(recs)
			shuffle(perm, newRNG(seed, u, pass))
			for i := 0; i+n < len(perm); i += n + 1 {
				ep := Episode{User: u, Query: perm[i+n]}
				if n > 0 {
					ep.Shots = perm[i : i+n : i+n]
				}
				eps = append(eps, ep)
			}
		}
	}
	return eps
}

func sortedByKey(recs []dataset.Record) []dataset.Record {
	type keyed struct {
		key string
		rec dataset.Record
	}
	ks := make([]keyed, len(recs))
	for i, r := range recs {
		ks[i] = keyed{r.Key(), r}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := make([]dataset.Record, len(recs))
	for i, k := range ks {
		out[i] = k.rec
	}
	return out
}

// rng is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
// number generators", OOPSLA 2014), written out here so that episodes stay
// the same across Go releases whatever math/rand does.
type rng struct{ state uint64 }

// newRNG seeds a generator from SHA-256(seed, pass, user).
func newRNG(seed int64, user string, pass int) *rng {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(pass))
	sum := sha256.Sum256(append(b[:], user...))
	return &rng{binary.LittleEndian.Uint64(sum[:8])}
}

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n) by Lemire's multiply-and-reject
// method ("Fast random integer generation in an interval", ACM TOMACS 2019).
func (r *rng) intn(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}

// shuffle is the Fisher–Yates shuffle (Knuth, TAOCP vol. 2, Algorithm P).
func shuffle[T any](s []T, r *rng) {
	for i := len(s) - 1; i > 0; i-- {
		j := r.intn(uint64(i + 1))
		s[i], s[j] = s[j], s[i]
	}
}
