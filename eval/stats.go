package eval

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
)

// Cell is a win rate (or an accuracy) in percent with its 95% bootstrap
// interval, over N judged items from Users users.
type Cell struct {
	Rate  float64    `json:"rate"`
	CI95  [2]float64 `json:"ci95"`
	N     int        `json:"n"`
	Users int        `json:"users"`
}

// Scored is one judged item's score (1 win, 0.5 tie, 0 loss) and its user.
type Scored struct {
	User  string
	Score float64
}

// Bootstrap is the mean score in percent with a percentile bootstrap 95%
// interval over users (Efron and Tibshirani, "An Introduction to the
// Bootstrap", 1993, §13.3): each of resamples draws len(users) users with
// replacement and pools all their items; the interval is the 2.5th and
// 97.5th percentiles of the resampled means (linear interpolation between
// order statistics, Hyndman and Fan 1996, definition 7). Resampling users,
// not items, accounts for the items of one user being correlated. The
// draws come from a generator seeded by (seed, stream), so one cell's
// interval does not depend on which other cells were computed. An empty
// input gives NaN everywhere.
func Bootstrap(items []Scored, resamples int, seed int64, stream string) Cell {
	if len(items) == 0 {
		nan := math.NaN()
		return Cell{Rate: nan, CI95: [2]float64{nan, nan}}
	}
	sum := map[string]float64{}
	cnt := map[string]int{}
	var total float64
	for _, it := range items {
		sum[it.User] += it.Score
		cnt[it.User]++
		total += it.Score
	}
	users := make([]string, 0, len(sum))
	for u := range sum {
		users = append(users, u)
	}
	sort.Strings(users)
	us := make([]float64, len(users))
	uc := make([]float64, len(users))
	for i, u := range users {
		us[i], uc[i] = sum[u], float64(cnt[u])
	}
	rng := rand.New(rand.NewPCG(uint64(seed), streamID(stream)))
	means := make([]float64, resamples)
	for b := range means {
		var s, n float64
		for range users {
			k := rng.IntN(len(users))
			s += us[k]
			n += uc[k]
		}
		means[b] = 100 * s / n
	}
	sort.Float64s(means)
	return Cell{
		Rate:  100 * total / float64(len(items)),
		CI95:  [2]float64{quantile(means, 0.025), quantile(means, 0.975)},
		N:     len(items),
		Users: len(users),
	}
}

// quantile is the p-quantile of sorted xs by linear interpolation between
// order statistics (Hyndman and Fan 1996, definition 7; numpy's default).
func quantile(xs []float64, p float64) float64 {
	h := p * float64(len(xs)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[lo] + (h-float64(lo))*(xs[lo+1]-xs[lo])
}

func streamID(s string) uint64 {
	h := sha256.Sum256([]byte(s))
	return binary.LittleEndian.Uint64(h[:8])
}
