package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fspo/internal/testenv"
	"fspo/runcard"
	"fspo/torch"
	"fspo/train"
)

// TestTorchEngineMatchesGo: from the same initial model, episodes, seed,
// learning rate and β, two steps of `--engine torch --nproc 2` (PyTorch,
// two gloo processes) and two steps of fspo's own engine give the same
// per-step losses (within 1e-4, relative for losses above 1) and models
// whose `fspo score` log-probs of three texts agree within 1e-3 — for the
// Pref-FT stage and for the IPO stage (both started from the Go engine's
// Pref-FT model, so each stage is compared on its own). The reference is
// PyTorch's autograd and AdamW (torch/trainer.py, Debian's python3-torch
// under CI).
func TestTorchEngineMatchesGo(t *testing.T) {
	python := torchPython(t)
	data, cfg := torchTestData(t, 2)
	init := ""
	for _, stage := range []string{"sft", "pref"} {
		goRun, thRun := trainBothEngines(t, python, data, cfg, stage, init)
		compareEngines(t, stage, goRun, thRun)
		init = goRun
	}
}

// TestTorchEngineSettings: other settings agree as well — DPO with β 0.2,
// weight decay 0.1 (matrices only, on both engines), clip 0.5, a warm-up
// step, and a batch of 3 split unevenly over the 2 ranks: three steps.
func TestTorchEngineSettings(t *testing.T) {
	python := torchPython(t)
	data, _ := torchTestData(t, 3)
	cfg := filepath.Join(t.TempDir(), "dpo.yaml")
	if err := os.WriteFile(cfg, []byte("warmup: 1\nbatch: 3\nsteps: 3\nseed: 7\nlog_every: 1\nobjective: dpo\nbeta: 0.2\nweight_decay: 0.1\nclip: 0.5\nlr: 0.001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goRun, thRun := trainBothEngines(t, python, data, cfg, "pref", "")
	compareEngines(t, "dpo with decay and clip", goRun, thRun)
}

// TestTorchEngineChatModels: the same for Hugging Face folders of other
// shapes — Qwen3 (per-head q/k norms, head size apart from the width, θ 10⁶)
// and Llama-3.1 (grouped-query attention, llama3 RoPE scaling) — whose
// episodes the models' own tokenizers and templates make: one Pref-FT step,
// with activation checkpointing on.
func TestTorchEngineChatModels(t *testing.T) {
	python := torchPython(t)
	data, cfg := torchTestData(t, 1)
	addConfig(t, cfg, "recompute: true") // both engines checkpoint activations
	for _, kind := range []string{"qwen3", "llama3_1"} {
		goRun, thRun := trainBothEngines(t, python, data, cfg, "sft", chatFolder(t, kind))
		compareEngines(t, kind, goRun, thRun)
	}
}

// TestTorchEngineTransformersPath: the trainer's path for models that
// transformers' AutoModelForCausalLM loads (all-position logits through the
// wrapped module, gradient checkpointing switched on by the model, parameters
// by their Hugging Face names), run with torch/testdata/transformers — a
// stand-in for the transformers API, which is not installed here — matches
// the Go engine as fspo's own module does, with recompute on.
func TestTorchEngineTransformersPath(t *testing.T) {
	python := torchPython(t)
	stub, err := filepath.Abs("../../torch/testdata")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", stub)
	data, cfg := torchTestData(t, 2)
	addConfig(t, cfg, "recompute: true")
	goRun, thRun := trainBothEngines(t, python, data, cfg, "sft", "")
	compareEngines(t, "transformers path", goRun, thRun)
}

// addConfig appends a line to the config file cfg.
func addConfig(t *testing.T, cfg, line string) {
	t.Helper()
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(raw, line+"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// torchTestData is a quick stories dataset and a config of steps steps
// without warm-up (every step moves the weights).
func torchTestData(t *testing.T, steps int) (data, cfg string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	if _, stderr, err := runCLI(t, "synth", "--domain", "stories", "--quick", "--out", data); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr)
	}
	cfg = filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("warmup: 0\nbatch: 4\nsteps: %d\nseed: 3\nlog_every: 1\n", steps)), 0o644); err != nil {
		t.Fatal(err)
	}
	return data, cfg
}

