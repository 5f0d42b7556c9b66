package hf

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"fspo/model"
)

// torchRef is a golden written by model/testdata/hfref/reference.py: a
// float64 PyTorch implementation of the Hugging Face modelling equations,
// independent of the engine, run on the tiny folder named in Source.
type torchRef struct {
	Source    string        `json:"source"`
	Sequences [][]int       `json:"sequences"`
	Logprobs  [][][]float64 `json:"logprobs"` // (sequence, position, vocab) log-softmax
	Grads     map[string]struct {
		Shape  []int     `json:"shape"`
		L2     float64   `json:"l2"`
		DotU   float64   `json:"dot_u"`
		Index  []int     `json:"index"`
		Values []float64 `json:"values"`
	} `json:"grads"`
}

// torchRefCases: each tiny folder and its golden (the F16 and sharded copies
// hold the same weights as the folder the golden was computed on).
var torchRefCases = []struct{ folder, golden string }{
	{"llama-gqa-scaled", "llama-gqa-scaled"},
	{"llama-gqa-scaled-f16", "llama-gqa-scaled"},
	{"llama-untied", "llama-untied"},
	{"llama-untied-sharded", "llama-untied"},
	{"qwen2", "qwen2"},
	{"qwen3", "qwen3"},
}

func loadTorchRef(t *testing.T, name string) torchRef {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "model", "testdata", "hfref", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref torchRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("golden %s: %v", name, err)
	}
	if len(ref.Sequences) == 0 || len(ref.Logprobs) != len(ref.Sequences) || len(ref.Grads) == 0 {
		t.Fatalf("golden %s: incomplete", name)
	}
	return ref
}

// TestLogprobsMatchTorch: the next-token log-probs of the scoring pass (at
// every target) and of cached decoding (the whole distribution at every
// position) agree with the float64 PyTorch reference within 1e-3; the float32
// engine is in fact within a few 1e-6.
func TestLogprobsMatchTorch(t *testing.T) {
	for _, tc := range torchRefCases {
		ref := loadTorchRef(t, tc.golden)
		m, _ := mustLoad(t, tiny(tc.folder))
		var exs []model.Example
		for _, s := range ref.Sequences {
			exs = append(exs, model.Example{Prompt: s[:1], Completions: [][]int{s[1:]}})
		}
		p, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		scoreDiff, decodeDiff := 0.0, 0.0
		for i, s := range ref.Sequences {
			for k, got := range p.Tokens(i, 0) {
				scoreDiff = math.Max(scoreDiff, math.Abs(float64(got)-ref.Logprobs[i][k][s[k+1]]))
			}
			decodeDiff = math.Max(decodeDiff, decodeLogprobDiff(t, m, s, ref.Logprobs[i]))
		}
		t.Logf("%s: max |Δ log-prob| vs PyTorch: scoring %.2e, decoding %.2e", tc.folder, scoreDiff, decodeDiff)
		if scoreDiff > 1e-3 || decodeDiff > 1e-3 {
			t.Errorf("%s: max |Δ log-prob| scoring %.2e, decoding %.2e, want ≤ 1e-3", tc.folder, scoreDiff, decodeDiff)
		}
	}
}

// decodeLogprobDiff decodes seq with a KV cache (a prefill of 5 tokens, then
// one token at a time) and returns the largest difference of the
// log-softmax rows from want (position, vocab).
func decodeLogprobDiff(t *testing.T, m *model.Model, seq []int, want [][]float64) float64 {
	const prefill = 5
	cache, logits := m.NewCache(), make([]float32, m.Config.Vocab)
	worst := 0.0
	for pos := prefill - 1; pos < len(seq); pos++ {
		in := seq[pos : pos+1]
		if pos == prefill-1 {
			in = seq[:prefill]
		}
		if err := m.Forward([]model.Step{{Cache: cache, Tokens: in, Logits: logits}}); err != nil {
			t.Fatal(err)
		}
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, float64(v))
		}
		sum := 0.0
		for _, v := range logits {
			sum += math.Exp(float64(v) - mx)
		}
		for j, v := range logits {
			worst = math.Max(worst, math.Abs(float64(v)-mx-math.Log(sum)-want[pos][j]))
		}
	}
	return worst
}

// TestGradientsMatchTorch: the gradient of the summed next-token log-prob of
// the golden's sequences, for every tensor in Hugging Face's layout (query
// and key rows permuted back to halves): its L2 norm and its dot product
// with the direction u[i] = sin(1.3i + 0.5) within 1e-4 relative (to the
// L2 norm times √n for the dot product), and 16 sampled entries within
// 1e-4 of the tensor's RMS.
func TestGradientsMatchTorch(t *testing.T) {
	const tol = 1e-4
	for _, tc := range torchRefCases {
		ref := loadTorchRef(t, tc.golden)
		m, _ := mustLoad(t, tiny(tc.folder))
		var exs []model.Example
		for _, s := range ref.Sequences {
			exs = append(exs, model.Example{Prompt: s[:1], Completions: [][]int{s[1:]}})
		}
		p, err := m.Score(exs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range exs {
			p.SetGrad(i, 0, 1)
		}
		g := model.NewParams(m.Config)
		p.Backward(g)
		worst, checked := 0.0, 0
		for _, e := range entries(m.Config, g) {
			r, ok := ref.Grads[e.name]
			if !ok {
				t.Errorf("%s: %s has no reference gradient", tc.folder, e.name)
				continue
			}
			checked++
			d := append([]float32(nil), e.dst...)
			if e.hs > 0 {
				model.InterleavedToHalf(d, e.hs, e.cols())
			}
			err := gradError(d, r.L2, r.DotU, r.Index, r.Values)
			worst = math.Max(worst, err)
			if err > tol {
				t.Errorf("%s %s: relative gradient error %.2e, want ≤ %g", tc.folder, e.name, err, tol)
			}
		}
		if checked != len(ref.Grads) {
			t.Errorf("%s: checked %d tensors, the reference has %d", tc.folder, checked, len(ref.Grads))
		}
		t.Logf("%s: %d gradient tensors, worst relative error vs PyTorch %.2e", tc.folder, checked, worst)
	}
}

// gradError is the largest relative error of d's L2 norm, dot product with
// u[i] = sin(1.3i + 0.5), and sampled values, against the reference's.
func gradError(d []float32, l2, dotU float64, index []int, values []float64) float64 {
	var n2, dot float64
	for i, v := range d {
		n2 += float64(v) * float64(v)
		dot += float64(v) * math.Sin(1.3*float64(i)+0.5)
	}
	scale := math.Max(l2, 1e-12)
	rms := scale / math.Sqrt(float64(len(d)))
	worst := math.Max(math.Abs(math.Sqrt(n2)-l2)/scale, math.Abs(dot-dotU)/(scale*math.Sqrt(float64(len(d)))))
	for k, i := range index {
		worst = math.Max(worst, math.Abs(float64(d[i])-values[k])/rms)
	}
	return worst
}
