package train

import (
	"context"
	"fmt"
	"path/filepath"

	"fspo/model"
	"fspo/optim"
)

// What an external engine (package torch) needs to run a stage exactly as
// Train would: the batches in order, the learning rate of every step, the
// reference log-probs, and writing the trained model with its run card.

// BatchAt returns the indices into Items of step s's examples (from 0).
func (r *Run) BatchAt(s int64) []int { return r.batchAt(s) }

// ItemsHash identifies the tokenized examples.
func (r *Run) ItemsHash() string { return r.itemsHash() }

// Check validates the config and the examples as Train does (and makes Dir).
func (r *Run) Check() error { return r.check() }

// LRs returns the learning rate of each step.
func (r *Run) LRs() ([]float64, error) {
	total := r.TotalSteps()
	sched, err := r.schedule(total)
	if err != nil {
		return nil, err
	}
	out := make([]float64, total)
	for s := range out {
		out[s] = float64(sched.LR(int64(s)))
	}
	return out, nil
}

func (r *Run) schedule(total int64) (optim.Schedule, error) {
	c := r.Config
	s, err := optim.ParseSchedule(fmt.Sprintf("%s:%g", c.Schedule, c.MinLRRatio), float32(c.LR), min(c.Warmup, total/2), total)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return s, nil
}

// ReferencePairs returns Ref's summed log-probs of each item's chosen and
// rejected completion (computed once and kept in Dir, as Train does).
func (r *Run) ReferencePairs(ctx context.Context) ([][2]float64, error) {
	if r.Ref == nil {
		return nil, fmt.Errorf("train: no reference model")
	}
	lp, err := cachedLogprobs(ctx, filepath.Join(r.Dir, ReferenceFile), r.itemsHash(), r.Ref, r.Items, r.ScoreProgress)
	if err != nil {
		return nil, err
	}
	out := make([][2]float64, len(lp))
	for i, p := range lp {
		out[i] = [2]float64{p.Chosen, p.Rejected}
	}
	return out, nil
}

// SaveTrained writes m, trained by engine, as Dir's ModelFile with the run
// card of r (its Train.Engine set to engine).
func (r *Run) SaveTrained(m *model.Model, engine string) error {
	keep := r.Model
	r.Model, r.engine = m, engine
	defer func() { r.Model, r.engine = keep, "" }()
	return r.save(ModelFile, r.TotalSteps(), nil, r.itemsHash())
}
