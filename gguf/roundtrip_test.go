package gguf

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"fspo/model"
)

// testConfigs cover each architecture's options.
var testConfigs = map[string]model.Config{
	"llama-gqa-untied": {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 32, NormEps: 1e-5, RopeTheta: 10000, Arch: "llama"},
	"llama-tied-rope-scaling": {Dim: 128, Hidden: 64, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 40, SeqLen: 64, NormEps: 1e-5, RopeTheta: 500000, Arch: "llama",
		SharedClassifier: true, RopeScaling: &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}},
	"qwen2-bias":   {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 32, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen2", QKVBias: true, SharedClassifier: true},
	"qwen3-qknorm": {Dim: 64, Hidden: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 32, NormEps: 1e-6, RopeTheta: 1e6, Arch: "qwen3", QKNorm: true, HeadDim: 32},
}

func randomParams(c model.Config, seed uint64) *model.Params {
	p := model.NewParams(c)
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, t := range p.Tensors(c) {
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * 0.5)
		}
	}
	return p
}

func testTokenizer(n int) *Tokenizer {
	yes := true
	t := &Tokenizer{Model: "gpt2", Pre: "qwen2", BOS: -1, EOS: 1, EOT: 2, PAD: 3, UNK: -1, AddBOS: &yes,
		Merges: []string{"a b", "ab c"}, ChatTemplate: "{% for m in messages %}{{ m.content }}{% endfor %}"}
	for i := range n {
		t.Tokens = append(t.Tokens, string(rune('a'+i%26))+string(rune('A'+i/26)))
		t.TokenTypes = append(t.TokenTypes, TokenNormal)
	}
	return t
}

