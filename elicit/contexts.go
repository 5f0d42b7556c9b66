package elicit

import (
	"maps"
	"math/rand/v2"
	"slices"

	"fspo/dataset"
	"fspo/episode"
)

// DefaultMembers is the committee's default size.
const DefaultMembers = 8

// Contexts picks up to n users (in an order seeded by seed) with at least
// shots records and gives each a seeded few-shot context of that many
// (episode.Build's first episode): the plausible users a committee weighs
// against each other.
func Contexts(byUser map[string][]dataset.Record, n, shots int, seed int64) [][]dataset.Record {
	users := slices.Sorted(maps.Keys(byUser))
	rand.New(rand.NewPCG(uint64(seed), 0x656c69636974)).Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	var out [][]dataset.Record
	for _, u := range users {
		if len(out) == n {
			break
		}
		if eps := episode.Build(map[string][]dataset.Record{u: byUser[u]}, shots, 1, seed); len(eps) > 0 {
			out = append(out, eps[0].Shots)
		}
	}
	return out
}
