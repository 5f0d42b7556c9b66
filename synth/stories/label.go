package stories

import (
	"fspo/pref"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"fspo/dataset"
)

// UserStats summarises one user's labels.
type UserStats struct {
	ID    string `json:"id"`
	Kind  Kind   `json:"kind"`
	Pairs int    `json:"pairs"` // labelled pairs written
	// Ties is how many drawn pairs were dropped because their reward margin
	// was below MinMargin.
	Ties    int `json:"ties"`
	Flipped int `json:"flipped"` // labels reversed by the Bradley–Terry noise
	// LabelEntropy is the mean binary entropy (nats) of the labels written:
	// H(σ(|Δr|/Noise)) per pair, 0 without noise.
	LabelEntropy float64 `json:"label_entropy"`
	// Undecided is the share of all candidate pairs on the user's openings
	// whose margin is below MinMargin: how often the profile cannot decide.
	Undecided  float64 `json:"undecided"`
	MeanMargin float64 `json:"mean_margin"` // mean |Δr| of the pairs written
	Short      bool    `json:"short"`       // fewer pairs than PairsPerUser cleared the margin
}

// byPrompt groups candidate indices by prompt index.
func byPrompt(cands []Candidate) map[int][]int {
	g := map[int][]int{}
	for i, c := range cands {
		g[c.PromptIndex] = append(g[c.PromptIndex], i)
	}
	return g
}

// promptKeys returns the prompt indices of groups in increasing order.
func promptKeys(groups map[int][]int) []int {
	keys := make([]int, 0, len(groups))
	for p := range groups {
		keys = append(keys, p)
	}
	sort.Ints(keys)
	return keys
}

// binaryEntropy is −p ln p − (1−p) ln(1−p), in nats.
func binaryEntropy(p float64) float64 {
	if p <= 0 || p >= 1 {
		return 0
	}
	return -p*math.Log(p) - (1-p)*math.Log(1-p)
}

// labelUser draws the user's labelled pairs: openings in a seeded random
// order, round robin, and for each a random unused pair of that opening's
// candidates; a pair is kept when the user's reward margin |Δr| is at least
// opt.MinMargin (closer pairs are dropped as ties). The higher-reward
// response is chosen; with opt.Noise > 0 the label is instead drawn from the
// Bradley–Terry model P(a ≻ b) = σ((r_a − r_b)/Noise) (Bradley & Terry
// 1952). Train users get pairs on training openings, every other kind on
// held-out openings.
func labelUser(u *Profile, cands []Candidate, rewards []float64, groups map[int][]int, opt *Options) ([]dataset.Record, UserStats) {
	st := UserStats{ID: u.ID, Kind: u.Kind}
	prompts := userOpenings(u, cands, groups)
	st.Undecided = undecidedShare(prompts, groups, rewards, opt.MinMargin)
	if len(prompts) == 0 {
		st.Short = opt.PairsPerUser > 0
		return nil, st
	}
	var h uint64
	for _, c := range u.ID {
		h = mix(h ^ uint64(c))
	}
	rng := rand.New(rand.NewPCG(mix(uint64(opt.Seed)), h))
	rng.Shuffle(len(prompts), func(i, j int) { prompts[i], prompts[j] = prompts[j], prompts[i] })
	used := map[[2]int]bool{}
	var recs []dataset.Record
	var entropy, margin float64
	for k, tries := 0, 0; len(recs) < opt.PairsPerUser && tries < 100*opt.PairsPerUser; k, tries = k+1, tries+1 {
		idx := groups[prompts[k%len(prompts)]]
		x, y := rng.IntN(len(idx)), rng.IntN(len(idx)-1)
		if y >= x {
			y++
		}
		if opt.BestChosen {
			// one side is a best candidate of the opening for this user
			best := bestCandidates(idx, rewards)
			x = best[rng.IntN(len(best))]
			if y == x {
				continue
			}
		}
		a, b := idx[min(x, y)], idx[max(x, y)]
		if used[[2]int{a, b}] {
			continue
		}
		used[[2]int{a, b}] = true
		d := rewards[a] - rewards[b]
		if math.Abs(d) < opt.MinMargin {
			st.Ties++
			continue
		}
		w, l := a, b
		if d < 0 {
			w, l = b, a
		}
		flipped := false
		if opt.Noise > 0 {
			p := pref.Sigmoid(math.Abs(d) / opt.Noise) // x ≥ 0: exactly 1/(1+e^−x)
			entropy += binaryEntropy(p)
			if rng.Float64() >= p {
				w, l, flipped = l, w, true
				st.Flipped++
			}
		}
		margin += math.Abs(d)
		recs = append(recs, pairRecord(u, cands, rewards, a, b, w, l, flipped))
	}
	st.Pairs = len(recs)
	st.Short = len(recs) < opt.PairsPerUser
	if len(recs) > 0 {
		st.LabelEntropy = entropy / float64(len(recs))
		st.MeanMargin = margin / float64(len(recs))
	}
	return recs, st
}

