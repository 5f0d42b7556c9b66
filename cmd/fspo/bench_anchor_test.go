package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTorchTrainAnchor runs the PyTorch speed anchor of the training
// figures (torch/anchor_train.py) on its tiny shape: it reports a rate for
// the thread count asked, the parameter count of the Llama it builds
// (counted here from the shape: tied embedding, per layer two norms, q, k,
// v, o and the three feed-forward matrices, a final norm) and a first loss
// of ln(vocabulary), as a language model with near-zero logits has.
func TestTorchTrainAnchor(t *testing.T) {
	python := torchPython(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "torch", "anchor_train.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script, "--shape", "tiny", "--steps", "2", "--threads", "1")
	cmd.Dir = t.TempDir() // not beside the repository's torch folder, which Python would import as torch
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	var rep struct {
		Params     int                  `json:"params"`
		FirstLoss  float64              `json:"first_loss"`
		Rate       map[string]float64   `json:"train_tokens_per_s"`
		StepS      map[string][]float64 `json:"step_s"`
		SgemmGF    map[string]float64   `json:"sgemm_gflops_1024"`
		Optimizer  string               `json:"optimizer"`
		Batch, Seq int
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	const dim, hidden, layers, kv, vocab = 64, 172, 2, 32, 512
	want := vocab*dim + layers*(2*dim+2*dim*dim+2*dim*kv+3*dim*hidden) + dim
	if rep.Params != want {
		t.Errorf("params %d, want %d", rep.Params, want)
	}
	if math.Abs(rep.FirstLoss-math.Log(vocab)) > 0.05 {
		t.Errorf("first loss %g, want ln(%d) = %g", rep.FirstLoss, vocab, math.Log(vocab))
	}
	if len(rep.StepS["1"]) != 2 || !(rep.Rate["1"] > 0) || !(rep.SgemmGF["1"] > 0) {
		t.Errorf("steps %v, rate %v, sgemm %v: want 2 timed steps and positive rates for 1 thread", rep.StepS, rep.Rate, rep.SgemmGF)
	}
	if rep.Optimizer != "torch.optim.AdamW(foreach=True)" || rep.Batch != 2 || rep.Seq != 128 {
		t.Errorf("optimizer %q, batch %d, seq %d", rep.Optimizer, rep.Batch, rep.Seq)
	}
}
