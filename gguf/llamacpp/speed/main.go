// Command speed times fspo and llama.cpp side by side on the same GGUF file:
// greedy decoding at batch 1 and the prefill of a prompt, for each thread
// count, the two engines' runs alternating (the machine is shared and noisy),
// medians of --repeats runs. It builds the model first when the file is not
// there: a random Llama of SmolLM2-135M's layer shapes with the Llama-3.1
// vocabulary (~180M parameters, --shape 180m) or of Llama-3.2-1B's (--shape
// 1b), written by fspo's GGUF writer in --dtype, with the Llama-3.1
// tokenizer from the repository's test data. Run from gguf/llamacpp:
//
//	export FSPO_LLAMACPP_LIB=$(../../.ci/llamacpp.sh)
//	GOEXPERIMENT=simd go run ./speed --shape 180m --dtype f16 --json
//
// It lives in this module so that the llama.cpp binding stays out of fspo's
// dependencies.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hybridgroup/yzma/pkg/llama"

	"fspo/gguf"
	"fspo/model"
	"fspo/tensor"
	tokhf "fspo/tokenizer/hf"
)

var shapes = map[string]model.Config{
	"180m": {Dim: 576, Hidden: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 128256, SeqLen: 2048, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 100000},
	"1b":   {Dim: 2048, Hidden: 8192, Layers: 16, Heads: 32, KVHeads: 8, Vocab: 128256, SeqLen: 2048, SharedClassifier: true, NormEps: 1e-5, RopeTheta: 500000},
}

var types = map[string]gguf.TensorType{"f32": gguf.F32, "f16": gguf.F16, "bf16": gguf.BF16, "q8_0": gguf.Q8_0}

// result is what --json prints; the maps are keyed by thread count.
type result struct {
	Shape  string             `json:"shape"`
	DType  string             `json:"dtype"`
	Decode map[string]float64 `json:"decode_tokens_per_s"`
	// DecodeWhole is fspo's greedy decoding with the classifier's screen
	// off (model.SetClassifierScreen): every logit computed, as before the
	// screen (--screen-off-too).
	DecodeWhole map[string]float64 `json:"decode_whole_classifier_tokens_per_s,omitempty"`
	Prefill     map[string]float64 `json:"prefill_tokens_per_s"`
	LlamaCPP    struct {
		Decode  map[string]float64 `json:"decode_tokens_per_s"`
		Prefill map[string]float64 `json:"prefill_tokens_per_s"`
	} `json:"llamacpp"`
	// SameGreedy is how many of the decoded tokens (up to the first
	// difference) fspo's run in --dtype shares with its run in F32.
	SameGreedy int `json:"greedy_same_as_f32,omitempty"`
	// MaxLogprobDiff is the largest difference, over the tokens of three
	// texts, between fspo's log-probs decoding in --dtype (one token at a
	// time, the decoding kernels) and its F32 scoring.
	MaxLogprobDiff float64 `json:"max_abs_logprob_diff_vs_f32,omitempty"`
	// MaxScoreDiff is the same for fspo's scoring in --dtype (the prompt
	// kernels: many rows a product, where Q8_0 and BF16 tiles round the
	// activations).
	MaxScoreDiff float64 `json:"max_abs_logprob_diff_scoring_vs_f32,omitempty"`
	// MaxLogprobDiffOriginal is the same against the F32 file of this
	// shape (the weights before rounding to --dtype), when it is in --dir.
	MaxLogprobDiffOriginal float64 `json:"max_abs_logprob_diff_vs_original_f32,omitempty"`
	original               bool    // MaxLogprobDiffOriginal was measured
	WeightBytes            int64   `json:"weight_bytes"`
	Load                   float64 `json:"load_average_1m"`
	Settings               string  `json:"settings"`
}

