package peft

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"fspo/hf"
	"fspo/model"
)

// loraFixtures are the tiny Hugging Face models (hf/testdata/tiny) that
// testdata/<name> holds a PEFT adapter for, and its targets.
var loraFixtures = map[string][]string{
	"llama-gqa-scaled": model.LoRATargets,
	"llama-untied":     {"q", "v", "down"},
	"qwen2":            {"q", "k", "o", "up"},
	"qwen3":            model.LoRATargets,
}

// fixtureAdapter is the seeded adapter of a fixture (B not zero).
func fixtureAdapter(t *testing.T, c model.Config, targets []string) *model.LoRA {
	l, err := model.NewLoRA(c, 2, 5, targets, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 9))
	for _, tt := range l.Tensors {
		for i := range tt.B {
			tt.B[i] = float32(rng.NormFloat64() * 0.3)
		}
	}
	return l
}

// TestLoRAFixturesReproducible: the committed adapter folders are what
// fixtureAdapter and Write give (FSPO_UPDATE_LORA=1 rewrites them; then run
// model/testdata/hfref/reference.py for the goldens, see its README).
func TestLoRAFixturesReproducible(t *testing.T) {
	for name, targets := range loraFixtures {
		m, _, err := hf.Load(filepath.Join("..", "hf", "testdata", "tiny", name))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if os.Getenv("FSPO_UPDATE_LORA") != "" {
			dir = filepath.Join("testdata", name)
		}
		if err := Write(dir, m.Config, fixtureAdapter(t, m.Config, targets), "hf/testdata/tiny/"+name); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{ConfigFile, WeightsFile} {
			a, err1 := os.ReadFile(filepath.Join(dir, f))
			b, err2 := os.ReadFile(filepath.Join("testdata", name, f))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s/%s: written anew it differs from the committed file (%v, %v)", name, f, err1, err2)
			}
		}
	}
}

// TestLoRAMatchesTorch: a tiny model of each architecture with a PEFT
// adapter, read by Read and attached, gives the log-probs and adapter
// gradients of the float64 PyTorch reference (model/testdata/hfref/
// reference.py run with the adapter folder; <name>-lora.json).
func TestLoRAMatchesTorch(t *testing.T) {
	for name := range loraFixtures {
		m, _, err := hf.Load(filepath.Join("..", "hf", "testdata", "tiny", name))
		if err != nil {
			t.Fatal(err)
		}
		l, _, err := Read(filepath.Join("testdata", name), m.Config)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Attach(l); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join("..", "model", "testdata", "hfref", name+"-lora.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ref struct {
			Sequences [][]int       `json:"sequences"`
			Logprobs  [][][]float64 `json:"logprobs"`
			Grads     map[string]struct {
				L2   float64 `json:"l2"`
				DotU float64 `json:"dot_u"`
			} `json:"grads"`
		}
		if err := json.Unmarshal(raw, &ref); err != nil {
			t.Fatal(err)
		}
		var exs []model.Example
		for _, s := range ref.Sequences {
			exs = append(exs, model.Example{Prompt: s[:1], Completions: [][]int{s[1:]}})
		}
		p, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i, s := range ref.Sequences {
			for k, lp := range p.Tokens(i, 0) {
				worst = math.Max(worst, math.Abs(float64(lp)-ref.Logprobs[i][k][s[k+1]]))
			}
			p.SetGrad(i, 0, 1)
		}
		g := l.Grads()
		p.BackwardAdapter(g)
		// the gradients in PEFT's names and layout, as the reference has them
		dir := t.TempDir()
		if err := Write(dir, m.Config, g, ""); err != nil {
			t.Fatal(err)
		}
		gl, err := readRaw(filepath.Join(dir, WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		worstGrad := 0.0
		for key, want := range ref.Grads {
			got, ok := gl[key]
			if !ok {
				t.Fatalf("%s: no gradient for %s", name, key)
			}
			var l2, dot float64
			for i, v := range got {
				l2 += float64(v) * float64(v)
				dot += float64(v) * math.Sin(1.3*float64(i)+0.5)
			}
			l2 = math.Sqrt(l2)
			worstGrad = math.Max(worstGrad, math.Max(math.Abs(l2-want.L2)/want.L2, math.Abs(dot-want.DotU)/math.Max(want.L2, 1e-12)))
		}
		if worst > 1e-4 || worstGrad > 1e-4 || len(gl) != len(ref.Grads) {
			t.Errorf("%s: max |Δ log-prob| %.2e, worst relative gradient error %.2e over %d tensors (reference %d)", name, worst, worstGrad, len(gl), len(ref.Grads))
		}
		t.Logf("%s with a rank-2 adapter on %v: max |Δ log-prob| vs PyTorch %.2e, worst relative gradient error %.2e over %d tensors", name, l.Targets(), worst, worstGrad, len(gl))
	}
}
