package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"fspo/elicit"
	"fspo/store"
)

// Active elicitation (GET /api/next-pair, the labelling page): of the
// pairs among a few sampled answers to a question, ask the one whose answer
// tells the most about the user — package elicit's expected information
// gain, with Config.Committee's plausible users read by the ranking model
// and weighed by how well each predicts the user's latest labels.

// Elicitation bounds: what one choice costs is (committee members + the
// caller) × (1 + elicitLabels) reward passes and elicitSamples/2 Pair
// generations.
const (
	elicitSamples   = 4 // answers sampled per question: 6 candidate pairs
	elicitLabels    = 4 // the caller's latest labels that weigh the committee
	maxCommittee    = 16
	maxPendingPairs = 10000
	pairTTL         = time.Hour
)

// nextPair is GET /api/next-pair's answer.
type nextPair struct {
	ID       string `json:"id"`
	Question string `json:"question"`
	A        string `json:"a"`
	B        string `json:"b"`
	// Strategy is "active" (chosen by expected information gain, Gain in
	// nats) or "random" (the engine cannot rank, or no committee is set:
	// Why says which).
	Strategy string  `json:"strategy"`
	Gain     float64 `json:"gain"`
	Why      string  `json:"why,omitempty"`
	Millis   float64 `json:"choice_ms"`
}

// errPairsFull: the pair book holds maxPendingPairs unanswered pairs.
var errPairsFull = errors.New("too many pairs are waiting for an answer; try again in a minute")

// pending is a pair shown and not yet answered.
type pending struct {
	user, question, a, b string
	created              time.Time
	answered             bool // an answer is being stored or was stored
}

// pairBook keeps the pairs shown (bounded, for pairTTL) until answered.
type pairBook struct {
	mu    sync.Mutex
	pairs map[string]*pending
}

// add keeps p and returns its new id, dropping expired pairs first; full,
// it refuses.
func (b *pairBook) add(p *pending) (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pairs == nil {
		b.pairs = map[string]*pending{}
	}
	for k, q := range b.pairs {
		if p.created.Sub(q.created) > pairTTL {
			delete(b.pairs, k)
		}
	}
	if len(b.pairs) >= maxPendingPairs {
		return "", errPairsFull
	}
	b.pairs[id] = p
	return id, nil
}

// take marks the user's pair id answered and returns it: 404 when it is
// unknown (or expired, or another user's), 409 when it was answered.
func (b *pairBook) take(id, user string, now time.Time) (pending, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.pairs[id]
	switch {
	case !ok || p.user != user || now.Sub(p.created) > pairTTL:
		return pending{}, http.StatusNotFound
	case p.answered:
		return pending{}, http.StatusConflict
	}
	p.answered = true
	return *p, 0
}

// release makes a taken pair answerable again (its answer was not stored).
func (b *pairBook) release(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.pairs[id]; ok {
		p.answered = false
	}
}

// apiNextPair: GET /api/next-pair[?question=Q][&seed=S] → 200 nextPair;
// the question defaults to the configured ones in turn, the seed of the
// sampled answers to a random one (with the same seed, labels and
// question, the same pair).
func (s *Server) apiNextPair(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := userFrom(ctx)
	q := r.URL.Query().Get("question")
	seed := mathrand.Uint64()
	if v := r.URL.Query().Get("seed"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			badRequest(w, "seed %q is not a whole number in 0..2^64-1", v)
			return
		}
	}
	if q == "" {
		n, err := s.cfg.Store.CountPreferences(ctx, u.ID, "")
		if err != nil {
			s.internal(w, r, err)
			return
		}
		q = s.cfg.Questions[n%len(s.cfg.Questions)]
	}
	if msg := s.checkText("question", q, true); msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	np, err := s.choosePair(ctx, u.ID, q, seed)
	switch {
	case errors.Is(err, errPairsFull):
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, "server_error", err.Error())
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, np)
	}
}

// choosePair samples answers to question and picks the pair to ask the
// user, kept in the pair book under a new id.
func (s *Server) choosePair(ctx context.Context, user, question string, seed uint64) (nextPair, error) {
	t0 := time.Now()
	var texts []string
	for k := 0; k < elicitSamples; k += 2 {
		a, b, err := s.cfg.Engine.Pair(ctx, question, seed+uint64(k))
		if err != nil {
			return nextPair{}, err
		}
		texts = appendNew(appendNew(texts, a), b)
	}
	np := nextPair{Question: question, Strategy: "random", A: texts[0], B: texts[min(1, len(texts)-1)]}
	switch {
	case !canRank(s.cfg.Engine):
		np.Why = ErrNoRanking.Error()
	case len(s.cfg.Committee) == 0:
		np.Why = "no committee of plausible users is set (fspo serve --elicit-from DATA)"
	case len(texts) < 2:
		np.Why = "the sampled answers are all the same"
	default:
		a, b, gain, err := s.activePair(ctx, user, question, texts)
		if err != nil {
			return nextPair{}, err
		}
		np.A, np.B, np.Gain, np.Strategy = a, b, gain, "active"
	}
	if np.A == np.B {
		return nextPair{}, fmt.Errorf("the engine answered %q twice the same", question)
	}
	id, err := s.pairs.add(&pending{user: user, question: question, a: np.A, b: np.B, created: s.cfg.Now()})
	if err != nil {
		return nextPair{}, err
	}
	np.ID = id
	np.Millis = float64(time.Since(t0).Microseconds()) / 1000
	return np, nil
}