func main() {
	shape := flag.String("shape", "180m", "model shape: 180m (SmolLM2-135M layers, Llama-3.1 vocabulary) or 1b (Llama-3.2-1B)")
	dtype := flag.String("dtype", "f16", "weight type: f32, f16, bf16 or q8_0")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "fspo-speed"), "folder for the model files (built once)")
	tokPath := flag.String("tokenizer", "../../tokenizer/hf/testdata/llama3_1/tokenizer.json.gz", "Llama-3.1 tokenizer.json(.gz)")
	threadList := flag.String("threads", "1,2", "thread counts")
	decodeN := flag.Int("decode", 128, "tokens to decode per run")
	prefillN := flag.Int("prefill", 512, "prompt tokens per prefill run")
	repeats := flag.Int("repeats", 3, "runs per engine and measurement; medians reported")
	compare := flag.Bool("compare-f32", true, "also decode with fspo in F32 and count the greedy tokens that agree")
	whole := flag.Bool("screen-off-too", true, "also time fspo's greedy decoding with the classifier's screen off (every logit computed)")
	asJSON := flag.Bool("json", false, "print JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		fail(err)
		fail(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	c, ok := shapes[*shape]
	typ, ok2 := types[*dtype]
	if !ok || !ok2 {
		fail(fmt.Errorf("--shape 180m|1b and --dtype f32|f16|bf16|q8_0"))
	}
	path := filepath.Join(*dir, fmt.Sprintf("random-%s-%s.gguf", *shape, *dtype))
	if _, err := os.Stat(path); err != nil {
		fail(build(path, c, typ, *tokPath))
	}
	loadLlamaCPP()
	m, _, err := gguf.Load(path)
	fail(err)
	var ref *model.Model
	if *compare {
		ref = m.Clone()
	}
	dt, _ := tensor.ParseDType(*dtype)
	fail(m.SetDType(dt))
	lm, err := llama.ModelLoadFromFile(path, llama.ModelDefaultParams())
	fail(err)

	rng := rand.New(rand.NewPCG(1, 2))
	prompt := make([]int, *prefillN)
	for i := range prompt {
		prompt[i] = rng.IntN(128000)
	}
	res := result{Shape: *shape, DType: *dtype, Decode: map[string]float64{}, Prefill: map[string]float64{}, WeightBytes: m.WeightBytes(),
		Settings: fmt.Sprintf("decode %d tokens from BOS (greedy, batch 1), prefill %d random tokens, medians of %d alternating runs; fspo kernels %s; llama.cpp v0.5.0 (npm @node-llama-cpp/linux-x64@3.22.1)", *decodeN, *prefillN, *repeats, tensor.SIMDLevel())}
	res.LlamaCPP.Decode, res.LlamaCPP.Prefill = map[string]float64{}, map[string]float64{}
	if *whole {
		res.DecodeWhole = map[string]float64{}
	}
	m.PrepareClassifierScreen()
	fsTokens := res.time(m, lm, strings.Split(*threadList, ","), *repeats, *decodeN, prompt)
	if ref != nil {
		res.accuracy(ref, m, fsTokens, *decodeN, *tokPath, filepath.Join(*dir, fmt.Sprintf("random-%s-f32.gguf", *shape)))
	}
	res.Load = loadAvg()
	if *asJSON {
		fail(json.NewEncoder(os.Stdout).Encode(res))
		return
	}
	res.print(strings.Split(*threadList, ","), ref != nil, *decodeN)
}

// loadLlamaCPP loads llama.cpp's libraries from $FSPO_LLAMACPP_LIB.
func loadLlamaCPP() {
	lib := os.Getenv("FSPO_LLAMACPP_LIB")
	if lib == "" {
		fail(fmt.Errorf("set FSPO_LLAMACPP_LIB to the folder holding libllama.so (../../.ci/llamacpp.sh prints it)"))
	}
	fail(llama.Load(lib))
	llama.LogSet(llama.LogSilent())
	llama.Init()
}

// time fills res's rates: for each thread count, repeats alternating runs
// of each engine's decoding and prefill, medians kept. It returns fspo's
// greedy tokens (the last run's).
func (res *result) time(m *model.Model, lm llama.Model, threads []string, repeats, decodeN int, prompt []int) []int {
	var fsTokens []int
	for _, s := range threads {
		th, err := strconv.Atoi(s)
		fail(err)
		tensor.SetThreads(th)
		var fd, fw, fp, ld, lp []float64
		for range repeats {
			toks, rate := fspoDecode(m, decodeN)
			fsTokens = toks
			fd = append(fd, rate)
			if res.DecodeWhole != nil {
				m.SetClassifierScreen(false)
				wt, rate := fspoDecode(m, decodeN)
				m.SetClassifierScreen(true)
				m.PrepareClassifierScreen() // rebuilt, untimed
				if !slices.Equal(wt, toks) {
					fail(fmt.Errorf("greedy tokens with the classifier's screen %v, without %v", toks, wt))
				}
				fw = append(fw, rate)
			}
			ld = append(ld, llamaDecode(lm, int32(th), decodeN))
			fp = append(fp, fspoPrefill(m, prompt))
			lp = append(lp, llamaPrefill(lm, int32(th), prompt))
		}
		res.Decode[s], res.Prefill[s] = median(fd), median(fp)
		if res.DecodeWhole != nil {
			res.DecodeWhole[s] = median(fw)
		}
		res.LlamaCPP.Decode[s], res.LlamaCPP.Prefill[s] = median(ld), median(lp)
	}
	return fsTokens
}

// accuracy compares m with its F32 copy ref (greedy tokens from BOS, and
// log-probs of three texts) and, when the F32 file of the same shape is
// there, with those original weights.
func (res *result) accuracy(ref, m *model.Model, tokens []int, decodeN int, tokPath, origPath string) {
	tensor.SetThreads(0)
	want, _ := fspoDecode(ref, decodeN)
	for res.SameGreedy < len(want) && res.SameGreedy < len(tokens) && want[res.SameGreedy] == tokens[res.SameGreedy] {
		res.SameGreedy++
	}
	tok, err := readTokenizer(tokPath)
	fail(err)
	var orig *model.Model
	if res.DType != "f32" {
		if _, err := os.Stat(origPath); err == nil {
			orig, _, err = gguf.Load(origPath)
			fail(err)
			res.original = true
		}
	}
	for _, text := range accuracyTexts {
		ids := append([]int{128000}, tok.Encode(text, false)...)
		res.MaxLogprobDiff = max(res.MaxLogprobDiff, logprobDiff(ref, m, ids))
		res.MaxScoreDiff = max(res.MaxScoreDiff, maxDiff(scores(ref, ids), scores(m, ids)))
		if orig != nil {
			res.MaxLogprobDiffOriginal = max(res.MaxLogprobDiffOriginal, logprobDiff(orig, m, ids))
		}
	}
}

// print writes the results as a table, a row per thread count.
func (res *result) print(threads []string, compared bool, decodeN int) {
	fmt.Printf("%s, %s weights (%.0f MB): %s; load %.2f\n", res.Shape, res.DType, float64(res.WeightBytes)/1e6, res.Settings, res.Load)
	fmt.Printf("%-8s %14s %14s %7s %16s %16s %7s\n", "threads", "fspo decode", "llama.cpp", "ratio", "fspo prefill", "llama.cpp", "ratio")
	for _, s := range threads {
		fmt.Printf("%-8s %14.1f %14.1f %6.2fx %16.1f %16.1f %6.2fx\n", s, res.Decode[s], res.LlamaCPP.Decode[s], res.Decode[s]/res.LlamaCPP.Decode[s],
			res.Prefill[s], res.LlamaCPP.Prefill[s], res.Prefill[s]/res.LlamaCPP.Prefill[s])
	}
	for _, s := range threads {
		if w, ok := res.DecodeWhole[s]; ok {
			fmt.Printf("%s threads, fspo greedy decoding with the classifier's screen off: %.1f tok/s (%.2fx llama.cpp; the screen %.2fx)\n", s, w, w/res.LlamaCPP.Decode[s], res.Decode[s]/w)
		}
	}
	if compared {
		orig := "not measured (no F32 file of this shape)"
		if res.original {
			orig = fmt.Sprintf("%.3g", res.MaxLogprobDiffOriginal)
		}
		fmt.Printf("greedy tokens identical to fspo's F32 run: %d of %d; max |Δ log-prob| over 3 texts vs F32 of the same values: %.3g decoding, %.3g scoring; decoding vs the original F32 weights: %s\n",
			res.SameGreedy, decodeN, res.MaxLogprobDiff, res.MaxScoreDiff, orig)
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "speed:", err)
		os.Exit(1)
	}
}

