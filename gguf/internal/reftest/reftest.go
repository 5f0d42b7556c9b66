// Package reftest compares the engine's next-token distributions on GGUF
// models with llama.cpp's (live, or recorded in goldens). Only tests import it.
package reftest

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"

	"path/filepath"

	"fspo/gguf"
	"fspo/model"
	"fspo/modelpath"
	"fspo/tokenizer"
)

// TopK is how many of each position's most likely tokens a golden records.
const TopK = 16

// GreedySteps is how many tokens the greedy continuations run.
const GreedySteps = 16

// Golden is llama.cpp's view of one GGUF file on a few token sequences.
type Golden struct {
	Source     string  `json:"source"`
	Model      string  `json:"model"`
	FileSHA256 string  `json:"file_sha256"`
	Tolerance  float64 `json:"tolerance"`
	Cases      []Case  `json:"cases"`
	Tokenize   []Tok   `json:"tokenize,omitempty"`
}

// Case is one token sequence: the top-K log-probs after each prefix, and
// the greedy continuation of the whole sequence with each step's top-2 margin.
type Case struct {
	Tokens  []int      `json:"tokens"`
	Top     [][]IDProb `json:"top"` // Top[i]: after Tokens[:i+1]
	Greedy  []int      `json:"greedy"`
	Margins []float64  `json:"greedy_margins"`
}

// IDProb is a token and its log-probability.
type IDProb struct {
	ID int     `json:"id"`
	LP float64 `json:"lp"`
}

// Tok is llama.cpp's tokenization of a text (special tokens added).
type Tok struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// Dist computes next-token log-probs after each prefix of tokens.
type Dist func(tokens []int) ([][]float64, error)

// Greedy continues tokens greedily for n steps, giving each step's top-2 margin.
type Greedy func(tokens []int, n int) ([]int, []float64, error)

// Record builds a golden case from an engine.
func Record(tokens []int, dist Dist, greedy Greedy) (Case, error) {
	lps, err := dist(tokens)
	if err != nil {
		return Case{}, err
	}
	c := Case{Tokens: tokens}
	for i, lp := range lps {
		for id, v := range lp {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return Case{}, fmt.Errorf("position %d: log-prob of token %d is %v", i, id, v)
			}
		}
		c.Top = append(c.Top, Top(lp, TopK))
	}
	c.Greedy, c.Margins, err = greedy(tokens, GreedySteps)
	return c, err
}

// Top returns the k most likely tokens, most likely first (ties by id).
func Top(lp []float64, k int) []IDProb {
	idx := make([]int, len(lp))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lp[idx[a]] > lp[idx[b]] })
	out := make([]IDProb, min(k, len(lp)))
	for i := range out {
		out[i] = IDProb{idx[i], lp[idx[i]]}
	}
	return out
}

// LogSoftmax in float64.
func LogSoftmax(logits []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - mx)
	}
	lz := mx + math.Log(s)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - lz
	}
	return out
}

// Engine wraps the project's model as a Dist and a Greedy.
func Engine(m *model.Model) (Dist, Greedy) {
	dist := func(tokens []int) ([][]float64, error) {
		cache := m.NewCache()
		logits := make([]float32, m.Config.Vocab)
		var out [][]float64
		for _, t := range tokens {
			if err := m.Forward([]model.Step{{Cache: cache, Tokens: []int{t}, Logits: logits}}); err != nil {
				return nil, err
			}
			out = append(out, LogSoftmax(logits))
		}
		return out, nil
	}
	greedy := func(tokens []int, n int) ([]int, []float64, error) {
		seq := slices.Clone(tokens)
		cache := m.NewCache()
		logits := make([]float32, m.Config.Vocab)
		if err := m.Forward([]model.Step{{Cache: cache, Tokens: seq, Logits: logits}}); err != nil {
			return nil, nil, err
		}
		var gen []int
		var margins []float64
		for range n {
			top := Top(LogSoftmax(logits), 2)
			gen = append(gen, top[0].ID)
			margins = append(margins, top[0].LP-top[1].LP)
			if err := m.Forward([]model.Step{{Cache: cache, Tokens: []int{top[0].ID}, Logits: logits}}); err != nil {
				return nil, nil, err
			}
		}
		return gen, margins, nil
	}
	return dist, greedy
}