// activePair rates every pair of texts and the user's latest labels under
// each member's context (the committee and the user's own), and returns
// the pair of largest expected information gain.
func (s *Server) activePair(ctx context.Context, user, question string, texts []string) (string, string, float64, error) {
	ranker := s.cfg.Engine.(Ranker)
	own, err := s.selectShots(ctx, user, "recent", s.cfg.Shots, 0)
	if err != nil {
		return "", "", 0, err
	}
	labels, err := s.cfg.Store.Preferences(ctx, user, store.PrefQuery{Last: elicitLabels})
	if err != nil {
		return "", "", 0, err
	}
	members := append(s.cfg.Committee[:len(s.cfg.Committee):len(s.cfg.Committee)], own)
	type pair struct{ a, b int }
	var cands []pair
	for i := range texts {
		for j := i + 1; j < len(texts); j++ {
			cands = append(cands, pair{i, j})
		}
	}
	probs := make([][]float64, len(members))
	for m, shots := range members {
		rw, _, err := ranker.Rewards(ctx, shots, question, texts)
		if err != nil {
			return "", "", 0, err
		}
		for _, c := range cands {
			probs[m] = append(probs[m], elicit.Prob(ranker.Objective(), rw[c.a]-rw[c.b]))
		}
		for _, l := range labels {
			p, err := s.labelProb(ctx, ranker, shots, l)
			if err != nil {
				return "", "", 0, err
			}
			probs[m] = append(probs[m], p)
		}
	}
	com, err := elicit.NewCommittee(probs)
	if err != nil {
		return "", "", 0, err
	}
	answers := map[int]bool{}
	for k := range labels {
		answers[len(cands)+k] = true // each label's Chosen was preferred
	}
	w := com.Posterior(answers)
	best, bestGain := 0, -1.0
	for j := range cands {
		if g := com.Gain(j, w); g > bestGain+1e-12 {
			best, bestGain = j, g
		}
	}
	return texts[cands[best].a], texts[cands[best].b], bestGain, nil
}

// labelProb is a member's probability of the user's label l, remembered
// (a label is rated once per member context, not at every choice).
func (s *Server) labelProb(ctx context.Context, ranker Ranker, shots []Shot, l store.Preference) (float64, error) {
	h := sha256.New()
	for _, sh := range append(slices.Clip(shots), Shot{l.Prompt, l.Chosen, l.Rejected}) {
		for _, t := range []string{sh.Prompt, sh.Chosen, sh.Rejected} {
			fmt.Fprintf(h, "%d:%s", len(t), t)
		}
	}
	key := string(h.Sum(nil))
	if p, ok := s.labelProbs.get(key); ok {
		return p, nil
	}
	r, _, err := ranker.Rewards(ctx, shots, l.Prompt, []string{l.Chosen, l.Rejected})
	if err != nil {
		return 0, err
	}
	p := elicit.Prob(ranker.Objective(), r[0]-r[1])
	s.labelProbs.put(key, p)
	return p, nil
}

// probCache remembers label probabilities, forgetting all at maxLabelProbs.
type probCache struct {
	mu sync.Mutex
	m  map[string]float64
}

const maxLabelProbs = 1 << 16

func (c *probCache) get(k string) (float64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[k]
	return p, ok
}

func (c *probCache) put(k string, p float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxLabelProbs {
		c.m = map[string]float64{}
	}
	c.m[k] = p
}

// appendNew appends s unless texts holds it.
func appendNew(texts []string, s string) []string {
	if slices.Contains(texts, s) {
		return texts
	}
	return append(texts, s)
}

// answerPair stores the caller's answer to a pair of /api/next-pair:
// choice "a" or "b" preferred. The source "pair:ID" records which pair.
func (s *Server) answerPair(r *http.Request, user, id, choice, key string) (store.Preference, int, string, error) {
	if choice != "a" && choice != "b" {
		return store.Preference{}, http.StatusBadRequest, `"choice" must be "a" or "b"`, nil
	}
	p, status := s.pairs.take(id, user, s.cfg.Now())
	switch status {
	case http.StatusNotFound:
		return store.Preference{}, status, fmt.Sprintf("unknown pair id %q (ask GET /api/next-pair; a pair is kept %v)", id, pairTTL), nil
	case http.StatusConflict:
		return store.Preference{}, status, fmt.Sprintf("pair %q is already answered", id), nil
	}
	pref := store.Preference{User: user, Prompt: p.question, Chosen: p.a, Rejected: p.b, Source: "pair:" + id, IdempotencyKey: key}
	if choice == "b" {
		pref.Chosen, pref.Rejected = p.b, p.a
	}
	saved, status, msg, err := s.savePreference(r, pref)
	if status != 0 || (err != nil && !errors.Is(err, store.ErrReplay)) {
		s.pairs.release(id)
	}
	return saved, status, msg, err
}
