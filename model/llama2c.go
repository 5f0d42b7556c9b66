package model

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"fspo/atomicfile"
	"fspo/fileio"
)

// The llama2.c "version 0" checkpoint: 7 little-endian int32 (dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means a separate classifier follows), then the float32 tensors in the order
// of Config.shapes, with two legacy RoPE tables of seq_len*head_size/2 floats
// each between rms_final and wcls.

const llama2cHeader = 7 * 4

// LoadLlama2C reads a llama2.c checkpoint.
func LoadLlama2C(path string) (*Model, error) {
	m, err := fileio.Decode(path, ReadLlama2C)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return m, nil
}

// ReadLlama2C decodes a llama2.c checkpoint of the given total size in bytes
// (size < 0: unknown, then trailing data is not checked).
func ReadLlama2C(r io.Reader, size int64) (*Model, error) {
	var hdr [7]int32
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("header: %w (a llama2.c checkpoint starts with 7 int32)", err)
	}
	cfg := Config{
		Dim: int(hdr[0]), Hidden: int(hdr[1]), Layers: int(hdr[2]), Heads: int(hdr[3]),
		KVHeads: int(hdr[4]), Vocab: int(hdr[5]), SeqLen: int(hdr[6]),
		SharedClassifier: hdr[5] > 0, NormEps: 1e-5, RopeTheta: 10000,
	}
	if cfg.Vocab < 0 {
		cfg.Vocab = -cfg.Vocab
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("header %v: %w (not a llama2.c checkpoint?)", hdr, err)
	}
	ropeFloats := int64(cfg.SeqLen) * int64(cfg.HeadSize())
	want := int64(llama2cHeader) + 4*(int64(cfg.NumParams())+ropeFloats)
	if size >= 0 && size != want {
		what := "truncated"
		if size > want {
			what = "has trailing bytes"
		}
		return nil, fmt.Errorf("file is %d bytes, the header %v implies %d: %s", size, hdr, want, what)
	}
	p := NewParams(cfg)
	for _, s := range cfg.shapes() {
		if s.name == "wcls" {
			if _, err := io.CopyN(io.Discard, r, 4*ropeFloats); err != nil {
				return nil, fmt.Errorf("rope tables: %w", truncated(err))
			}
		}
		if err := binary.Read(r, binary.LittleEndian, *s.ptr(p)); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", s.name, truncated(err))
		}
	}
	if err := p.CheckFinite(cfg); err != nil {
		return nil, err
	}
	return New(cfg, p)
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("file truncated")
	}
	return err
}

// WriteLlama2C writes m in the llama2.c format (legacy RoPE tables included,
// as llama2.c's export writes them), atomically.
func (m *Model) WriteLlama2C(path string) error {
	if m.q != nil {
		return fmt.Errorf("export %s: %w", path, ErrReducedWeights)
	}
	c := m.Config
	if c.NormEps != 1e-5 || c.RopeTheta != 10000 {
		return fmt.Errorf("export %s: llama2.c fixes norm_eps 1e-5 and rope_theta 10000; this model has %g and %g", path, c.NormEps, c.RopeTheta)
	}
	if c.QKVBias || c.QKNorm || c.RopeScaling != nil || c.QDim() != c.Dim {
		return fmt.Errorf("export %s: llama2.c has no q/k/v biases, q/k norms, rope scaling or head size other than dim/n_heads; this model (arch %q) uses one", path, c.Arch)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		vocab := int32(c.Vocab)
		if !c.SharedClassifier {
			vocab = -vocab
		}
		hdr := []int32{int32(c.Dim), int32(c.Hidden), int32(c.Layers), int32(c.Heads), int32(c.KVHeads), vocab, int32(c.SeqLen)}
		if err := binary.Write(w, binary.LittleEndian, hdr); err != nil {
			return err
		}
		for _, s := range c.shapes() {
			if s.name == "wcls" {
				if err := writeRopeTables(w, c); err != nil {
					return err
				}
			}
			if err := binary.Write(w, binary.LittleEndian, *s.ptr(m.W)); err != nil {
				return err
			}
		}
		if c.SharedClassifier {
			return writeRopeTables(w, c)
		}
		return nil
	})
}

// writeRopeTables writes the real and imaginary RoPE tables llama2.c's legacy
// format carries (freq_cis_real, freq_cis_imag), each (seq_len, head_size/2).
func writeRopeTables(w io.Writer, c Config) error {
	hs := c.HeadSize()
	re := make([]float32, c.SeqLen*hs/2)
	im := make([]float32, c.SeqLen*hs/2)
	for pos := 0; pos < c.SeqLen; pos++ {
		for i := 0; i < hs/2; i++ {
			f := 1 / math.Pow(float64(c.RopeTheta), float64(2*i)/float64(hs))
			re[pos*hs/2+i] = float32(math.Cos(float64(pos) * f))
			im[pos*hs/2+i] = float32(math.Sin(float64(pos) * f))
		}
	}
	if err := binary.Write(w, binary.LittleEndian, re); err != nil {
		return err
	}
	return binary.Write(w, binary.LittleEndian, im)
}
