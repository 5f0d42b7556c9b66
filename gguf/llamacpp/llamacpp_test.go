package llamacpp

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hybridgroup/yzma/pkg/llama"

	"fspo/gguf"
	"fspo/gguf/internal/reftest"
	"fspo/model"
)

var update = flag.Bool("update", false, "rewrite the goldens in ../testdata/llamacpp from llama.cpp")

const (
	tinyRandomGz = "../testdata/llama-2-tiny-random.gguf.gz"
	goldenDir    = "../testdata/llamacpp"
)

// Tolerances on |Δ log-prob| (also the top-2 margin below which rankings
// and greedy steps are not compared). llama.cpp rounds activations to F16 in
// its F16 matrix products and keeps an F16 KV cache; with Q8_0 weights it
// also quantizes the activations to 8 bits (Q8_0 dot products), which the
// engine (float32 activations on the dequantized weights) does not. The tiny
// random model's logits are nearly flat, so its rounding errors are tiny.
var tolerances = map[string]float64{
	"llama-2-tiny-random": 1e-3,
	"stories260K-F16":     0.05,
	"stories260K-Q8_0":    0.3,
	"stories260K-F32":     1e-4, // float32 KV cache, no flash attention
}

func tolerance(name string) float64 {
	switch {
	case strings.HasPrefix(name, "random-") || strings.HasPrefix(name, "hf-") && strings.HasSuffix(name, "-F32"):
		return 1e-4 // F32 like stories260K-F32
	case strings.HasPrefix(name, "hf-"): // like stories260K's F16 and Q8_0
		return tolerances["stories260K"+name[strings.LastIndexByte(name, '-'):]]
	}
	return tolerances[name]
}

var loadOnce sync.Once
var loadErr error

