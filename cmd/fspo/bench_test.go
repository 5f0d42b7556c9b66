package main

import (
	"encoding/json"
	"math"
	"testing"

	"fspo/model"
)

// TestTrainFlops checks the count against one worked out by hand for a
// small config (QDim 8, KVDim 4): weights 2·(8·(8+2·4) + 8·8 + 3·8·16) +
// 32·8 = 2·576 + 256 = 1,408, so 6·1,408 = 8,448 for the products, and
// attention 2 layers · 6 · 8 (QDim) · (3+1) = 384 for sequences of 3.
func TestTrainFlops(t *testing.T) {
	c := model.Config{Dim: 8, Hidden: 16, Layers: 2, Heads: 2, KVHeads: 1, Vocab: 32, SeqLen: 16}
	if got := trainFlops(c, 3); got != 8448+384 {
		t.Errorf("trainFlops = %g, want %d", got, 8448+384)
	}
}

// TestBenchTraining runs fspo bench's training part on the default model:
// every rate and the sgemm peak are there for each thread count, the
// GFLOP/s are the tokens per second times trainFlops, and the share of the
// peak is the median of the runs' ratios, each of them positive.
func TestBenchTraining(t *testing.T) {
	p := sharedModel(t)
	out, _, err := runCLI(t, "bench", "--model", p.Checkpoint, "--json", "--repeats", "3", "--threads", "1,2", "--positions", "8", "--prefill", "0", "--batch", "2", "--seq", "16", "--steps", "1")
	if err != nil {
		t.Fatal(err)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json: %v: %s", err, out)
	}
	m, err := model.Load(p.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	perToken := trainFlops(m.Config, 16) / 1e9
	for _, k := range []string{"1", "2"} {
		if !(r.Train[k] > 0) || !(r.GemmGF[k] > 0) || math.Abs(r.TrainGF[k]-r.Train[k]*perToken) > 1e-9*r.TrainGF[k] {
			t.Errorf("threads %s: train %g tok/s, %g GFLOP/s (want %g), sgemm peak %g", k, r.Train[k], r.TrainGF[k], r.Train[k]*perToken, r.GemmGF[k])
		}
		runs := r.ShareRuns[k]
		if len(runs) != 3 || r.PeakShare[k] != medianOf(runs) {
			t.Errorf("threads %s: share %g, runs %v: want the median of 3 runs", k, r.PeakShare[k], runs)
		}
		for _, x := range runs {
			if !(x > 0) || math.IsInf(x, 0) {
				t.Errorf("threads %s: a run's share of the peak is %g", k, x)
			}
		}
	}
}