// writeParse writes a model to memory and parses it back.
func writeParse(t *testing.T, c model.Config, p *model.Params, tok *Tokenizer, typ TensorType) *File {
	t.Helper()
	w, err := ModelWriter(c, p, tok, WriteOptions{Type: typ, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := w.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("mem.gguf", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// bound is the largest rounding error of storing x in blocks of 32 as typ:
// F16 rounds to 11 significant bits; Q8_0 to half a step of max|x|/127 plus
// the F16 rounding of that step (times up to 127).
func bound(typ TensorType, block []float32) float64 {
	var amax float64
	for _, v := range block {
		amax = max(amax, math.Abs(float64(v)))
	}
	switch typ {
	case F32:
		return 0
	case F16:
		return amax * 0x1p-11
	case BF16:
		return amax * 0x1p-8
	}
	return amax/254 + amax*0x1p-11 + 1e-12
}

func TestModelRoundTrip(t *testing.T) {
	for name, c := range testConfigs {
		p := randomParams(c, 1)
		tok := testTokenizer(c.Vocab)
		for _, typ := range []TensorType{F32, F16, BF16, Q8_0} {
			f := writeParse(t, c, p, tok, typ)
			gc, gp, err := ReadModel(f)
			if err != nil {
				t.Fatalf("%s %s: %v", name, typ, err)
			}
			if !reflect.DeepEqual(gc, c) {
				t.Errorf("%s %s: config\n got %+v %+v\nwant %+v %+v", name, typ, gc, gc.RopeScaling, c, c.RopeScaling)
			}
			gotT, wantT := gp.Tensors(c), p.Tensors(c)
			for i, want := range wantT {
				got := gotT[i].Data
				for b := 0; b < len(want.Data); b += 32 {
					blk := want.Data[b:min(b+32, len(want.Data))]
					tol := bound(typ, blk)
					if len(want.Shape) == 1 || (len(want.Shape) == 2 && want.Name != "emb" && want.Name != "wcls") {
						tol = 0 // norms and biases are stored as F32
					}
					for j, v := range blk {
						if d := math.Abs(float64(got[b+j] - v)); d > tol {
							t.Fatalf("%s %s: %s[%d] = %v, want %v (tolerance %g)", name, typ, want.Name, b+j, got[b+j], v, tol)
						}
					}
				}
			}
			gt, err := ReadTokenizer(f)
			if err != nil || !reflect.DeepEqual(gt, tok) {
				t.Errorf("%s %s: tokenizer %+v, %v; want %+v", name, typ, gt, err, tok)
			}
		}
	}
}

// TestRopeLayoutInFile checks the q/k rows as stored: unchanged for llama
// (llama.cpp's converter already permuted them into interleaved pairs), in
// Hugging Face's half layout for qwen2/qwen3 (file row i of a head < hs/2
// is engine row 2i, file row hs/2+i is engine row 2i+1).
func TestRopeLayoutInFile(t *testing.T) {
	for _, name := range []string{"llama-gqa-untied", "qwen2-bias", "qwen3-qknorm"} {
		c := testConfigs[name]
		p := randomParams(c, 2)
		f := writeParse(t, c, p, testTokenizer(c.Vocab), F32)
		hs, d := c.HeadSize(), c.Dim
		check := func(file string, engine []float32, cols int, rope bool) {
			got := f.Tensor(file).Float32()
			for r := range len(got) / cols {
				h, i := r/hs, r%hs
				src := r
				if rope && c.Arch != "llama" {
					src = h*hs + 2*(i%(hs/2)) + i/(hs/2)
				}
				if !slices.Equal(got[r*cols:(r+1)*cols], engine[src*cols:(src+1)*cols]) {
					t.Fatalf("%s: %s row %d is not engine row %d", name, file, r, src)
				}
			}
		}
		check("blk.1.attn_q.weight", p.Wq[c.QDim()*d:], d, true)
		check("blk.1.attn_k.weight", p.Wk[c.KVDim()*d:], d, true)
		check("blk.1.attn_v.weight", p.Wv[c.KVDim()*d:], d, false)
		if c.QKVBias {
			check("blk.0.attn_v.bias", p.Bv, 1, false)
			check("blk.0.attn_q.bias", p.Bq, 1, true)
			check("blk.0.attn_k.bias", p.Bk, 1, true)
		}
		if c.QKNorm {
			check("blk.0.attn_q_norm.weight", p.QNorm, 1, true)
			check("blk.0.attn_k_norm.weight", p.KNorm, 1, true)
		}
	}
}

func TestRopeFactors(t *testing.T) {
	c := testConfigs["llama-tied-rope-scaling"]
	r := ropeFactors(c)
	// Independent evaluation of Llama 3.1's scaled frequencies, as
	// inv_freq_llama / inv_freq.
	for i, got := range r {
		freq := math.Pow(500000, -float64(2*i)/64)
		wave := 2 * math.Pi / freq
		scaled := freq
		if wave > 8192 {
			scaled = freq / 8
		} else if wave >= 2048 {
			s := (8192/wave - 1) / 3
			scaled = (1-s)*freq/8 + s*freq
		}
		if want := freq / scaled; math.Abs(float64(got)-want) > 1e-5*want {
			t.Errorf("factor %d = %v, want %v", i, got, want)
		}
	}
	if _, err := fitLlama3([]float32{1, 1, 3, 1}, c, 8192); err == nil {
		t.Error("factors that are not llama3 scaling were accepted")
	}
}

// TestValuesRoundTrip: a value of every GGUF type, alone and as an array,
// is read back (Parse) as it was written, and an unsupported type is refused.
func TestValuesRoundTrip(t *testing.T) {
	values := []any{
		uint8(200), int8(-100), uint16(60000), int16(-30000), uint32(4e9), int32(-2e9), float32(1.5), true,
		"ünïcode", uint64(1 << 63), int64(-1 << 62), float64(-2.25),
		[]uint8{1, 2}, []int8{-1}, []uint16{3}, []int16{-4}, []uint32{5}, []int32{-6}, []float32{0.5},
		[]bool{true, false}, []string{"a", "", "bc"}, []uint64{7}, []int64{-8}, []float64{9.5},
	}
	var w Writer
	for i, v := range values {
		w.Add(fmt.Sprintf("k%d", i), v)
	}
	var buf bytes.Buffer
	if err := w.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("values.gguf", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if got := f.Get(fmt.Sprintf("k%d", i)); !reflect.DeepEqual(got, v) {
			t.Errorf("k%d: read %#v (%T), wrote %#v (%T)", i, got, got, v, v)
		}
	}
	var bad Writer
	bad.Add("k", 3) // an int: GGUF has no such type
	if err := bad.Write(io.Discard); err == nil {
		t.Fatal("an int value was written")
	}
}