// lib loads the llama.cpp libraries once; it skips the test when they are
// missing, unless CI is set.
func lib(t *testing.T) {
	t.Helper()
	dir := os.Getenv("FSPO_LLAMACPP_LIB")
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "fspo", "llamacpp-3.22.1", "package", "bins", "linux-x64")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "libllama.so")); err != nil {
		msg := fmt.Sprintf("llama.cpp libraries not found (%v); run `export FSPO_LLAMACPP_LIB=$(.ci/llamacpp.sh)`", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	loadOnce.Do(func() {
		if loadErr = llama.Load(dir); loadErr == nil {
			llama.LogSet(llama.LogSilent())
			llama.Init()
		}
	})
	if loadErr != nil {
		t.Fatalf("load llama.cpp from %s: %v", dir, loadErr)
	}
}

// engine is a model loaded in llama.cpp, optionally with a LoRA adapter.
type engine struct {
	m     llama.Model
	ctx   llama.Context
	vocab llama.Vocab
	n     int
}

// open loads path in llama.cpp; exact asks for a float32 KV cache and no
// flash attention (whose CPU kernel rounds queries to F16), so that F32
// weights are computed in float32 throughout.
func open(t *testing.T, path, adapter string, exact bool) *engine {
	t.Helper()
	m, err := llama.ModelLoadFromFile(path, llama.ModelDefaultParams())
	if err != nil {
		t.Fatalf("llama.cpp load %s: %v", path, err)
	}
	cp := llama.ContextDefaultParams()
	cp.NCtx, cp.NBatch, cp.NUbatch = 256, 256, 256
	if exact {
		cp.TypeK, cp.TypeV = llama.GGMLTypeF32, llama.GGMLTypeF32
		cp.FlashAttentionType = llama.FlashAttentionTypeDisabled
	}
	ctx, err := llama.InitFromModel(m, cp)
	if err != nil {
		t.Fatalf("llama.cpp context for %s: %v", path, err)
	}
	e := &engine{m: m, ctx: ctx, vocab: llama.ModelGetVocab(m)}
	e.n = int(llama.VocabNTokens(e.vocab))
	if adapter != "" {
		a, err := llama.AdapterLoraInit(m, adapter)
		if err != nil || a == 0 {
			t.Fatalf("llama.cpp load adapter %s: %v", adapter, err)
		}
		if rc := llama.SetAdaptersLora(ctx, []llama.AdapterLora{a}, []float32{1}); rc != 0 {
			t.Fatalf("llama.cpp set adapter %s: %d", adapter, rc)
		}
		// the model frees its adapters
	}
	t.Cleanup(func() { llama.Free(ctx); llama.ModelFree(m) })
	return e
}

// step decodes one token and returns the log-softmax of the logits after it.
func (e *engine) step(tok int) ([]float64, error) {
	if _, err := llama.Decode(e.ctx, llama.BatchGetOne([]llama.Token{llama.Token(tok)})); err != nil {
		return nil, err
	}
	lg, err := llama.GetLogitsIth(e.ctx, -1, e.n)
	if err != nil {
		return nil, err
	}
	return reftest.LogSoftmax(lg), nil
}

func (e *engine) reset() error {
	mem, err := llama.GetMemory(e.ctx)
	if err != nil {
		return err
	}
	return llama.MemoryClear(mem, true)
}

func (e *engine) dist(tokens []int) ([][]float64, error) {
	if err := e.reset(); err != nil {
		return nil, err
	}
	var out [][]float64
	for _, t := range tokens {
		lp, err := e.step(t)
		if err != nil {
			return nil, err
		}
		out = append(out, lp)
	}
	return out, nil
}

func (e *engine) greedy(tokens []int, n int) ([]int, []float64, error) {
	lps, err := e.dist(tokens)
	if err != nil {
		return nil, nil, err
	}
	lp := lps[len(lps)-1]
	var gen []int
	var margins []float64
	for range n {
		top := reftest.Top(lp, 2)
		gen = append(gen, top[0].ID)
		margins = append(margins, top[0].LP-top[1].LP)
		if lp, err = e.step(top[0].ID); err != nil {
			return nil, nil, err
		}
	}
	return gen, margins, nil
}

func (e *engine) tokenize(text string) []int {
	var ids []int
	for _, t := range llama.Tokenize(e.vocab, text, true, false) {
		ids = append(ids, int(t))
	}
	return ids
}

// check compares the project's engine on m (nil: none yet) with llama.cpp
// on the GGUF file at path, and with -update writes the golden.
func check(t *testing.T, name, path string, m *model.Model, cases [][]int, texts []string) (*engine, reftest.Report) {
	e := open(t, path, "", strings.HasSuffix(name, "-F32"))
	sum, err := reftest.SHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &reftest.Golden{Source: "llama.cpp v0.5.0 (npm @node-llama-cpp/linux-x64@3.22.1) via yzma v1.28.0: (cd gguf/llamacpp && go test . -update)",
		Model: name, FileSHA256: sum, Tolerance: tolerance(name)}
	for _, c := range cases {
		rc, err := reftest.Record(c, e.dist, e.greedy)
		if err != nil {
			t.Fatal(err)
		}
		g.Cases = append(g.Cases, rc)
	}
	for _, text := range texts {
		g.Tokenize = append(g.Tokenize, reftest.Tok{Text: text, IDs: e.tokenize(text)})
	}
	var r reftest.Report
	if m != nil {
		if e.n != m.Config.Vocab {
			t.Fatalf("llama.cpp vocabulary %d, model %d", e.n, m.Config.Vocab)
		}
		dist, greedy := reftest.Engine(m)
		r, err = reftest.Compare(g, dist, greedy)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s vs llama.cpp: %v", name, r)
		if err := r.Check(g.Tolerance); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if *update {
		b, err := json.MarshalIndent(g, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(goldenDir, name+".json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e, r
}

// randomCases are n sequences of length l: BOS and random ids from [3, vocab).
func randomCases(seed uint64, n, l, vocab int) [][]int {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out [][]int
	for range n {
		c := []int{1}
		for len(c) < l {
			c = append(c, 3+rng.IntN(vocab-3))
		}
		out = append(out, c)
	}
	return out
}

func TestTinyRandomMatchesLlamaCpp(t *testing.T) {
	lib(t)
	tinyRandom, err := reftest.TinyRandom(tinyRandomGz, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := gguf.Load(tinyRandom)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := check(t, "llama-2-tiny-random", tinyRandom, m, randomCases(1, 4, 12, m.Config.Vocab), []string{"Hello world"})
	// The model's README records this tokenization by llama.cpp.
	if got := e.tokenize("Hello world"); fmt.Sprint(got) != "[1 15043 3186]" {
		t.Errorf("llama.cpp tokenizes Hello world as %v", got)
	}
}

func TestStoriesMatchesLlamaCpp(t *testing.T) {
	lib(t)
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			path, _, tok, err := reftest.Stories(t.TempDir(), typ)
			if err != nil {
				t.Fatal(err)
			}
			// The project's engine runs what it reads back from the file.
			m, _, err := gguf.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var cases [][]int
			for _, s := range reftest.StoryTexts {
				cases = append(cases, tok.Encode(s, true, false))
			}
			e, _ := check(t, "stories260K-"+typ.String(), path, m, cases, reftest.StoryTexts)
			for _, s := range reftest.StoryTexts {
				if got, want := e.tokenize(s), tok.Encode(s, true, false); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("tokenize %q: llama.cpp %v, tokenizer package %v", s, got, want)
				}
			}
		})
	}
}

// TestStoriesGreedyText decodes 64 tokens greedily in both engines and
// compares the text, up to the first step llama.cpp itself calls a near tie.
func TestStoriesGreedyText(t *testing.T) {
	lib(t)
	for _, typ := range []gguf.TensorType{gguf.F16, gguf.Q8_0} {
		path, _, tok, err := reftest.Stories(t.TempDir(), typ)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := gguf.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		e := open(t, path, "", false)
		prompt := tok.Encode("Once upon a time", true, false)
		want, margins, err := e.greedy(prompt, 64)
		if err != nil {
			t.Fatal(err)
		}
		_, greedy := reftest.Engine(m)
		got, _, err := greedy(prompt, 64)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < len(want) && got[n] == want[n] {
			n++
		}
		t.Logf("%s: greedy texts agree on %d/64 tokens: %q", typ, n, tok.DecodeAll(got[:n]))
		if n < len(want) && margins[n] > tolerances["stories260K-"+typ.String()] {
			t.Errorf("%s: token %d: engine %d, llama.cpp %d (llama.cpp's top-2 margin %.3g)", typ, n, got[n], want[n], margins[n])
		}
	}
}

// TestLoRAMatchesLlamaCpp: llama.cpp running the F32 base with the written
// adapter gives the distributions of the engine's merged model
// W + (alpha/rank)·B·A.
func TestLoRAMatchesLlamaCpp(t *testing.T) {
	lib(t)
	dir := t.TempDir()
	base, m, tok, err := reftest.Stories(dir, gguf.F32)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	lora := gguf.LoRA{Alpha: 8, Rank: 4}
	rng := rand.New(rand.NewPCG(3, 4))
	merged := m.W.Clone(c)
	targets := map[string]*[]float32{"q": &merged.Wq, "k": &merged.Wk, "v": &merged.Wv, "o": &merged.Wo,
		"gate": &merged.W1, "up": &merged.W3, "down": &merged.W2}
	dims := map[string][2]int{"q": {c.QDim(), c.Dim}, "k": {c.KVDim(), c.Dim}, "v": {c.KVDim(), c.Dim}, "o": {c.Dim, c.QDim()},
		"gate": {c.Hidden, c.Dim}, "up": {c.Hidden, c.Dim}, "down": {c.Dim, c.Hidden}}
	scale := lora.Alpha / float32(lora.Rank)
	for l := range c.Layers {
		for _, name := range []string{"q", "k", "v", "o", "gate", "up", "down"} {
			w := targets[name]
			out, in := dims[name][0], dims[name][1]
			lt := gguf.LoRATensor{Layer: l, Target: name, A: randn(rng, lora.Rank*in, 0.2), B: randn(rng, out*lora.Rank, 0.2)}
			lora.Tensors = append(lora.Tensors, lt)
			wl := (*w)[l*out*in : (l+1)*out*in]
			for o := range out {
				for i := range in {
					var s float32
					for r := range lora.Rank {
						s += lt.B[o*lora.Rank+r] * lt.A[r*in+i]
					}
					wl[o*in+i] += scale * s
				}
			}
		}
	}
	adapter := filepath.Join(dir, "lora.gguf")
	if err := gguf.WriteLoRA(adapter, c, lora); err != nil {
		t.Fatal(err)
	}
	mm, err := model.New(c, merged)
	if err != nil {
		t.Fatal(err)
	}
	e := open(t, base, adapter, true)
	g := &reftest.Golden{Tolerance: tolerances["stories260K-F32"]}
	for _, s := range reftest.StoryTexts[:2] {
		rc, err := reftest.Record(tok.Encode(s, true, false), e.dist, e.greedy)
		if err != nil {
			t.Fatal(err)
		}
		g.Cases = append(g.Cases, rc)
	}
	dist, greedy := reftest.Engine(mm)
	r, err := reftest.Compare(g, dist, greedy)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("merged LoRA vs llama.cpp base+adapter (F32): %v", r)
	if err := r.Check(g.Tolerance); err != nil {
		t.Error(err)
	}
	// The adapter must matter: the base model disagrees with llama.cpp+adapter.
	bdist, bgreedy := reftest.Engine(m)
	if rb, _ := reftest.Compare(g, bdist, bgreedy); rb.Max < 10*g.Tolerance {
		t.Errorf("the adapter changes log-probs by only %.3g", rb.Max)
	}
}

func randn(rng *rand.Rand, n int, s float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * s)
	}
	return x
}

