package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"fspo/ckpt"
	"fspo/model"
	"fspo/tensor"
)

func tinyModel(t *testing.T, seed uint64) *model.Model {
	c := model.Config{Dim: 16, Hidden: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 41, SeqLen: 64, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 10000}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, tt := range p.Tensors(c) {
		for i := range tt.Data {
			tt.Data[i] = float32(rng.NormFloat64() * 0.2)
			if strings.HasPrefix(tt.Name, "rms") {
				tt.Data[i] += 1
			}
		}
	}
	m, err := model.New(c, p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// items: the "user" prefers completions made of even tokens.
func tinyItems(n int) []Item {
	rng := rand.New(rand.NewPCG(1, 2))
	seq := func(k int, even bool) []int {
		out := make([]int, k)
		for i := range out {
			v := 3 + 2*rng.IntN(18)
			if !even {
				v++
			}
			out[i] = v
		}
		return append(out, model.EOS)
	}
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{User: "u", Prompt: append([]int{model.BOS}, seq(6+rng.IntN(6), rng.IntN(2) == 0)...), Chosen: seq(5, true), Rejected: seq(5, false)}
	}
	return items
}

func weights(m *model.Model) []float32 {
	var out []float32
	for _, t := range m.W.Tensors(m.Config) {
		out = append(out, t.Data...)
	}
	return out
}

// TestResumeEqualsUninterrupted: a run stopped at several points and resumed
// ends with bit-identical weights to an uninterrupted run, for both stages,
// training every weight or a LoRA adapter (whose run has no reference model),
// over an F32 base or one held in BF16.
func TestResumeEqualsUninterrupted(t *testing.T) {
	for _, variant := range []string{"sft", "pref", "sft-lora", "pref-lora", "pref-lorabf16", "pref-recompute"} {
		stage, lora, _ := strings.Cut(variant, "-")
		recompute := lora == "recompute"
		if recompute {
			lora = ""
		}
		cfg := Default(stage)
		cfg.Steps, cfg.Batch, cfg.CheckpointEvery, cfg.LogEvery, cfg.Warmup = 12, 4, 5, 1, 3
		if lora != "" {
			cfg.LoRA = LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{"q", "v", "o", "down"}}
			cfg.LR = 1e-2
			if lora == "lorabf16" {
				cfg.LoRA.BaseDType = "bf16"
			}
		}
		cfg.Recompute = recompute
		items := tinyItems(20)
		run := func(dir string, stopAt ...int64) []float32 {
			m := tinyModel(t, 1)
			var ref *model.Model
			if stage == "pref" && lora == "" {
				ref = tinyModel(t, 1)
			}
			for _, stop := range append(stopAt, -1) {
				ctx, cancel := context.WithCancel(context.Background())
				r := &Run{Config: cfg, Dir: dir, Model: m, Ref: ref, Items: items, Progress: func(mt Metrics, total int64) {
					if mt.Step == stop {
						cancel()
					}
				}}
				err := r.Train(ctx)
				cancel()
				if stop >= 0 && !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: run stopped at %d: %v", variant, stop, err)
				}
				if stop < 0 && err != nil {
					t.Fatal(err)
				}
				m = tinyModel(t, 1) // a fresh process: weights come from the checkpoint only
				if stop < 0 {
					back, err := model.Load(filepath.Join(dir, ModelFile))
					if err != nil {
						t.Fatal(err)
					}
					return weights(back)
				}
			}
			return nil
		}
		want := run(t.TempDir())
		got := run(t.TempDir(), 3, 7, 11)
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("%s: weight %d after resume %v, uninterrupted %v", variant, i, got[i], want[i])
			}
		}
		changed := 0
		for i, w := range weights(tinyModel(t, 1)) {
			if want[i] != w {
				changed++
			}
		}
		if changed == 0 {
			t.Fatalf("%s: training did not change the weights", variant)
		}
		t.Logf("%s: %d of %d weights changed", variant, changed, len(want))
	}
}

// TestPrefStageLearns: IPO against the frozen initial model raises the
// implicit reward accuracy on the training pairs.
func TestPrefStageLearns(t *testing.T) {
	cfg := Default("pref")
	cfg.Steps, cfg.Batch, cfg.LR, cfg.Warmup, cfg.LogEvery = 60, 8, 3e-3, 5, 1
	dir := t.TempDir()
	r := &Run{Config: cfg, Dir: dir, Model: tinyModel(t, 2), Ref: tinyModel(t, 2), Items: tinyItems(40)}
	trainLearns(t, r, "the preference stage")
}

