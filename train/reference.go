package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"fspo/model"
	"fspo/pref"

	"fspo/atomicfile"
)

type refLogprobs struct {
	Chosen   float64 `json:"c"`
	Rejected float64 `json:"r"`
}

type referenceFile struct {
	Items    string        `json:"items"` // data hash
	Logprobs []refLogprobs `json:"logprobs"`
}

// referenceLogprobs returns the frozen reference model's summed log-probs of
// every item's chosen and rejected completion, computed once (chosen and
// rejected share one pass over the prompt) and kept in Dir.
func (r *Run) referenceLogprobs(ctx context.Context, hash string) ([]refLogprobs, error) {
	return cachedLogprobs(ctx, filepath.Join(r.Dir, ReferenceFile), hash, r.Ref, r.Items, r.ScoreProgress)
}

// cachedLogprobs scores items with m, or reads the scores from path when it
// holds those of the same items (hash).
func cachedLogprobs(ctx context.Context, path, hash string, m *model.Model, items []Item, progress func(done, total int)) ([]refLogprobs, error) {
	if raw, err := os.ReadFile(path); err == nil {
		var f referenceFile
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("train: reference log-probs %s: %w (delete it to recompute)", path, err)
		}
		if f.Items == hash && len(f.Logprobs) == len(items) {
			return f.Logprobs, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("train: %w", err)
	}
	out, err := scorePairs(ctx, m, items, progress)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(referenceFile{Items: hash, Logprobs: out})
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(path, raw); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return out, nil
}

// scorePairs returns m's summed log-probs of each item's two completions,
// calling progress (when set) after each batch.
func scorePairs(ctx context.Context, m *model.Model, items []Item, progress func(done, total int)) ([]refLogprobs, error) {
	out := make([]refLogprobs, len(items))
	var pass *model.Pass
	const batch = 8
	for lo := 0; lo < len(items); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+batch, len(items))
		exs := make([]model.Example, 0, hi-lo)
		for _, it := range items[lo:hi] {
			exs = append(exs, model.Example{Prompt: it.Prompt, Completions: [][]int{it.Chosen, it.Rejected}})
		}
		var err error
		if pass, err = m.Score(exs, pass); err != nil {
			return nil, fmt.Errorf("train: score pairs: %w", err)
		}
		for k := range exs {
			out[lo+k] = refLogprobs{Chosen: pass.Sum(k, 0), Rejected: pass.Sum(k, 1)}
		}
		if progress != nil {
			progress(hi, len(items))
		}
	}
	return out, nil
}

// heldoutAccuracy is the share of held-out pairs whose implicit reward
// β·(log πθ/πref) ranks the chosen completion above the rejected one, and
// the mean margin.
func (r *Run) heldoutAccuracy(ctx context.Context, ref []refLogprobs) (acc, margin float64, err error) {
	cur, err := scorePairs(ctx, r.Model, r.Heldout, nil)
	if err != nil {
		return 0, 0, err
	}
	obj := r.Config.objective()
	if r.Config.Stage == "sft" {
		obj = pref.Objective{Kind: "ipo", Beta: r.Config.Beta}
	}
	for i, it := range r.Heldout {
		mg := obj.Margin(pref.Pair{Chosen: cur[i].Chosen, Rejected: cur[i].Rejected, RefChosen: ref[i].Chosen, RefRejected: ref[i].Rejected,
			ChosenLen: len(it.Chosen), RejectedLen: len(it.Rejected)})
		margin += mg / float64(len(cur))
		if mg > 0 {
			acc += 1 / float64(len(cur))
		}
	}
	return acc, margin, nil
}
