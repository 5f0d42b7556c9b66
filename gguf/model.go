package gguf

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"fspo/model"
	"fspo/tensor"
)

// tensorSpec ties one llama.cpp tensor name to a field of model.Params.
type tensorSpec struct {
	name  string // llama.cpp name; "blk.%d." is prefixed for per-layer tensors
	layer bool
	ptr   func(*model.Params) *[]float32
	shape func(c model.Config) []int // row-major, per layer
	// rope marks query/key rows (and their biases and norms) whose channels
	// are permuted between the engine's interleaved RoPE pairs and the
	// half layout of NeoX-style architectures.
	rope bool
	norm bool // 1-D weights stored as F32 whatever the file's type
}

var specs = []tensorSpec{
	{"token_embd.weight", false, func(p *model.Params) *[]float32 { return &p.Emb }, func(c model.Config) []int { return []int{c.Vocab, c.Dim} }, false, false},
	{"attn_norm.weight", true, func(p *model.Params) *[]float32 { return &p.RmsAtt }, func(c model.Config) []int { return []int{c.Dim} }, false, true},
	{"attn_q.weight", true, func(p *model.Params) *[]float32 { return &p.Wq }, func(c model.Config) []int { return []int{c.QDim(), c.Dim} }, true, false},
	{"attn_k.weight", true, func(p *model.Params) *[]float32 { return &p.Wk }, func(c model.Config) []int { return []int{c.KVDim(), c.Dim} }, true, false},
	{"attn_v.weight", true, func(p *model.Params) *[]float32 { return &p.Wv }, func(c model.Config) []int { return []int{c.KVDim(), c.Dim} }, false, false},
	{"attn_output.weight", true, func(p *model.Params) *[]float32 { return &p.Wo }, func(c model.Config) []int { return []int{c.Dim, c.QDim()} }, false, false},
	{"ffn_norm.weight", true, func(p *model.Params) *[]float32 { return &p.RmsFfn }, func(c model.Config) []int { return []int{c.Dim} }, false, true},
	{"ffn_gate.weight", true, func(p *model.Params) *[]float32 { return &p.W1 }, func(c model.Config) []int { return []int{c.Hidden, c.Dim} }, false, false},
	{"ffn_down.weight", true, func(p *model.Params) *[]float32 { return &p.W2 }, func(c model.Config) []int { return []int{c.Dim, c.Hidden} }, false, false},
	{"ffn_up.weight", true, func(p *model.Params) *[]float32 { return &p.W3 }, func(c model.Config) []int { return []int{c.Hidden, c.Dim} }, false, false},
	{"output_norm.weight", false, func(p *model.Params) *[]float32 { return &p.RmsFinal }, func(c model.Config) []int { return []int{c.Dim} }, false, true},
	{"output.weight", false, func(p *model.Params) *[]float32 { return &p.Wcls }, func(c model.Config) []int { return []int{c.Vocab, c.Dim} }, false, false},
	{"attn_q.bias", true, func(p *model.Params) *[]float32 { return &p.Bq }, func(c model.Config) []int { return []int{c.QDim()} }, true, true},
	{"attn_k.bias", true, func(p *model.Params) *[]float32 { return &p.Bk }, func(c model.Config) []int { return []int{c.KVDim()} }, true, true},
	{"attn_v.bias", true, func(p *model.Params) *[]float32 { return &p.Bv }, func(c model.Config) []int { return []int{c.KVDim()} }, false, true},
	{"attn_q_norm.weight", true, func(p *model.Params) *[]float32 { return &p.QNorm }, func(c model.Config) []int { return []int{c.HeadSize()} }, true, true},
	{"attn_k_norm.weight", true, func(p *model.Params) *[]float32 { return &p.KNorm }, func(c model.Config) []int { return []int{c.HeadSize()} }, true, true},
}

// neoxRope tells whether llama.cpp rotates an architecture's RoPE pairs as
// halves (LLAMA_ROPE_TYPE_NEOX: qwen2, qwen3, whose weights the converter
// copies unchanged from Hugging Face) rather than interleaved
// (LLAMA_ROPE_TYPE_NORM: llama, whose q/k rows the converter permutes into
// Meta's interleaved order — the engine's).
func neoxRope(arch string) bool { return arch == "qwen2" || arch == "qwen3" }

// used reports whether a tensor spec belongs to a model of config c.
func (s tensorSpec) used(c model.Config) bool {
	switch s.name {
	case "output.weight":
		return !c.SharedClassifier
	case "attn_q.bias", "attn_k.bias", "attn_v.bias":
		return c.QKVBias
	case "attn_q_norm.weight", "attn_k_norm.weight":
		return c.QKNorm
	}
	return true
}

func (s tensorSpec) fileName(l int) string {
	if s.layer {
		return fmt.Sprintf("blk.%d.%s", l, s.name)
	}
	return s.name
}

func (s tensorSpec) layers(c model.Config) int {
	if s.layer {
		return c.Layers
	}
	return 1
}

