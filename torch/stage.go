// Package torch runs a training stage on PyTorch: it stages the stage (the
// initial model as a Hugging Face folder, the episodes in the order the steps
// visit them with the reference log-probs fspo computed, the learning rate of
// every step) and runs trainer.py — kept here and embedded in the binary — on
// N local processes with the environment torchrun gives its workers, then
// reads the trained model back into the run folder with its run card. The
// trainer shards the model with FSDP where PyTorch supports it (CUDA, or CPU
// from PyTorch 2.1) and otherwise shards the optimizer state over
// data-parallel ranks; its losses and optimizer are those of package train.
package torch

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"fspo/atomicfile"
	"fspo/hf"
	"fspo/optim"
	"fspo/safetensors"
	"fspo/train"
)

//go:embed trainer.py
var trainerPy []byte

//go:embed hfmodel.py
var modelPy []byte

// Names inside a run folder.
const (
	Dir         = "torch"     // the stage folder, inside the run folder
	PlanFile    = "plan.json" // what trainer.py reads first
	TrainerFile = "trainer.py"
	ModelFile   = "hfmodel.py" // the trainer's model module, beside it
	InitDir     = "init"       // the initial model (Hugging Face folder)
	OutDir      = "out"        // the trained model, renamed into place when complete
)

// writeTrainer writes trainer.py and its model module into the stage
// folder dir (the current ones: a resumed stage runs this binary's trainer).
func writeTrainer(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, TrainerFile), trainerPy, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ModelFile), modelPy, 0o644)
}

// Plan is plan.json: one stage as trainer.py runs it.
type Plan struct {
	Stage       string     `json:"stage"`
	Objective   string     `json:"objective"`
	Beta        float64    `json:"beta"`
	Smoothing   float64    `json:"smoothing"`
	Betas       [2]float64 `json:"betas"`
	Eps         float64    `json:"eps"`
	WeightDecay float64    `json:"weight_decay"`
	Clip        float64    `json:"clip"`
	Batch       int        `json:"batch"`
	Steps       int64      `json:"steps"`
	LR          []float64  `json:"lr"` // of each step
	Seed        int64      `json:"seed"`
	// CheckpointEvery steps the trainer saves state.pt to resume from.
	CheckpointEvery int64   `json:"checkpoint_every"`
	Recompute       bool    `json:"recompute"`
	Episodes        int     `json:"episodes"`
	Items           string  `json:"items"`  // the examples' hash (train.Run.ItemsHash)
	Config          string  `json:"config"` // train.Config's JSON: a restaged run must match it
	Shards          []Shard `json:"shards"`
}

// Shard is one episodes file: the records of steps FirstStep..LastStep.
type Shard struct {
	File      string `json:"file"`
	Records   int    `json:"records"`
	FirstStep int64  `json:"first_step"`
	LastStep  int64  `json:"last_step"`
}

// StageOptions are the staging step's settings.
type StageOptions struct {
	// ShardRecords is the most episodes per shard file (default 8192); a
	// step's episodes never straddle two shards.
	ShardRecords int
	// Progress, when set, is called after each step's episodes are written.
	Progress func(step, total int64)
}

// planFor is r's plan without its shards.
func planFor(r *train.Run) (Plan, error) {
	c := r.Config
	if c.Optimizer != "adamw" {
		return Plan{}, fmt.Errorf("torch engine: optimizer %q: only adamw (torch.optim.AdamW)", c.Optimizer)
	}
	if c.LoRA.On() {
		return Plan{}, errors.New("torch engine: LoRA adapters are trained by the Go engine only (drop --lora-rank, or use --engine go)")
	}
	lrs, err := r.LRs()
	if err != nil {
		return Plan{}, err
	}
	cfg, err := json.Marshal(c)
	if err != nil {
		return Plan{}, err
	}
	a := optim.NewAdamW()
	return Plan{Stage: c.Stage, Objective: c.Objective, Beta: c.Beta, Smoothing: c.Smoothing,
		Betas: [2]float64{float64(a.Beta1), float64(a.Beta2)}, Eps: float64(a.Eps), WeightDecay: c.WeightDecay, Clip: c.Clip,
		Batch: c.Batch, Steps: r.TotalSteps(), LR: lrs, Seed: c.Seed, CheckpointEvery: c.CheckpointEvery, Recompute: c.Recompute,
		Episodes: len(r.Items), Items: r.ItemsHash(), Config: string(cfg)}, nil
}

