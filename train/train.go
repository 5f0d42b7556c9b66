package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"fspo/ckpt"
	"fspo/fewshot"
	"fspo/model"
	"fspo/optim"
	"fspo/pref"
	"fspo/runcard"
	"fspo/tensor"
)

// Item is one tokenized few-shot example: the prompt (BOS, the shots and the
// question) and the two completions (each ending with EOS).
type Item struct {
	User     string
	Prompt   []int
	Chosen   []int
	Rejected []int
}

// Files of a run folder.
const (
	CheckpointFile = "checkpoint.fspo" // weights + optimizer state, rewritten every CheckpointEvery steps
	ModelFile      = "model.fspo"      // the final weights, written when the stage completes
	MetricsFile    = "metrics.jsonl"
	ReferenceFile  = "reference.json" // the frozen reference model's log-probs, computed once
	// HeldoutReferenceFile holds the reference log-probs of the held-out pairs.
	HeldoutReferenceFile = "reference_heldout.json"
)

// Metrics is one line of metrics.jsonl.
type Metrics struct {
	Step     int64   `json:"step"`
	Loss     float64 `json:"loss"`
	LR       float64 `json:"lr"`
	GradNorm float64 `json:"grad_norm"`
	Accuracy float64 `json:"reward_accuracy,omitempty"` // pref stage: share of pairs with a positive implicit reward margin
	Margin   float64 `json:"reward_margin,omitempty"`   // pref stage: mean β·h
	// HeldoutAccuracy is the implicit reward accuracy on Run.Heldout (when
	// set), logged at checkpoints and at the end; HeldoutMargin the mean β·h.
	HeldoutAccuracy *float64 `json:"heldout_accuracy,omitempty"`
	HeldoutMargin   *float64 `json:"heldout_margin,omitempty"`
	Tokens          int64    `json:"tokens"`
	TokensPerS      float64  `json:"tokens_per_s"`
	ElapsedS        float64  `json:"elapsed_s"`
}

// Run is one training stage over Items, writing into Dir.
type Run struct {
	Config Config
	Dir    string
	Model  *model.Model // trained in place
	Ref    *model.Model // frozen reference (pref stage)
	Items  []Item
	// Heldout, when set, are pairs of users not trained on: their implicit
	// reward accuracy (against Ref, or for the sft stage against the initial
	// model) is logged at every checkpoint and at the end.
	Heldout []Item
	// Card describes the model (base, prompt, data); every checkpoint
	// carries it, with its Train and Data.Items filled in from the run.
	Card runcard.Card
	// Progress, when set, is called after every step with that step's metrics.
	Progress func(m Metrics, total int64)
	// ScoreProgress, when set, is called while the reference model scores
	// the pairs (once, before the first step): pairs done of total.
	ScoreProgress func(done, total int)

	engine string // set while SaveTrained writes another engine's model
}

// TotalSteps is the number of optimizer steps the run makes.
func (r *Run) TotalSteps() int64 {
	if r.Config.Steps > 0 {
		return r.Config.Steps
	}
	return int64(math.Ceil(r.Config.Epochs * float64(len(r.Items)) / float64(r.Config.Batch)))
}

// batchAt returns the items of step s: epoch e visits the items in a
// permutation drawn from (Seed, e), so the order depends on the step number
// alone and a resumed run sees exactly the batches the uninterrupted run saw.
func (r *Run) batchAt(s int64) []int {
	n := int64(len(r.Items))
	B := int64(r.Config.Batch)
	out := make([]int, 0, B)
	var perm []int
	permEpoch := int64(-1)
	for k := s * B; k < (s+1)*B; k++ {
		e := k / n
		if e != permEpoch {
			rng := rand.New(rand.NewPCG(uint64(r.Config.Seed), uint64(e)))
			perm = rng.Perm(int(n))
			permEpoch = e
		}
		out = append(out, perm[k%n])
	}
	return out
}

// itemsHash identifies the training data, so a resume with other data fails.
func (r *Run) itemsHash() string { return itemsHash(r.Items) }