// disagreement is the cross-user disagreement matrix over every candidate
// pair of the same opening: D[u][v] is the share of pairs that both users
// decide (margin ≥ MinMargin) on which they prefer different responses;
// −1 when they decide no pair in common. The diagonal is 0.
func disagreement(rewards [][]float64, groups map[int][]int, minMargin float64) [][]float64 {
	n := len(rewards)
	signs := make([][]int8, n)
	for u := range n {
		for _, p := range promptKeys(groups) {
			idx := groups[p]
			for x := range idx {
				for y := x + 1; y < len(idx); y++ {
					d := rewards[u][idx[x]] - rewards[u][idx[y]]
					var s int8
					switch {
					case d >= minMargin:
						s = 1
					case d <= -minMargin:
						s = -1
					}
					signs[u] = append(signs[u], s)
				}
			}
		}
	}
	D := make([][]float64, n)
	for u := range n {
		D[u] = make([]float64, n)
	}
	for u := range n {
		for v := u + 1; v < n; v++ {
			var both, differ int
			for k, s := range signs[u] {
				t := signs[v][k]
				if s != 0 && t != 0 {
					both++
					if s != t {
						differ++
					}
				}
			}
			val := -1.0
			if both > 0 {
				val = float64(differ) / float64(both)
			}
			D[u][v], D[v][u] = val, val
		}
	}
	return D
}

// headroom compares, on the user's openings, the user's rewards of the
// base model's own (unsteered) continuations with (a) the best candidate of
// each opening's pool and (b) every steered candidate: win rates with ties
// counted ½, as the evaluation counts them. ok is false when the user's
// openings have no unsteered candidate.
func headroom(u *Profile, cands []Candidate, rewards []float64, groups map[int][]int) (best, steered float64, ok bool) {
	var bw, bn, sw, sn float64
	win := func(a, b float64) float64 {
		switch {
		case a > b:
			return 1
		case a == b:
			return 0.5
		}
		return 0
	}
	for _, p := range promptKeys(groups) {
		idx := groups[p]
		if cands[idx[0]].HeldOut != (u.Kind != Train) {
			continue
		}
		top := math.Inf(-1)
		for _, i := range idx {
			top = math.Max(top, rewards[i])
		}
		for _, b := range idx {
			if cands[b].Steer != "" {
				continue
			}
			bw += win(top, rewards[b])
			bn++
			for _, s := range idx {
				if cands[s].Steer != "" {
					sw += win(rewards[s], rewards[b])
					sn++
				}
			}
		}
	}
	if bn == 0 || sn == 0 {
		return 0, 0, false
	}
	return bw / bn, sw / sn, true
}

// userOpenings are the openings u labels (training ones for training users,
// held-out ones for the others) that have two candidates or more.
func userOpenings(u *Profile, cands []Candidate, groups map[int][]int) []int {
	var prompts []int
	for _, p := range promptKeys(groups) {
		if idx := groups[p]; len(idx) >= 2 && cands[idx[0]].HeldOut == (u.Kind != Train) {
			prompts = append(prompts, p)
		}
	}
	return prompts
}

// undecidedShare is the share of all pairs of the openings' candidates whose
// rewards differ by less than margin (0 without pairs).
func undecidedShare(prompts []int, groups map[int][]int, rewards []float64, margin float64) float64 {
	var all, undecided int
	for _, p := range prompts {
		idx := groups[p]
		for x := range idx {
			for y := x + 1; y < len(idx); y++ {
				all++
				if math.Abs(rewards[idx[x]]-rewards[idx[y]]) < margin {
					undecided++
				}
			}
		}
	}
	if all == 0 {
		return 0
	}
	return float64(undecided) / float64(all)
}

// bestCandidates are the positions in idx of the candidates with the
// highest reward.
func bestCandidates(idx []int, rewards []float64) []int {
	var best []int
	for i, c := range idx {
		switch {
		case len(best) == 0 || rewards[c] > rewards[idx[best[0]]]:
			best = append(best[:0], i)
		case rewards[c] == rewards[idx[best[0]]]:
			best = append(best, i)
		}
	}
	return best
}

// pairRecord is the record of candidates a < b labelled w over l.
func pairRecord(u *Profile, cands []Candidate, rewards []float64, a, b, w, l int, flipped bool) dataset.Record {
	d := rewards[a] - rewards[b]
	cw, cl := rewards[w], rewards[l]
	return dataset.Record{
		User: u.ID, Prompt: cands[w].Prompt, Chosen: cands[w].Response, Rejected: cands[l].Response,
		Description: u.Description, ID: "stories-" + u.ID + "-" + cands[a].ID + "-" + cands[b].ID,
		Source: "stories", ChosenScore: &cw, RejectedScore: &cl,
		// No rejected_description: a COT rejected completion then
		// carries another user's description (METHOD.md §2 allows
		// either). The persona's is kept as provenance only: persona
		// descriptions differ from user descriptions in form (equal
		// weights, always a length), a shortcut that let COT training
		// tell chosen from rejected without reading the shots (held-out
		// implicit reward accuracy 0.97 after Pref-FT alone).
		Meta: map[string]string{
			"kind": string(u.Kind), "chosen_id": cands[w].ID, "rejected_id": cands[l].ID,
			"rejected_persona": cands[l].PersonaDescription,
			"margin":           strconv.FormatFloat(math.Abs(d), 'f', 3, 64), "flipped": strconv.FormatBool(flipped),
		},
	}
}