// trainLearns trains r and fails unless its loss fell and its last
// step's pair accuracy reached 0.9.
func trainLearns(t *testing.T, r *Run, what string) {
	t.Helper()
	if err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadMetrics(filepath.Join(r.Dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	first, last := ms[0], ms[len(ms)-1]
	if !(last.Loss < first.Loss) || last.Accuracy < 0.9 {
		t.Fatalf("loss %.4f -> %.4f, accuracy %.2f -> %.2f: %s did not learn", first.Loss, last.Loss, first.Accuracy, last.Accuracy, what)
	}
}

func TestBadInput(t *testing.T) {
	cfg := Default("pref")
	cfg.Steps = 1
	long := tinyItems(1)
	long[0].Prompt = make([]int, 100)
	for _, tc := range []struct {
		name string
		run  *Run
		want string
	}{
		{"no reference", &Run{Config: cfg, Model: tinyModel(t, 1), Items: tinyItems(2)}, "reference"},
		{"too long", &Run{Config: cfg, Model: tinyModel(t, 1), Ref: tinyModel(t, 1), Items: long}, "positions"},
		{"no items", &Run{Config: cfg, Model: tinyModel(t, 1), Ref: tinyModel(t, 1)}, "no examples"},
		{"bad config", &Run{Config: Config{Stage: "x"}, Model: tinyModel(t, 1), Items: tinyItems(2)}, "stage"},
	} {
		tc.run.Dir = t.TempDir()
		err := tc.run.Train(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	// a resume with other data is refused
	dir := t.TempDir()
	cfg.Steps, cfg.CheckpointEvery = 2, 1
	if err := (&Run{Config: cfg, Dir: dir, Model: tinyModel(t, 1), Ref: tinyModel(t, 1), Items: tinyItems(4)}).Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := (&Run{Config: cfg, Dir: dir, Model: tinyModel(t, 1), Ref: tinyModel(t, 1), Items: tinyItems(5)}).Train(context.Background())
	if err == nil || !strings.Contains(err.Error(), "other examples") {
		t.Errorf("resume with other data: %v", err)
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"c.yaml": "stage: sft\nlearning_rate: 0.1\n", "c.json": `{"stage": "sft", "lrr": 1}`} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		_, err := LoadConfig(path, Default("sft"))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and the unknown key", name, err)
		}
	}
	path := filepath.Join(dir, "ok.yaml")
	os.WriteFile(path, []byte("stage: pref\nbeta: 0.1\n"), 0o644)
	c, err := LoadConfig(path, Default("sft"))
	if err != nil || c.Beta != 0.1 || c.Stage != "pref" || c.Batch != Default("sft").Batch {
		t.Errorf("config %+v, err %v", c, err)
	}
}

// TestLoRARun: a LoRA run trains only its adapter: IPO over the frozen
// initial model (no reference copy) learns the preference; the run writes
// the adapter (adapter.fspo) and the merged model, which equals the
// initial model with the adapter merged in. Over a base held in BF16
// (lora.base_dtype) likewise, the merged model's base being the BF16
// values widened.
func TestLoRARun(t *testing.T) {
	for _, base := range []string{"", "bf16"} {
		cfg := Default("pref")
		cfg.Steps, cfg.Batch, cfg.LR, cfg.Warmup, cfg.LogEvery = 60, 8, 1e-2, 5, 1
		cfg.LoRA = LoRAConfig{Rank: 4, Alpha: 8, Targets: model.LoRATargets, BaseDType: base}
		dir := t.TempDir()
		r := &Run{Config: cfg, Dir: dir, Model: tinyModel(t, 2), Items: tinyItems(40)}
		trainLearns(t, r, fmt.Sprintf("the LoRA preference stage over base %q", base))
		cp, err := ckpt.Load(filepath.Join(dir, AdapterFile))
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := model.LoRAFromCheckpoint(cp)
		if err != nil {
			t.Fatal(err)
		}
		want := tinyModel(t, 2)
		if base != "" {
			if err := want.SetDType(tensor.BF16); err != nil {
				t.Fatal(err)
			}
			want.Dequantize()
		}
		if err := l.Merge(want.Config, want.W); err != nil {
			t.Fatal(err)
		}
		got, err := model.Load(filepath.Join(dir, ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		if w, g := weights(want), weights(got); !slices.Equal(w, g) {
			t.Fatalf("base %q: model.fspo is not the initial model with adapter.fspo merged in", base)
		}
		if slices.Equal(weights(got), weights(tinyModel(t, 2))) {
			t.Fatalf("base %q: the merged model equals the initial one", base)
		}
	}
}
