package hf

import (
	"fmt"
	"strings"

	"fspo/model"
	"fspo/safetensors"
	"fspo/tensor"
)

// LoadAs reads the model in dir with its large matrices held in dt. F32 is
// Load. For F16, BF16 and Q8_0 no F32 copy of the model is made: each
// matrix is built from the mapped file on its own — copied as it is when
// the file stores it in dt, else converted a block of rows at a time by
// QMatrix.SetRows (the values model.SetDType gives: the same rounding) —
// and its pages are dropped after; norms and biases are read as F32. Q8_0
// keeps a matrix whose rows are not a multiple of 32 long in F16, as
// SetDType does.
func LoadAs(dir string, dt tensor.DType) (*model.Model, *Folder, error) {
	if dt == tensor.F32 {
		return Load(dir)
	}
	f, c, w, err := openFolder(dir)
	if err != nil {
		return nil, nil, err
	}
	defer w.close()
	p := model.NewSmallParams(c)
	r := model.Reduced{DType: dt}
	for _, e := range entries(c, p) { // layer by layer, in order
		if e.dst != nil { // a norm or bias, allocated in p
			if err := w.readEntry(e); err != nil {
				return nil, nil, err
			}
			continue
		}
		qm, fellBack, err := w.matrix(e, dt)
		if err != nil {
			return nil, nil, err
		}
		if err := r.Add(paramsField(e.name), e.name, qm, fellBack); err != nil {
			return nil, nil, fmt.Errorf("hf %s: %w", dir, err)
		}
	}
	m, err := model.NewReduced(c, p, r)
	if err != nil {
		return nil, nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	return m, f, nil
}

// paramsField is the model.Params field of a large matrix's Hugging Face
// name ("" for any other name).
func paramsField(name string) string {
	switch name {
	case "model.embed_tokens.weight":
		return "emb"
	case "lm_head.weight":
		return "wcls"
	}
	layered := map[string]string{"q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "o_proj": "wo",
		"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
	if parts := strings.Split(name, "."); len(parts) == 6 {
		return layered[parts[4]]
	}
	return ""
}

// StoredDType is the type the folder's weights are stored in (its
// embedding's), read from the weight files' headers.
func StoredDType(dir string) (safetensors.DType, error) {
	_, c, err := readConfig(dir)
	if err != nil {
		return "", err
	}
	w, err := openWeights(dir)
	if err != nil {
		return "", err
	}
	defer w.close()
	return w.check(c)
}

// convertRows is how many rows of a matrix are converted at a time.
var convertRows = 256

// matrix builds the large matrix of e in dt, or in F16 when dt is Q8_0 and
// its rows are not a multiple of 32 long (fellBack).
func (w *weights) matrix(e entry, dt tensor.DType) (*tensor.QMatrix, bool, error) {
	f := w.byName[e.name]
	t, _ := f.Info(e.name)
	rows, cols := e.shape[0], e.shape[1]
	dt, fellBack := model.MatrixType(dt, cols)
	var qm *tensor.QMatrix
	var err error
	if strings.EqualFold(string(t.DType), dt.String()) { // stored in dt: copied as it is
		h := tensor.MakeWeights[uint16](rows * cols)
		if err = f.ReadBits(e.name, h); err == nil {
			qm, err = model.HalfRows(dt, h, rows, cols, e.hs)
		}
	} else {
		qm, err = model.ConvertRows(dt, rows, cols, e.hs, convertRows, func(r0 int, dst []float32) error {
			return f.ReadF32At(e.name, int64(r0)*int64(cols), dst)
		})
		f.Release(e.name)
	}
	if err != nil {
		return nil, false, fmt.Errorf("hf %s: tensor %s: %w", f.Path, e.name, err)
	}
	return qm, fellBack, nil
}