// ReadModel builds the model's config and weights from a GGUF file's
// metadata and tensors (dequantized to float32).
func ReadModel(f *File) (model.Config, *model.Params, error) {
	c, err := modelConfig(f)
	if err != nil {
		return c, nil, err
	}
	p := model.NewParams(c)
	err = readSpecs(f, c, p, func(s tensorSpec, l int, t *Tensor) error {
		decodeLayer(c, s, l, t, p)
		return nil
	})
	if err != nil {
		return c, nil, err
	}
	return c, p, nil
}

// modelConfig reads the model's config from f's metadata and validates it.
func modelConfig(f *File) (model.Config, error) {
	c, err := readConfig(f)
	if err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("gguf %s: model config: %w", f.Path, err)
	}
	return c, nil
}

// readSpecs hands read the tensor of every spec the config uses, layer by
// layer in spec order, once it has checked that f holds it in the shape the
// config wants; then it checks that f holds no other tensor (but the RoPE
// frequencies) and that p's weights are finite.
func readSpecs(f *File, c model.Config, p *model.Params, read func(s tensorSpec, l int, t *Tensor) error) error {
	seen := map[string]bool{}
	for _, s := range specs {
		if !s.used(c) {
			continue
		}
		want := s.shape(c)
		for l := range s.layers(c) {
			name := s.fileName(l)
			t := f.Tensor(name)
			if t == nil {
				return fmt.Errorf("gguf %s: tensor %s is missing", f.Path, name)
			}
			if !slices.Equal(t.Shape(), want) {
				return fmt.Errorf("gguf %s: tensor %s has shape %v, the config wants %v", f.Path, name, t.Shape(), want)
			}
			if err := read(s, l, t); err != nil {
				return err
			}
			seen[name] = true
		}
	}
	for _, t := range f.Tensors {
		if !seen[t.Name] && t.Name != ropeFreqsTensor {
			return fmt.Errorf("gguf %s: tensor %s is not part of a %s model of this config", f.Path, t.Name, c.Arch)
		}
	}
	if err := p.CheckFinite(c); err != nil {
		return fmt.Errorf("gguf %s: %w", f.Path, err)
	}
	return nil
}

// decodeLayer decodes t, layer l of s, to float32 into its part of s's
// field of p, permuting the rows of each head from the half RoPE layout
// where the architecture stores them so (ropeHeadSize).
func decodeLayer(c model.Config, s tensorSpec, l int, t *Tensor, p *model.Params) {
	dst := *s.ptr(p)
	per := len(dst) / s.layers(c)
	part := dst[l*per : (l+1)*per]
	decode(t.Type, t.Data, part)
	if hs := ropeHeadSize(c, s); hs > 0 {
		model.HalfToInterleaved(part, hs, colsOf(s.shape(c)))
	}
}

// ropeHeadSize is the head size when s's rows are stored in the half RoPE
// layout of a NeoX-style architecture, else 0.
func ropeHeadSize(c model.Config, s tensorSpec) int {
	if s.rope && neoxRope(c.Arch) {
		return c.HeadSize()
	}
	return 0
}

// colsOf is the row length of a row-major shape (1 for a vector).
func colsOf(shape []int) int {
	if len(shape) == 1 {
		return 1
	}
	return shape[len(shape)-1]
}

