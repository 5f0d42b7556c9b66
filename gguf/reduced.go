package gguf

import (
	"encoding/binary"
	"fmt"

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
	c, err := modelConfig(f)
	if err != nil {
		return nil, nil, err
	}
	tok, err := modelTokenizer(f, c)
	if err != nil {
		return nil, nil, err
	}
	p := model.NewSmallParams(c)
	r := model.Reduced{DType: dt}
	err = readSpecs(f, c, p, func(s tensorSpec, l int, t *Tensor) error {
		return readReduced(f, c, s, l, t, p, &r)
	})
	if err != nil {
		return nil, nil, err
	}
	m, err := model.NewReduced(c, p, r)
	if err != nil {
		return nil, nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return m, tok, nil
}

// readReduced reads t, layer l's tensor of spec s: a norm or bias into p
// (F32), a matrix into its slot of r.
func readReduced(f *File, c model.Config, s tensorSpec, l int, t *Tensor, p *model.Params, r *model.Reduced) error {
	want := s.shape(c)
	if len(want) == 1 {
		decodeLayer(c, s, l, t, p)
		return nil
	}
	qm, fellBack, err := reducedMatrix(t, r.DType, want[0], want[1], ropeHeadSize(c, s))
	if err != nil {
		return fmt.Errorf("gguf %s: tensor %s: %w", f.Path, t.Name, err)
	}
	if err := r.Add(paramsField[s.name], t.Name, qm, fellBack); err != nil {
		return fmt.Errorf("gguf %s: %w", f.Path, err)
	}
	return nil
}

// paramsField is the model.Params field of each large matrix's spec.
var paramsField = map[string]string{"token_embd.weight": "emb", "output.weight": "wcls",
	"attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv", "attn_output.weight": "wo",
	"ffn_gate.weight": "w1", "ffn_down.weight": "w2", "ffn_up.weight": "w3"}

// reducedMatrix builds the (rows, cols) matrix t holds in dt, or in F16
// when dt is Q8_0 and the rows are not a multiple of 32 long (fellBack);
// hs > 0 permutes the rows of each head from the half RoPE layout.
func reducedMatrix(t *Tensor, dt tensor.DType, rows, cols, hs int) (*tensor.QMatrix, bool, error) {
	dt, fellBack := model.MatrixType(dt, cols)
	le := binary.LittleEndian
	var qm *tensor.QMatrix
	var err error
	switch {
	case t.Type == Q8_0 && dt == tensor.Q8_0: // copied as it is
		qm, err = q8Rows(t.Data, rows, cols, hs)
	case t.Type == F16 && dt == tensor.F16, t.Type == BF16 && dt == tensor.BF16:
		h := tensor.MakeWeights[uint16](rows * cols)
		for i := range h {
			h[i] = le.Uint16(t.Data[2*i:])
		}
		qm, err = model.HalfRows(dt, h, rows, cols, hs)
	default:
		rowBytes := int(t.Type.rowBytes(uint64(cols)))
		qm, err = model.ConvertRows(dt, rows, cols, hs, 256, func(r0 int, dst []float32) error {
			decode(t.Type, t.Data[r0*rowBytes:(r0+len(dst)/cols)*rowBytes], dst)
			return nil
		})
	}
	return qm, fellBack, err
}

// q8Rows takes Q8_0 blocks as they are stored (an F16 scale, 32 int8
// quants), each head of hs rows permuted from the half RoPE layout when
// hs > 0.
func q8Rows(data []byte, rows, cols, hs int) (*tensor.QMatrix, error) {
	nb := rows * cols / q8Block
	q, scales := tensor.MakeWeights[int8](rows*cols), make([]uint16, nb)
	for b := range nb {
		blk := data[b*q8BlockSize:]
		scales[b] = binary.LittleEndian.Uint16(blk)
		for i := range q8Block {
			q[b*q8Block+i] = int8(blk[2+i])
		}
	}
	if err := tensor.CheckHalfFinite(tensor.F16, scales); err != nil {
		return nil, fmt.Errorf("block scale %w", err)
	}
	if hs > 0 {
		model.HalfToInterleavedRows(q, hs, cols)
		model.HalfToInterleavedRows(scales, hs, cols/q8Block)
	}
	return tensor.Q8Matrix(q, scales, rows, cols)
}
