package gguf

import (
	"encoding/binary"
	"fmt"
	"slices"

	"fspo/model"
	"fspo/tensor"
)

// LoadAs opens a GGUF model file with its large matrices held in dt (F32:
// Load). For F16, BF16 and Q8_0 no F32 copy of the model is made: a matrix
// stored in dt is copied as it is (Q8_0 blocks included), others are
// converted a block of rows at a time by QMatrix.SetRows (model.SetDType's
// values); Q8_0 keeps matrices whose rows are not a multiple of 32 long in
// F16, as SetDType does. Norms and biases are F32.
func LoadAs(path string, dt tensor.DType) (*model.Model, *Tokenizer, error) {
	if dt == tensor.F32 {
		return Load(path)
	}
	f, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	c, err := readConfig(f)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, nil, fmt.Errorf("gguf %s: model config: %w", f.Path, err)
	}
	tok, err := ReadTokenizer(f)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && len(tok.Tokens) != c.Vocab {
		return nil, nil, fmt.Errorf("gguf %s: tokenizer.ggml.tokens holds %d tokens, token_embd.weight has %d rows", path, len(tok.Tokens), c.Vocab)
	}
	p := model.NewSmallParams(c)
	r := model.Reduced{DType: dt}
	seen := map[string]bool{}
	for _, s := range specs {
		if !s.used(c) {
			continue
		}
		for l := range s.layers(c) {
			if err := readReduced(f, c, s, l, p, &r); err != nil {
				return nil, nil, err
			}
			seen[s.fileName(l)] = true
		}
	}
	for _, t := range f.Tensors {
		if !seen[t.Name] && t.Name != ropeFreqsTensor {
			return nil, nil, fmt.Errorf("gguf %s: tensor %s is not part of a %s model of this config", f.Path, t.Name, c.Arch)
		}
	}
	if err := p.CheckFinite(c); err != nil {
		return nil, nil, fmt.Errorf("gguf %s: %w", f.Path, err)
	}
	m, err := model.NewReduced(c, p, r)
	if err != nil {
		return nil, nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return m, tok, nil
}

// readReduced reads layer l's tensor of spec s: a norm or bias into p (F32),
// a matrix into its slot of r.
func readReduced(f *File, c model.Config, s tensorSpec, l int, p *model.Params, r *model.Reduced) error {
	name, want := s.fileName(l), s.shape(c)
	t := f.Tensor(name)
	if t == nil {
		return fmt.Errorf("gguf %s: tensor %s is missing", f.Path, name)
	}
	if !slices.Equal(t.Shape(), want) {
		return fmt.Errorf("gguf %s: tensor %s has shape %v, the config wants %v", f.Path, name, t.Shape(), want)
	}
	hs := 0
	if s.rope && neoxRope(c.Arch) {
		hs = c.HeadSize()
	}
	if len(want) == 1 {
		dst := *s.ptr(p)
		per := len(dst) / s.layers(c)
		decode(t.Type, t.Data, dst[l*per:(l+1)*per])
		if hs > 0 {
			model.HalfToInterleaved(dst[l*per:(l+1)*per], hs, 1)
		}
		return nil
	}
	qm, fellBack, err := reducedMatrix(t, r.DType, want[0], want[1], hs)
	if err != nil {
		return fmt.Errorf("gguf %s: tensor %s: %w", f.Path, name, err)
	}
	if fellBack {
		r.Fallback = append(r.Fallback, name)
	}
	slots := map[string]*[]*tensor.QMatrix{"attn_q.weight": &r.Wq, "attn_k.weight": &r.Wk, "attn_v.weight": &r.Wv,
		"attn_output.weight": &r.Wo, "ffn_gate.weight": &r.W1, "ffn_down.weight": &r.W2, "ffn_up.weight": &r.W3}
	switch s.name {
	case "token_embd.weight":
		r.Emb = qm
	case "output.weight":
		r.Wcls = qm
	default:
		*slots[s.name] = append(*slots[s.name], qm)
	}
	return nil
}

// reducedMatrix builds the (rows, cols) matrix t holds in dt, or in F16
// when dt is Q8_0 and the rows are not a multiple of 32 long (fellBack);
// hs > 0 permutes the rows of each head from the half RoPE layout.
func reducedMatrix(t *Tensor, dt tensor.DType, rows, cols, hs int) (qm *tensor.QMatrix, fellBack bool, err error) {
	if dt == tensor.Q8_0 && cols%tensor.Q8Block != 0 {
		dt, fellBack = tensor.F16, true
	}
	le := binary.LittleEndian
	switch {
	case t.Type == Q8_0 && dt == tensor.Q8_0: // copied as it is
		nb := rows * cols / q8Block
		q, scales := tensor.MakeHuge[int8](rows*cols), make([]uint16, nb)
		for b := range nb {
			blk := t.Data[b*q8BlockSize:]
			scales[b] = le.Uint16(blk)
			for i := range q8Block {
				q[b*q8Block+i] = int8(blk[2+i])
			}
		}
		if err := finiteHalf(scales, 0x7c00); err != nil {
			return nil, false, fmt.Errorf("block scale %w", err)
		}
		if hs > 0 {
			model.HalfToInterleavedRows(q, hs, cols)
			model.HalfToInterleavedRows(scales, hs, cols/q8Block)
		}
		qm, err = tensor.Q8Matrix(q, scales, rows, cols)
		return qm, fellBack, err
	case t.Type == F16 && dt == tensor.F16, t.Type == BF16 && dt == tensor.BF16:
		h := tensor.MakeHuge[uint16](rows * cols)
		for i := range h {
			h[i] = le.Uint16(t.Data[2*i:])
		}
		mask := uint16(0x7c00)
		if dt == tensor.BF16 {
			mask = 0x7f80
		}
		if err := finiteHalf(h, mask); err != nil {
			return nil, false, err
		}
		if hs > 0 {
			model.HalfToInterleavedRows(h, hs, cols)
		}
		qm, err = tensor.HalfMatrix(dt, h, rows, cols)
		return qm, fellBack, err
	}
	return convertRows(t, dt, rows, cols, hs, fellBack)
}

// convertRows converts t to dt a block of rows at a time.
func convertRows(t *Tensor, dt tensor.DType, rows, cols, hs int, fellBack bool) (*tensor.QMatrix, bool, error) {
	step := 256 // whole heads for a RoPE permutation
	if hs > 0 {
		step = hs * max(1, step/hs)
	}
	qm, err := tensor.NewQMatrix(dt, rows, cols)
	if err != nil {
		return nil, false, err
	}
	rowBytes := int(t.Type.rowBytes(uint64(cols)))
	buf := make([]float32, min(step, rows)*cols)
	for r0 := 0; r0 < rows; r0 += step {
		n := min(step, rows-r0)
		x := buf[:n*cols]
		decode(t.Type, t.Data[r0*rowBytes:(r0+n)*rowBytes], x)
		if hs > 0 {
			model.HalfToInterleaved(x, hs, cols)
		}
		if err := qm.SetRows(r0, x); err != nil {
			return nil, false, err
		}
	}
	return qm, fellBack, nil
}

// finiteHalf checks F16 (mask 0x7c00) or BF16 (0x7f80) bits: an exponent of
// all ones is an infinity or a NaN.
func finiteHalf(h []uint16, mask uint16) error {
	for i, v := range h {
		if v&mask == mask {
			return fmt.Errorf("element %d is not finite", i)
		}
	}
	return nil
}