func itemsHash(items []Item) string {
	h := sha256.New()
	var buf [4]byte
	put := func(xs []int) {
		binary.LittleEndian.PutUint32(buf[:], uint32(len(xs)))
		h.Write(buf[:])
		for _, x := range xs {
			binary.LittleEndian.PutUint32(buf[:], uint32(x))
			h.Write(buf[:])
		}
	}
	for _, it := range items {
		put(it.Prompt)
		put(it.Chosen)
		put(it.Rejected)
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}

// Train runs the stage to completion, resuming from Dir's checkpoint when
// one is there. On cancellation it saves a checkpoint and returns ctx.Err().
func (r *Run) Train(ctx context.Context) error {
	if err := r.check(); err != nil {
		return err
	}
	st, err := r.setup(ctx)
	if err != nil {
		return err
	}
	defer st.mlog.Close()
	c := r.Config
	for step := st.start; step < st.total; step++ {
		if err := ctx.Err(); err != nil {
			if serr := st.save(step); serr != nil {
				return errors.Join(err, serr)
			}
			return err
		}
		m, err := r.step(st, step)
		if err != nil {
			return err
		}
		if len(r.Heldout) > 0 && ((step+1)%c.CheckpointEvery == 0 || step+1 == st.total) {
			acc, margin, err := r.heldoutAccuracy(ctx, st.heldRef)
			if err != nil {
				return err
			}
			m.HeldoutAccuracy, m.HeldoutMargin = &acc, &margin
		}
		if err := r.record(st, m); err != nil {
			return err
		}
	}
	if err := st.mlog.Sync(); err != nil {
		return err
	}
	if err := st.save(st.total); err != nil {
		return err
	}
	if err := r.finishAdapter(st); err != nil {
		return err
	}
	return r.save(ModelFile, st.total, nil, st.hash)
}

// check validates the config and the items.
func (r *Run) check() error {
	c := r.Config
	if err := c.Validate(); err != nil {
		return err
	}
	if len(r.Items) == 0 {
		return errors.New("train: no examples")
	}
	if c.Stage == "pref" && r.Ref == nil && !c.LoRA.On() {
		return errors.New("train: the pref stage needs a reference model (or a LoRA adapter over the frozen initial model)")
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for i, it := range r.Items {
		if len(it.Prompt) == 0 || len(it.Chosen) == 0 || (c.Stage == "pref" && len(it.Rejected) == 0) {
			return fmt.Errorf("train: example %d (user %s) has an empty prompt or completion", i, it.User)
		}
		if n := fewshot.Positions(it.Prompt, it.Chosen, it.Rejected); n > r.Model.Positions() {
			return fmt.Errorf("train: example %d (user %s) needs %d positions, the model has %d; use fewer shots or shorter responses", i, it.User, n, r.Model.Positions())
		}
	}
	return nil
}

// state is what the steps of one Train call share.
type state struct {
	params, gts []tensor.Tensor
	grads       *model.Params
	adapter     *model.LoRA // with Config.LoRA: the adapter trained (params) and its gradients (lgrads)
	lgrads      *model.LoRA
	opt         optim.Optimizer
	sched       optim.Schedule
	mlog        *metricsLog
	pass        *model.Pass
	hash        string
	start       int64
	total       int64
	ref         []refLogprobs // the pref stage's reference log-probs of Items
	heldRef     []refLogprobs // the reference log-probs of Heldout
	t0          time.Time
	tokens      int64
	save        func(step int64) error
}

// setup makes the optimizer, scores the reference log-probs (held-out ones
// before any resume, with the initial weights), resumes, and opens the log.
func (r *Run) setup(ctx context.Context) (*state, error) {
	c := r.Config
	st := &state{hash: r.itemsHash(), total: r.TotalSteps(), t0: time.Now()}
	var err error
	if err := r.trainables(st); err != nil {
		return nil, err
	}
	if st.opt, err = r.newOptimizer(); err != nil {
		return nil, err
	}
	if c.Stage == "pref" && c.LoRA.On() && r.Ref == nil {
		// the reference is the initial model: the adapted one before any step
		if st.ref, err = cachedLogprobs(ctx, filepath.Join(r.Dir, ReferenceFile), st.hash, r.Model, r.Items, r.ScoreProgress); err != nil {
			return nil, err
		}
	}
	if len(r.Heldout) > 0 {
		refModel := r.Ref
		if refModel == nil {
			refModel = r.Model // the sft stage: its initial weights, scored before any resume
		}
		if st.heldRef, err = cachedLogprobs(ctx, filepath.Join(r.Dir, HeldoutReferenceFile), itemsHash(r.Heldout), refModel, r.Heldout, r.ScoreProgress); err != nil {
			return nil, err
		}
	}
	if st.start, err = r.resume(st, st.hash); err != nil {
		return nil, err
	}
	if c.Stage == "pref" && st.ref == nil {
		if st.ref, err = r.referenceLogprobs(ctx, st.hash); err != nil {
			return nil, err
		}
	}
	if st.sched, err = r.schedule(st.total); err != nil {
		return nil, err
	}
	if st.mlog, err = openMetrics(filepath.Join(r.Dir, MetricsFile), st.start); err != nil {
		return nil, err
	}
	st.save = func(step int64) error { return r.save(CheckpointFile, step, st, st.hash) }
	return st, nil
}

// step makes optimizer step number step (from 0) and returns its metrics.
func (r *Run) step(st *state, step int64) (Metrics, error) {
	c := r.Config
	idx := r.batchAt(step)
	exs := make([]model.Example, len(idx))
	for k, i := range idx {
		it := r.Items[i]
		if c.Stage == "sft" {
			exs[k] = model.Example{Prompt: it.Prompt, Completions: [][]int{it.Chosen}}
		} else {
			exs[k] = model.Example{Prompt: it.Prompt, Completions: [][]int{it.Chosen, it.Rejected}}
		}
		st.tokens += int64(exs[k].RowLen())
	}
	var err error
	if st.pass == nil {
		st.pass = &model.Pass{Recompute: c.Recompute}
	}
	if st.pass, err = r.Model.Score(exs, st.pass); err != nil {
		return Metrics{}, fmt.Errorf("train step %d: %w", step, err)
	}
	m := Metrics{Step: step + 1}
	if c.Stage == "sft" {
		m.Loss = r.sftGrads(st.pass, exs)
	} else {
		r.prefGrads(st, idx, &m)
	}
	if st.adapter != nil {
		st.lgrads.Zero()
		st.pass.BackwardAdapter(st.lgrads)
	} else {
		st.grads.Zero(r.Model.Config)
		st.pass.Backward(st.grads)
	}
	if c.Clip > 0 {
		m.GradNorm = float64(optim.ClipGradNorm(st.gts, float32(c.Clip)))
	} else {
		m.GradNorm = optim.GradNorm(st.gts)
	}
	if math.IsNaN(m.Loss) || math.IsNaN(m.GradNorm) || math.IsInf(m.GradNorm, 0) {
		return Metrics{}, fmt.Errorf("train step %d: loss %v, gradient norm %v: training diverged (lower lr?)", step+1, m.Loss, m.GradNorm)
	}
	lr := st.sched.LR(step)
	st.opt.Step(st.params, st.gts, lr)
	r.Model.W.Changed()
	m.LR = float64(lr)
	m.Tokens = st.tokens
	m.ElapsedS = time.Since(st.t0).Seconds()
	m.TokensPerS = float64(st.tokens) / m.ElapsedS
	return m, nil
}

// sftGrads sets the gradients of the batch's SFT loss (pref.SFT: the mean
// negative log-likelihood per preferred-completion token) and returns it.
func (r *Run) sftGrads(pass *model.Pass, exs []model.Example) float64 {
	n := 0
	var sum float64
	for k := range exs {
		n += len(exs[k].Completions[0])
		sum += pass.Sum(k, 0)
	}
	loss, d := pref.SFT(sum, n)
	for k := range exs {
		pass.SetGrad(k, 0, float32(d))
	}
	return loss
}

// prefGrads sets the gradients of the batch's mean preference loss and
// adds the loss, margin and accuracy to m.
func (r *Run) prefGrads(st *state, idx []int, m *Metrics) {
	obj := r.Config.objective()
	B := float64(len(idx))
	for k, i := range idx {
		it := r.Items[i]
		p := pref.Pair{Chosen: st.pass.Sum(k, 0), Rejected: st.pass.Sum(k, 1), RefChosen: st.ref[i].Chosen, RefRejected: st.ref[i].Rejected,
			ChosenLen: len(it.Chosen), RejectedLen: len(it.Rejected)}
		loss, dc, dr := obj.Loss(p)
		m.Loss += loss / B
		margin := obj.Margin(p)
		m.Margin += margin / B
		if margin > 0 {
			m.Accuracy += 1 / B
		}
		// L = mean over the batch; the policy's log-probs are the only inputs with a gradient
		st.pass.SetGrad(k, 0, float32(dc/B))
		st.pass.SetGrad(k, 1, float32(dr/B))
	}
}

// record logs a step's metrics, reports progress and checkpoints.
func (r *Run) record(st *state, m Metrics) error {
	c := r.Config
	if m.Step%c.LogEvery == 0 || m.Step == st.total || m.HeldoutAccuracy != nil {
		if err := st.mlog.Write(m); err != nil {
			return err
		}
	}
	if r.Progress != nil {
		r.Progress(m, st.total)
	}
	if m.Step%c.CheckpointEvery == 0 && m.Step < st.total {
		if err := st.mlog.Sync(); err != nil {
			return err
		}
		if err := st.save(m.Step); err != nil {
			return err
		}
	}
	return nil
}

func (r *Run) newOptimizer() (optim.Optimizer, error) {
	c := r.Config
	switch c.Optimizer {
	case "adamw":
		o := optim.NewAdamW()
		o.WeightDecay, o.Decay = float32(c.WeightDecay), model.Decays
		return o, nil
	case "rmsprop":
		o := optim.NewRMSprop()
		o.WeightDecay, o.Decay = float32(c.WeightDecay), model.Decays
		return o, nil
	}
	return nil, fmt.Errorf("train: unknown optimizer %q", c.Optimizer)
}

// card is r.Card completed with the run's stage, loss, config and data hash.
func (r *Run) card(hash string) (runcard.Card, error) {
	trainJSON, err := json.Marshal(r.Config)
	if err != nil {
		return runcard.Card{}, err
	}
	c := r.Card
	c.Version = runcard.Version
	c.Train = runcard.Train{Stage: r.Config.Stage, Loss: r.Config.Objective, Beta: r.Config.Beta, Config: trainJSON, Engine: r.engine}
	if r.Config.Stage == "sft" {
		c.Train.Loss = "sft"
	}
	c.Data.Items = hash
	if c.FSPO == "" {
		c.FSPO = runcard.Build()
	}
	return c, nil
}

// save writes the weights — with an adapter being trained, the adapter's —
// and, when st is set, the optimizer state to a file of Dir.
func (r *Run) save(name string, step int64, st *state, hash string) error {
	cfgJSON, err := json.Marshal(r.Model.Config)
	if err != nil {
		return err
	}
	card, err := r.card(hash)
	if err != nil {
		return err
	}
	meta, err := card.Meta()
	if err != nil {
		return err
	}
	cp := &ckpt.Checkpoint{Format: "llama", Config: cfgJSON, Step: step, Meta: meta, Params: r.Model.W.Tensors(r.Model.Config)}
	if st != nil {
		if st.adapter != nil {
			cp.Format, cp.Params = model.LoRAFormat, st.params
			cp.Meta["lora_rank"], cp.Meta["lora_alpha"] = strconv.Itoa(st.adapter.Rank), strconv.FormatFloat(float64(st.adapter.Alpha), 'g', -1, 32)
		}
		cp.Optim = st.opt.State()
	}
	if err := ckpt.Save(filepath.Join(r.Dir, name), cp); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// resume loads Dir's checkpoint, if any, and returns the step to continue from.
func (r *Run) resume(st *state, hash string) (int64, error) {
	path := filepath.Join(r.Dir, CheckpointFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	cp, err := ckpt.Load(path)
	if err != nil {
		return 0, fmt.Errorf("train: resume: %w", err)
	}
	was, _, err := runcard.FromMeta(cp.Meta)
	if err != nil {
		return 0, fmt.Errorf("train: resume from %s: %w", path, err)
	}
	if was == nil {
		was = &runcard.Card{}
	}
	if got := was.Data.Items; got != hash {
		return 0, fmt.Errorf("train: resume from %s: it was trained on other examples (data hash %s, now %s); use a new --out folder", path, got, hash)
	}
	trainJSON, _ := json.Marshal(r.Config)
	if got := string(was.Train.Config); got != string(trainJSON) {
		return 0, fmt.Errorf("train: resume from %s: the training config changed (was %s); use a new --out folder or the same settings", path, got)
	}
	if st.adapter != nil {
		if err := setTensors(st.params, cp.Params); err != nil {
			return 0, fmt.Errorf("train: resume from %s: %w", path, err)
		}
	} else if err := r.Model.W.SetTensors(r.Model.Config, cp.Params); err != nil {
		return 0, fmt.Errorf("train: resume from %s: %w", path, err)
	}
	if err := st.opt.SetState(cp.Optim); err != nil {
		return 0, fmt.Errorf("train: resume from %s: %w", path, err)
	}
	return cp.Step, nil
}