// Report summarizes an engine's agreement with a golden.
type Report struct {
	N                    int     // log-probs compared
	Max, Mean, P99       float64 // |Δ log-prob| over the recorded top-K entries
	Top1, Top1Of         int     // positions whose argmax agrees / positions with a clear top-2 margin
	Top5, Top5Of         int     // same for the ordered top-5 where all its gaps are clear
	GreedySame, GreedyOf int     // greedy tokens equal / compared (up to the first unclear step)
}

func (r Report) String() string {
	return fmt.Sprintf("|Δ log-prob| over %d values: max %.3g, mean %.3g, p99 %.3g; top-1 %d/%d, top-5 %d/%d, greedy %d/%d tokens",
		r.N, r.Max, r.Mean, r.P99, r.Top1, r.Top1Of, r.Top5, r.Top5Of, r.GreedySame, r.GreedyOf)
}

// Compare checks an engine against a golden.
func Compare(g *Golden, dist Dist, greedy Greedy) (Report, error) {
	var r Report
	var deltas []float64
	for _, c := range g.Cases {
		lps, err := dist(c.Tokens)
		if err != nil {
			return r, err
		}
		for i, top := range c.Top {
			for _, e := range top {
				deltas = append(deltas, math.Abs(lps[i][e.ID]-e.LP))
			}
			compareTop(&r, top, Top(lps[i], 5), g.Tolerance)
		}
		gen, _, err := greedy(c.Tokens, len(c.Greedy))
		if err != nil {
			return r, err
		}
		for i, want := range c.Greedy {
			if c.Margins[i] <= g.Tolerance {
				break
			}
			r.GreedyOf++
			if gen[i] != want {
				break
			}
			r.GreedySame++
		}
	}
	r.N = len(deltas)
	slices.Sort(deltas)
	for _, d := range deltas {
		r.Mean += d / float64(len(deltas))
	}
	if len(deltas) > 0 {
		r.Max = deltas[len(deltas)-1]
		r.P99 = deltas[int(0.99*float64(len(deltas)-1))]
	}
	return r, nil
}

func compareTop(r *Report, want []IDProb, got []IDProb, tol float64) {
	if want[0].LP-want[1].LP > tol {
		r.Top1Of++
		if got[0].ID == want[0].ID {
			r.Top1++
		}
	}
	for k := range 5 {
		if want[k].LP-want[k+1].LP <= tol {
			return
		}
	}
	r.Top5Of++
	for k := range 5 {
		if got[k].ID != want[k].ID {
			return
		}
	}
	r.Top5++
}

// Check fails when a report shows disagreement beyond tol.
func (r Report) Check(tol float64) error {
	switch {
	case r.N == 0:
		return fmt.Errorf("nothing compared")
	case r.Max > tol:
		return fmt.Errorf("max |Δ log-prob| %.3g exceeds %.3g", r.Max, tol)
	case r.Top1 != r.Top1Of || r.Top5 != r.Top5Of || r.GreedySame != r.GreedyOf:
		return fmt.Errorf("rankings differ: %v", r)
	}
	return nil
}

// SHA256 of a file, hex.
func SHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// ReadGolden reads a golden JSON file.
func ReadGolden(path string) (*Golden, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g Golden
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("golden %s: %w", path, err)
	}
	return &g, nil
}

