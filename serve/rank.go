package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"golang.org/x/sync/errgroup"

	"fspo/episode"
	"fspo/model"
)

// Ranker is an Engine that can score answers by a user's implicit reward:
// a model trained by IPO (or DPO) against a reference model πref is a
// reward model for free, r(x, y) = β·(log πθ(y|x) − log πref(y|x)) (Rafailov
// et al. 2023, §5; Azar et al. 2024 for IPO), here with x the user's
// few-shot prompt — the reward of y for that user.
type Ranker interface {
	// Rewards returns each candidate's reward for the user whose shots are
	// given, and how many of the shots the prompt held (the oldest are
	// left out when they do not fit the context).
	Rewards(ctx context.Context, shots []Shot, question string, candidates []string) (rewards []float64, kept int, err error)
	// CanRank tells whether Rewards can work (a reference model is there).
	CanRank() bool
	// Objective is the loss that trained the model (ipo, dpo, cdpo): it
	// defines the preference probability of a reward margin (elicit.Prob).
	Objective() string
}

// canRank tells whether e ranks answers.
func canRank(e Engine) bool {
	r, ok := e.(Ranker)
	return ok && r.CanRank()
}

// ErrNoRanking: the engine has no reference model (or is not a plain
// few-shot model), so it cannot compute implicit rewards.
var ErrNoRanking = errors.New("this engine has no reference model to rank answers with (serve a preference-trained run)")

// CanRank implements Ranker: with a reference model, for a plain or
// preferred-only model (a COT model's answer comes after its own
// description, which the candidates do not have).
func (e *ModelEngine) CanRank() bool { return e.Ref != nil && e.Codec.Variant != episode.COT }

// Objective implements Ranker.
func (e *ModelEngine) Objective() string { return e.Loss }

// Rewards implements Ranker with the engine's Ref and Beta: the summed
// log-probabilities of each candidate's completion (the layout's header,
// the text and the end token, as training scores them), the prompt
// computed once for all candidates (model.ContinuationLogProbs).
func (e *ModelEngine) Rewards(ctx context.Context, shots []Shot, question string, candidates []string) ([]float64, int, error) {
	c := e.codecFor(true)
	if !e.CanRank() {
		return nil, 0, ErrNoRanking
	}
	comps := make([][]int, len(candidates))
	longest := 0
	for i, y := range candidates {
		comps[i] = c.Completion(y, "")
		longest = max(longest, len(comps[i]))
	}
	p, kept, err := e.prompt(c, shots, question, false, longest)
	if err != nil {
		return nil, 0, err
	}
	p = p[:len(p)-len(c.Header())] // the completions start with the header
	conts := make([]model.Continuation, len(comps))
	for j, y := range comps {
		conts[j] = model.Continuation{Tokens: y}
	}
	pol, err := e.Model.ContinuationLogProbs(ctx, p, conts)
	if err != nil {
		return nil, 0, fmt.Errorf("engine %s: %w", e.Label, err)
	}
	ref, err := e.Ref.ContinuationLogProbs(ctx, p, conts)
	if err != nil {
		return nil, 0, fmt.Errorf("engine %s: reference: %w", e.Label, err)
	}
	rewards := make([]float64, len(candidates))
	for j := range rewards {
		rewards[j] = e.Beta * (pol[j] - ref[j])
	}
	return rewards, kept, nil
}

// maxCandidates bounds /api/rank's candidates and best_of.
const maxCandidates = 16

// rankRequest is POST /api/rank's body.
type rankRequest struct {
	Model        string   `json:"model"`
	Prompt       string   `json:"prompt"`
	Candidates   []string `json:"candidates"`
	Shots        *int     `json:"shots"`
	ShotStrategy string   `json:"shot_strategy"`
	Seed         *int64   `json:"seed"`
}

// rankedCandidate is one entry of /api/rank's answer.
type rankedCandidate struct {
	Index  int     `json:"index"`
	Text   string  `json:"text"`
	Reward float64 `json:"reward"`
}

// rank: POST /api/rank {"prompt", "candidates": [...]} → 200 {"data":
// candidates sorted by the caller's implicit reward, best first, "fspo":
// {"shots", "shots_left_out", "shot_strategy", "seed"}}.
func (s *Server) rank(w http.ResponseWriter, r *http.Request) {
	var req rankRequest
	if !s.decodeJSON(w, r, &req, true) {
		return
	}
	j, msg := s.prepare(genFields{Model: req.Model, Shots: req.Shots, ShotStrategy: req.ShotStrategy, Seed: req.Seed}, req.Prompt)
	if msg == "" && (len(req.Candidates) < 1 || len(req.Candidates) > maxCandidates) {
		msg = fmt.Sprintf("candidates: give 1 to %d texts", maxCandidates)
	}
	for i, c := range req.Candidates {
		if msg == "" {
			msg = s.checkText(fmt.Sprintf("candidates[%d]", i), c, true)
		}
	}
	if msg == "" && !canRank(j.engine) {
		msg = ErrNoRanking.Error()
	}
	if msg != "" {
		badRequest(w, "%s", msg)
		return
	}
	ctx := r.Context()
	shots, err := s.selectShots(ctx, userFrom(ctx).ID, j.strategy, j.nShots, j.req.Seed)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	rewards, kept, err := j.engine.(Ranker).Rewards(ctx, shots, req.Prompt, req.Candidates)
	switch {
	case errors.Is(err, ErrNoRanking), errors.Is(err, ErrInvalid):
		badRequest(w, "%v", err)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	out := make([]rankedCandidate, len(rewards))
	for i, rw := range rewards {
		out[i] = rankedCandidate{Index: i, Text: req.Candidates[i], Reward: rw}
	}
	slices.SortStableFunc(out, func(a, b rankedCandidate) int { return cmp.Compare(b.Reward, a.Reward) })
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "fspo": fspoInfo{Shots: kept, ShotsLeftOut: len(shots) - kept,
		Personalized: true, Strategy: j.strategy, Seed: j.req.Seed}})
}

// bestOf answers j n times at once (seeds seed, seed+1, …: an engine's
// batcher generates them together) and returns the answer with the highest
// implicit reward for the user, with every reward; the usage counts the
// tokens of all n.
func (s *Server) bestOf(ctx context.Context, j job, n int) (Answer, []float64, error) {
	ranker := j.engine.(Ranker) // prepare checked it
	answers := make([]Answer, n)
	g, gctx := errgroup.WithContext(ctx)
	for k := range n {
		g.Go(func() (err error) {
			req := j.req
			req.Seed = j.req.Seed + uint64(k)
			answers[k], err = j.engine.Answer(gctx, req)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Answer{}, nil, err
	}
	texts := make([]string, n)
	tokens := 0
	for k, a := range answers {
		texts[k] = a.Text
		tokens += a.CompletionTokens
	}
	rewards, _, err := ranker.Rewards(ctx, j.req.Shots, j.req.Question, texts)
	if err != nil {
		return Answer{}, nil, err
	}
	best := 0
	for k, rw := range rewards {
		if rw > rewards[best] {
			best = k
		}
	}
	a := answers[best]
	a.CompletionTokens = tokens
	return a, rewards, nil
}