// trainBothEngines runs one stage with each engine from init ("" for the
// default model) and returns the two run folders.
func trainBothEngines(t *testing.T, python, data, cfg, stage, init string) (goRun, thRun string) {
	t.Helper()
	runs := map[string]string{}
	for _, engine := range []string{"go", "torch"} {
		out := filepath.Join(t.TempDir(), stage+"-"+engine)
		args := []string{"train", "--data", data, "--out", out, "--stage", stage, "--config", cfg, "--heldout", "0", "--engine", engine}
		if engine == "torch" {
			args = append(args, "--nproc", "2", "--python", python)
		}
		if init != "" {
			args = append(args, "--init", init)
		}
		if _, stderr, err := runCLI(t, args...); err != nil {
			t.Fatalf("%s %s: %v\n%s", stage, engine, err, stderr)
		}
		runs[engine] = out
	}
	return runs["go"], runs["torch"]
}

// compareEngines checks the per-step losses, learning rates and gradient
// norms of two runs, their models' log-probs of three texts, and the torch
// run's card.
func compareEngines(t *testing.T, label, goRun, thRun string) {
	t.Helper()
	goM, thM := readMetrics(t, goRun), readMetrics(t, thRun)
	if len(goM) == 0 || len(goM) != len(thM) {
		t.Fatalf("%s: %d and %d metric lines", label, len(goM), len(thM))
	}
	for i := range goM {
		// 1e-4 relative to losses above 1: IPO starts at (1/(2β))² = 100, where float32
		// noise of ~6e-6 nats in the summed log-ratio h moves the loss by ~1e-4
		d := math.Abs(goM[i].Loss - thM[i].Loss)
		if d > 1e-4*max(1, math.Abs(goM[i].Loss)) || goM[i].LR != thM[i].LR {
			t.Errorf("%s step %d: loss %.9g (go) vs %.9g (torch), |Δ| %.2g; lr %g vs %g", label, i+1, goM[i].Loss, thM[i].Loss, d, goM[i].LR, thM[i].LR)
		}
		if rel := math.Abs(goM[i].GradNorm-thM[i].GradNorm) / goM[i].GradNorm; rel > 1e-4 {
			t.Errorf("%s step %d: gradient norm %.7g vs %.7g", label, i+1, goM[i].GradNorm, thM[i].GradNorm)
		}
		t.Logf("%s step %d: loss %.9g (go) %.9g (torch), |Δ| %.2g", label, i+1, goM[i].Loss, thM[i].Loss, d)
	}
	worst := 0.0
	for _, text := range []string{"Once upon a time there was a little dog.", "The cat sat on the mat and looked at the sun.", "Lily went to the park with her mom."} {
		a, b := scoreText(t, goRun, text), scoreText(t, thRun, text)
		for k := range a.Logprobs {
			worst = max(worst, math.Abs(float64(a.Logprobs[k]-b.Logprobs[k])))
		}
		worst = max(worst, math.Abs(a.Sum-b.Sum))
	}
	if worst > 1e-3 {
		t.Errorf("%s: log-probs differ by up to %.3g", label, worst)
	}
	t.Logf("%s: max |Δ log-prob| %.3g over 3 texts (per token and summed)", label, worst)
	card, err := runcard.Load(filepath.Join(thRun, train.ModelFile))
	if err != nil || card == nil || card.Train.Engine != "torch" {
		t.Fatalf("%s: run card %+v (%v), want engine torch", label, card, err)
	}
}

// TestTorchEngineErrors: no Python with torch, and a trainer that fails on
// one rank (an episode of rank 1's share holds a token outside the
// vocabulary; rank 0 would wait for it forever), are clear errors naming the
// rank and the file and line; no model is written.
func TestTorchEngineErrors(t *testing.T) {
	python := torchPython(t)
	data, _ := torchTestData(t, 2)
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	base := []string{"train", "--data", data, "--out", out, "--stage", "sft", "--steps", "2", "--batch", "2", "--heldout", "0", "--engine", "torch"}
	_, _, err := runCLI(t, append(base, "--python", filepath.Join(dir, "no-python"))...)
	if err == nil || !strings.Contains(err.Error(), "no Python that imports torch") || !strings.Contains(err.Error(), "no-python") {
		t.Fatalf("missing Python: error %v", err)
	}
	stdout, _, err := runCLI(t, append(base, "--stage-only")...)
	if err != nil || !strings.Contains(stdout, "torchrun --nnodes") {
		t.Fatalf("--stage-only: %v\n%s", err, stdout)
	}
	shard := filepath.Join(out, torch.Dir, "episodes-00000.jsonl")
	raw, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	lines[1] = `{"step": 0, "prompt": [1, 2], "chosen": [70000], "rejected": [3]}` + "\n" // step 0's second episode: rank 1's
	if err := os.WriteFile(shard, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, append(base, "--nproc", "2", "--python", python)...)
	if err == nil || !strings.Contains(err.Error(), "rank 1") || !strings.Contains(err.Error(), "episodes-00000.jsonl:2: token id 70000") {
		t.Fatalf("corrupt shard: error %v, want the rank and the file:line", err)
	}
	if _, err := os.Stat(filepath.Join(out, train.ModelFile)); !os.IsNotExist(err) {
		t.Fatalf("a failed run left %s (%v)", train.ModelFile, err)
	}
}