var accuracyTexts = []string{
	"The quick brown fox jumps over the lazy dog.",
	"Once upon a time, there was a little girl named Lily who loved to play in the park with her dog.",
	"Few-shot preference optimization personalizes a language model to each user from a handful of their preferences.",
}

// scores is m's scoring of ids: the log-prob of each token after the first.
func scores(m *model.Model, ids []int) []float32 {
	p, err := m.Score([]model.Example{{Prompt: ids[:1], Completions: [][]int{ids[1:]}}}, nil)
	fail(err)
	return p.Tokens(0, 0)
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// logprobDiff decodes ids with m one token at a time and returns the largest
// difference of its next-token log-probs from ref's scoring.
func logprobDiff(ref, m *model.Model, ids []int) float64 {
	want := scores(ref, ids)
	cache, logits := m.NewCacheFor(len(ids)), make([]float32, m.Config.Vocab)
	d := 0.0
	for i := 0; i+1 < len(ids); i++ {
		fail(m.Forward([]model.Step{{Cache: cache, Tokens: ids[i : i+1], Logits: logits}}))
		mx := logits[0]
		for _, v := range logits {
			mx = max(mx, v)
		}
		var sum float64
		for _, v := range logits {
			sum += math.Exp(float64(v - mx))
		}
		got := float64(logits[ids[i+1]]-mx) - math.Log(sum)
		d = max(d, math.Abs(got-float64(want[i])))
	}
	return d
}

func readTokenizer(path string) (*tokhf.Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	return tokhf.Parse(data, nil)
}

// build writes a random model of shape c (seeded) as GGUF in typ.
func build(path string, c model.Config, typ gguf.TensorType, tokPath string) error {
	fmt.Fprintf(os.Stderr, "speed: building %s …\n", path)
	tok, err := readTokenizer(tokPath)
	if err != nil {
		return err
	}
	meta, err := gguf.FromHF(tok, "", c.Vocab)
	if err != nil {
		return err
	}
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, t := range p.Tensors(c) {
		std := 0.04
		switch t.Name {
		case "emb":
			std = 0.02
		case "w2":
			std = 0.03
		}
		for i := range t.Data {
			if strings.HasPrefix(t.Name, "rms") {
				t.Data[i] = 1
			} else {
				t.Data[i] = float32(rng.NormFloat64() * std)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return gguf.WriteModel(path, c, p, meta, gguf.WriteOptions{Type: typ, Name: "random " + filepath.Base(path)})
}

func fspoDecode(m *model.Model, n int) ([]int, float64) {
	start := time.Now()
	out, err := m.Generate(context.Background(), []int{128000}, model.GenOptions{MaxTokens: n}, nil)
	fail(err)
	return out.Tokens, float64(len(out.Tokens)) / time.Since(start).Seconds()
}

func fspoPrefill(m *model.Model, prompt []int) float64 {
	cache := m.NewCacheFor(len(prompt))
	defer cache.Release()
	logits := make([]float32, m.Config.Vocab)
	start := time.Now()
	fail(m.Forward([]model.Step{{Cache: cache, Tokens: prompt, Logits: logits}}))
	return float64(len(prompt)) / time.Since(start).Seconds()
}

func newContext(lm llama.Model, threads int32) llama.Context {
	cp := llama.ContextDefaultParams()
	cp.NCtx, cp.NBatch, cp.NUbatch = 1024, 512, 512
	cp.NThreads, cp.NThreadsBatch = threads, threads
	ctx, err := llama.InitFromModel(lm, cp)
	fail(err)
	return ctx
}

func llamaDecode(lm llama.Model, threads int32, n int) float64 {
	ctx := newContext(lm, threads)
	defer llama.Free(ctx)
	nv := int(llama.VocabNTokens(llama.ModelGetVocab(lm)))
	tok := []llama.Token{128000}
	start := time.Now()
	for range n {
		_, err := llama.Decode(ctx, llama.BatchGetOne(tok))
		fail(err)
		lg, err := llama.GetLogitsIth(ctx, -1, nv)
		fail(err)
		best := 0
		for j := range lg {
			if lg[j] > lg[best] {
				best = j
			}
		}
		tok = []llama.Token{llama.Token(best)}
	}
	return float64(n) / time.Since(start).Seconds()
}

func llamaPrefill(lm llama.Model, threads int32, prompt []int) float64 {
	ctx := newContext(lm, threads)
	defer llama.Free(ctx)
	toks := make([]llama.Token, len(prompt))
	for i, t := range prompt {
		toks[i] = llama.Token(t)
	}
	start := time.Now()
	_, err := llama.Decode(ctx, llama.BatchGetOne(toks))
	fail(err)
	fail(llama.Synchronize(ctx))
	return float64(len(prompt)) / time.Since(start).Seconds()
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