// TestRandomModelsMatchLlamaCpp runs small random models of each
// architecture, written by the package as F32, in llama.cpp and compares
// the engine with it.
func TestRandomModelsMatchLlamaCpp(t *testing.T) {
	lib(t)
	for name := range reftest.RandomConfigs {
		t.Run(name, func(t *testing.T) {
			path, _, err := reftest.Random(t.TempDir(), name)
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := gguf.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "random-"+name+"-F32", path, m, randomCases(2, 3, 10, 512), nil)
		})
	}
}

// TestRopeFreqsMatter: llama.cpp applies the rope_freqs.weight the writer
// adds for llama3 rope scaling (the same model without it differs).
func TestRopeFreqsMatter(t *testing.T) {
	lib(t)
	dir := t.TempDir()
	path, _, err := reftest.Random(dir, "llama-rope-scaling")
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, p, err := gguf.ReadModel(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c.RopeScaling = nil
	plain := filepath.Join(dir, "plain.gguf")
	tok, err := gguf.ReadTokenizerFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := gguf.WriteModel(plain, c, p, tok, gguf.WriteOptions{Type: gguf.F32}); err != nil {
		t.Fatal(err)
	}
	seq := randomCases(5, 1, 24, 512)[0]
	a, err := open(t, path, "", true).dist(seq)
	if err != nil {
		t.Fatal(err)
	}
	b, err := open(t, plain, "", true).dist(seq)
	if err != nil {
		t.Fatal(err)
	}
	var most float64
	for i := range a {
		for j := range a[i] {
			most = max(most, math.Abs(a[i][j]-b[i][j]))
		}
	}
	t.Logf("rope scaling changes llama.cpp's log-probs by up to %.3g", most)
	if most < 1e-3 {
		t.Errorf("llama.cpp ignores rope_freqs.weight: log-probs change by only %.3g", most)
	}
}