// TestTorchEngineResumes: a run interrupted (its context cancelled, as by
// Ctrl-C) once the trainer has saved its step-2 state resumes from it and
// ends with the weights of an uninterrupted run, bit for bit; run once more,
// the finished stage is only read back (no Python needed).
func TestTorchEngineResumes(t *testing.T) {
	python := torchPython(t)
	data, cfg := torchTestData(t, 6)
	addConfig(t, cfg, "checkpoint_every: 2")
	dir := t.TempDir()
	trainRun := func(ctx context.Context, out string) (string, error) {
		var stderr bytes.Buffer
		env := &Env{Stdout: io.Discard, Stderr: &stderr, Stdin: strings.NewReader(""), Getenv: os.Getenv}
		err := Run(ctx, env, []string{"train", "--data", data, "--out", out, "--stage", "sft", "--config", cfg, "--heldout", "0", "--engine", "torch", "--nproc", "2", "--python", python})
		return stderr.String(), err
	}
	whole, stopped := filepath.Join(dir, "whole"), filepath.Join(dir, "stopped")
	if stderr, err := trainRun(context.Background(), whole); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // interrupt once the first checkpoint (step 2) is saved
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(stopped, torch.Dir, "state.pt")); err == nil {
				cancel()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := trainRun(ctx, stopped)
	cancel()
	if err == nil {
		t.Fatal("the interrupted run returned no error")
	}
	if _, err := os.Stat(filepath.Join(stopped, train.ModelFile)); !os.IsNotExist(err) {
		t.Fatalf("the interrupted run left %s (%v)", train.ModelFile, err)
	}
	stderr, err := trainRun(context.Background(), stopped)
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "resuming after step") {
		t.Fatalf("the second run did not resume:\n%s", stderr)
	}
	a, errA := os.ReadFile(filepath.Join(whole, torch.Dir, torch.OutDir, "model.safetensors"))
	b, errB := os.ReadFile(filepath.Join(stopped, torch.Dir, torch.OutDir, "model.safetensors"))
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Fatalf("resumed weights differ from the uninterrupted run's (%v, %v)", errA, errB)
	}
	if m := readMetrics(t, stopped); len(m) != 6 || m[5].Step != 6 {
		t.Fatalf("resumed metrics: %d lines, want steps 1..6", len(m))
	}
	// a finished stage run again (as after torchrun on other nodes) only reads the model back
	_, stderr, err = runCLI(t, "train", "--data", data, "--out", stopped, "--stage", "sft", "--config", cfg, "--heldout", "0", "--engine", "torch", "--python", filepath.Join(dir, "no-python"))
	if err != nil || !strings.Contains(stderr, "already holds the trained model") {
		t.Fatalf("rerun of a finished stage: %v\n%s", err, stderr)
	}
}

func readMetrics(t *testing.T, run string) []train.Metrics {
	t.Helper()
	f, err := os.Open(filepath.Join(run, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []train.Metrics
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m train.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		out = append(out, m)
	}
	return out
}

func scoreText(t *testing.T, run, text string) scoreResult {
	t.Helper()
	stdout, stderr, err := runCLI(t, "score", "--model", run, "--text", text, "--json")
	if err != nil {
		t.Fatalf("score %s: %v\n%s", run, err, stderr)
	}
	var r scoreResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// torchPython is a Python that imports torch; without one the test skips
// (fails under CI, where .ci/services.sh installs Debian's python3-torch).
func torchPython(t *testing.T) string {
	t.Helper()
	p, _, err := torch.FindPython(context.Background(), "")
	testenv.Require(t, err)
	return p
}