// Load opens a GGUF model file: the model (weights copied out of the
// mapping, which is released) and its tokenizer metadata.
func Load(path string) (*model.Model, *Tokenizer, error) {
	f, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	c, p, err := ReadModel(f)
	if err != nil {
		return nil, nil, err
	}
	tok, err := modelTokenizer(f, c)
	if err != nil {
		return nil, nil, err
	}
	m, err := model.New(c, p)
	if err != nil {
		return nil, nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return m, tok, nil
}

// modelTokenizer reads f's tokenizer metadata (nil when it has none) and
// checks that it has a token for each row of the embedding.
func modelTokenizer(f *File, c model.Config) (*Tokenizer, error) {
	tok, err := ReadTokenizer(f)
	if err != nil {
		return nil, err
	}
	if tok != nil && len(tok.Tokens) != c.Vocab {
		return nil, fmt.Errorf("gguf %s: tokenizer.ggml.tokens holds %d tokens, token_embd.weight has %d rows", f.Path, len(tok.Tokens), c.Vocab)
	}
	return tok, nil
}

// Architectures lists the general.architecture values this package maps.
var Architectures = []string{"llama", "qwen2", "qwen3"}

// readConfig maps the {arch}.* metadata (llama.cpp's LLM_KV names) to a config.
func readConfig(f *File) (model.Config, error) {
	var c model.Config
	arch, ok, err := f.String("general.architecture")
	if err != nil {
		return c, err
	}
	if !ok {
		return c, fmt.Errorf("gguf %s: general.architecture is missing", f.Path)
	}
	if !slices.Contains(Architectures, arch) {
		return c, fmt.Errorf("gguf %s: general.architecture %q is not supported (supported: %s)", f.Path, arch, strings.Join(Architectures, ", "))
	}
	c.Arch = arch
	m := metaReader{f: f, prefix: arch + "."}
	c.Dim = m.int("embedding_length", true, 0)
	c.Layers = m.int("block_count", true, 0)
	c.Hidden = m.int("feed_forward_length", true, 0)
	c.Heads = m.int("attention.head_count", true, 0)
	c.KVHeads = m.int("attention.head_count_kv", false, c.Heads)
	c.SeqLen = m.int("context_length", true, 0)
	c.NormEps = float32(m.float("attention.layer_norm_rms_epsilon", true, 0))
	c.RopeTheta = float32(m.float("rope.freq_base", false, 10000))
	if m.err != nil {
		return c, m.err
	}
	if c.Heads > 0 {
		if err := headDims(&c, &m); err != nil {
			return c, err
		}
	}
	emb := f.Tensor("token_embd.weight")
	if emb == nil || len(emb.Dims) != 2 {
		return c, fmt.Errorf("gguf %s: tensor token_embd.weight is missing or not a matrix", f.Path)
	}
	c.Vocab = int(emb.Dims[1])
	c.SharedClassifier = f.Tensor("output.weight") == nil
	c.QKVBias = arch == "qwen2"
	c.QKNorm = arch == "qwen3"
	rs, err := readRopeScaling(f, &m, c)
	if err != nil {
		return c, err
	}
	c.RopeScaling = rs
	return c, nil
}

// headDims reads the head size keys, which must agree with each other.
func headDims(c *model.Config, m *metaReader) error {
	def := 0
	if c.Dim%c.Heads == 0 {
		def = c.Dim / c.Heads
	}
	k := m.int("attention.key_length", false, def)
	v := m.int("attention.value_length", false, k)
	rot := m.int("rope.dimension_count", false, k)
	if m.err != nil {
		return m.err
	}
	if k != v {
		return fmt.Errorf("gguf %s: %sattention.key_length %d differs from value_length %d (not supported)", m.f.Path, m.prefix, k, v)
	}
	if rot != k {
		return fmt.Errorf("gguf %s: %srope.dimension_count %d differs from the head size %d (partial RoPE is not supported)", m.f.Path, m.prefix, rot, k)
	}
	if k != def {
		c.HeadDim = k
	}
	return nil
}

// metaReader reads {arch}.* keys, keeping the first error.
type metaReader struct {
	f      *File
	prefix string
	err    error
}

func (m *metaReader) int(key string, required bool, def int) int {
	v, ok := metaValue(m, key, required, uint64(def), m.f.Uint)
	if ok && v > 1<<31 {
		m.err = fmt.Errorf("gguf %s: %s%s = %d is out of range", m.f.Path, m.prefix, key, v)
		return 0
	}
	return int(v)
}

func (m *metaReader) float(key string, required bool, def float64) float64 {
	v, _ := metaValue(m, key, required, def, m.f.Float)
	return v
}

// metaValue reads {arch}.key with get: def where it is absent and not
// required; the zero value after an error (the first one is kept). ok
// tells that the value was read from the file.
func metaValue[T any](m *metaReader, key string, required bool, def T, get func(string) (T, bool, error)) (v T, ok bool) {
	var zero T
	if m.err != nil {
		return zero, false
	}
	v, ok, err := get(m.prefix + key)
	switch {
	case err != nil:
		m.err = err
	case !ok && required:
		m.err = fmt.Errorf("gguf %s: %s%s is missing", m.f.Path, m.prefix, key)
	case !ok:
		return def, false
	default:
		return v, true
	}
	return zero, false
}

// IsGGUF tells whether the file at path is to be read as GGUF (for loaders
// choosing a format): it starts with the GGUF magic, or it is a regular file
// whose name ends in .gguf — so that a damaged one is reported by the GGUF
// reader ("bad magic") rather than taken for another format.
func IsGGUF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && strings.EqualFold(filepath.Ext(path), ".gguf") {
		return true
	}
	head := make([]byte, len(Magic))
	n, _ := io.ReadFull(f, head)
	return n == len(head) && string(head) == Magic
}

// WeightType is the type a GGUF model stores its matrices in, as a tensor
// dtype: that of its first layer's query projection (llama.cpp keeps norms
// and small vectors in F32 whatever the file's type).
func WeightType(path string) (tensor.DType, error) {
	f, err := Open(path)
	if err != nil {
		return tensor.F32, err
	}
	defer f.Close()
	t := f.Tensor("blk.0.attn_q.weight")
	if t == nil {
		return tensor.F32, fmt.Errorf("gguf %s: tensor blk.0.attn_q.weight is missing", path)
	}
	switch t.Type {
	case F16:
		return tensor.F16, nil
	case BF16:
		return tensor.BF16, nil
	case Q8_0:
		return tensor.Q8_0, nil
	}
	return tensor.F32, nil
}