// Stories writes stories260K (the llama2.c model the project ships with,
// found by modelpath.FindDefault) with its SentencePiece vocabulary as a
// GGUF file of weight type typ in dir, and returns its path and the model.
func Stories(dir string, typ gguf.TensorType) (string, *model.Model, *tokenizer.Tokenizer, error) {
	paths, err := modelpath.FindDefault()
	if err != nil {
		return "", nil, nil, err
	}
	m, err := model.LoadLlama2C(paths.Checkpoint)
	if err != nil {
		return "", nil, nil, err
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		return "", nil, nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("stories260K-%s.gguf", typ))
	err = gguf.WriteModel(path, m.Config, m.W, gguf.FromLlama2C(tok), gguf.WriteOptions{Type: typ, Name: "stories260K"})
	return path, m, tok, err
}

// StoryTexts are the prompts the stories260K goldens tokenize and score.
var StoryTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	"The cat sat on the mat. It was happy!",
	"Tom and Sue went to the park to play with a red ball",
	"  spaces,\tnewlines\nand ünïcödé 🙂 fall back to bytes",
}

// RandomConfigs are small random models of each architecture, with
// stories260K's 512-token vocabulary so that llama.cpp has a tokenizer.
var RandomConfigs = map[string]model.Config{
	"llama-gqa": {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000, Arch: "llama"},
	// qwen2 with zero biases is the llama model with NeoX RoPE: it checks
	// the q/k permutation against llama.cpp with an engine that has no biases.
	"qwen2-zero-bias": {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, SeqLen: 128, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen2", QKVBias: true, SharedClassifier: true},
	"qwen2":           {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 512, SeqLen: 128, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen2", QKVBias: true, SharedClassifier: true},
	"qwen3":           {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 32, Vocab: 512, SeqLen: 128, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen3", QKNorm: true},
	"llama-rope-scaling": {Dim: 128, Hidden: 96, Layers: 2, Heads: 2, KVHeads: 1, Vocab: 512, SeqLen: 128, NormEps: 1e-5, RopeTheta: 500000, Arch: "llama", SharedClassifier: true,
		RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}},
}

// Random writes RandomConfigs[name] with seeded random weights as an F32
// GGUF file in dir.
func Random(dir, name string) (string, *tokenizer.Tokenizer, error) {
	c := RandomConfigs[name]
	paths, err := modelpath.FindDefault()
	if err != nil {
		return "", nil, err
	}
	tok, err := tokenizer.Load(paths.Tokenizer)
	if err != nil {
		return "", nil, err
	}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(uint64(len(name)), 7))
	for _, t := range p.Tensors(c) {
		std, mean := 0.15, 0.0
		switch t.Name {
		case "rms_att", "rms_ffn", "rms_final", "q_norm", "k_norm":
			std, mean = 0.1, 1
		case "bq", "bk", "bv":
			if name == "qwen2-zero-bias" {
				std = 0
			} else {
				std = 0.3
			}
		}
		for i := range t.Data {
			t.Data[i] = float32(mean + std*rng.NormFloat64())
		}
	}
	path := filepath.Join(dir, "random-"+name+".gguf")
	err = gguf.WriteModel(path, c, p, gguf.FromLlama2C(tok), gguf.WriteOptions{Type: gguf.F32, Name: "random-" + name})
	return path, tok, err
}

// TinyRandomSHA256 is the sha256 of llama-2-tiny-random.gguf, a real GGUF
// file (random weights, the Llama-2 vocabulary) kept gzipped in testdata.
const TinyRandomSHA256 = "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb"

// TinyRandom unpacks gz (the package's testdata/llama-2-tiny-random.gguf.gz)
// into dir, checks its hash and returns the file's path.
func TinyRandom(gz, dir string) (string, error) {
	in, err := os.Open(gz)
	if err != nil {
		return "", err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return "", fmt.Errorf("%s: %w", gz, err)
	}
	path := filepath.Join(dir, "llama-2-tiny-random.gguf")
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return "", fmt.Errorf("%s: %w", gz, err)
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	if sum, err := SHA256(path); err != nil || sum != TinyRandomSHA256 {
		return "", fmt.Errorf("%s unpacks to sha256 %s (%v), want %s", gz, sum, err, TinyRandomSHA256)
	}
	return path, nil
}