// Stage writes r's stage into r.Dir/torch and returns that folder. A stage
// already there for the same examples and config is kept (a resumed run
// continues from the trainer's state.pt); one for other examples or settings
// is an error. plan.json is written last: without it nothing is staged.
func Stage(ctx context.Context, r *train.Run, o StageOptions) (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	p, err := planFor(r)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(r.Dir, Dir)
	if old, err := ReadPlan(dir); err == nil {
		if old.Items == p.Items && old.Config == p.Config {
			return dir, writeTrainer(dir)
		}
		return "", fmt.Errorf("torch engine: %s holds a stage of other examples or settings; use a new --out folder", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := hf.Save(filepath.Join(dir, InitDir), r.Model, nil, safetensors.F32); err != nil {
		return "", fmt.Errorf("torch engine: initial model: %w", err)
	}
	var ref [][2]float64
	if p.Stage == "pref" {
		if ref, err = r.ReferencePairs(ctx); err != nil {
			return "", err
		}
	}
	if p.Shards, err = writeShards(ctx, dir, r, ref, p.Steps, o); err != nil {
		return "", err
	}
	if err := writeTrainer(dir); err != nil {
		return "", err
	}
	raw, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return "", err
	}
	return dir, atomicfile.WriteBytes(filepath.Join(dir, PlanFile), raw)
}

// ReadPlan reads dir's plan.json.
func ReadPlan(dir string) (Plan, error) {
	var p Plan
	raw, err := os.ReadFile(filepath.Join(dir, PlanFile))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, fmt.Errorf("%s: %w", filepath.Join(dir, PlanFile), err)
	}
	return p, nil
}

// writeShards streams the episodes of every step, in step order, to
// episodes-NNNNN.jsonl files of at most o.ShardRecords records each.
func writeShards(ctx context.Context, dir string, r *train.Run, ref [][2]float64, steps int64, o StageOptions) ([]Shard, error) {
	per := o.ShardRecords
	if per <= 0 {
		per = 8192
	}
	var shards []Shard
	for step := int64(0); step < steps; {
		sh := Shard{File: fmt.Sprintf("episodes-%05d.jsonl", len(shards)), FirstStep: step}
		err := atomicfile.Write(filepath.Join(dir, sh.File), func(w io.Writer) error {
			bw := bufio.NewWriterSize(w, 1<<20)
			var buf []byte
			for ; step < steps && (sh.Records == 0 || sh.Records+r.Config.Batch <= per); step++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				for _, i := range r.BatchAt(step) {
					buf = appendEpisode(buf[:0], step, r.Items[i], ref, i)
					if _, err := bw.Write(buf); err != nil {
						return err
					}
					sh.Records++
				}
				sh.LastStep = step
				if o.Progress != nil {
					o.Progress(step+1, steps)
				}
			}
			return bw.Flush()
		})
		if err != nil {
			return nil, fmt.Errorf("torch engine: %s: %w", sh.File, err)
		}
		shards = append(shards, sh)
	}
	return shards, nil
}

// appendEpisode appends one JSON line: {"step","prompt","chosen","rejected"[,"ref"]}.
func appendEpisode(b []byte, step int64, it train.Item, ref [][2]float64, i int) []byte {
	ints := func(b []byte, key string, xs []int) []byte {
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":[`...)
		for k, x := range xs {
			if k > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(x), 10)
		}
		return append(b, ']')
	}
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, step, 10)
	b = ints(b, "prompt", it.Prompt)
	b = ints(b, "chosen", it.Chosen)
	b = ints(b, "rejected", it.Rejected)
	if ref != nil {
		b = append(b, `,"ref":[`...)
		b = strconv.AppendFloat(b, ref[i][0], 'g', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, ref[i][1], 'g', -1, 64)
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}
