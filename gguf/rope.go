package gguf

import (
	"fmt"
	"math"

	"fspo/model"
)

// ropeFreqsTensor holds llama.cpp's per-frequency RoPE divisors (head
// size/2 values); its converter writes it for Hugging Face rope_scaling of
// type llama3, and rope_ext divides each frequency by its factor.
const ropeFreqsTensor = "rope_freqs.weight"

// defaultOriginalContext is Llama 3.1's original_max_position_embeddings,
// assumed when a file has rope factors but no original context length.
const defaultOriginalContext = 8192

// ropeFactors computes llama3 scaling's divisor of each RoPE frequency
// (Hugging Face's _compute_llama3_parameters, expressed as llama.cpp's
// factors: 1 for short wavelengths, Factor for long ones, and between them
// 1/((1-s)/Factor + s) with s linear in original_context/wavelength).
func ropeFactors(c model.Config) []float32 {
	rs := c.RopeScaling
	hs := c.HeadSize()
	out := make([]float32, hs/2)
	lowWave := float64(rs.OriginalMaxPositions) / rs.LowFreqFactor
	highWave := float64(rs.OriginalMaxPositions) / rs.HighFreqFactor
	for i := range out {
		freq := math.Pow(float64(c.RopeTheta), -float64(2*i)/float64(hs))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(rs.Factor)
		default:
			s := (float64(rs.OriginalMaxPositions)/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			out[i] = float32(1 / ((1-s)/rs.Factor + s))
		}
	}
	return out
}

// readRopeScaling recovers llama3 rope scaling from rope_freqs.weight: the
// factor is the largest divisor, the low/high frequency factors follow from
// two divisors of the interpolated band, and the whole vector must be
// reproduced. Other scaling types are refused.
func readRopeScaling(f *File, m *metaReader, c model.Config) (*model.RopeScaling, error) {
	typ, ok, err := f.String(m.prefix + "rope.scaling.type")
	if err != nil {
		return nil, err
	}
	if ok && typ != "none" {
		return nil, fmt.Errorf("gguf %s: %srope.scaling.type %q is not supported (supported: none, or llama3 factors in %s)", f.Path, m.prefix, typ, ropeFreqsTensor)
	}
	t := f.Tensor(ropeFreqsTensor)
	if t == nil {
		return nil, nil
	}
	hs := c.HeadSize()
	if len(t.Dims) != 1 || t.Dims[0] != uint64(hs/2) {
		return nil, fmt.Errorf("gguf %s: %s has dims %v, want [%d] (head size/2)", f.Path, ropeFreqsTensor, t.Dims, hs/2)
	}
	r := t.Float32()
	orig := m.int("rope.scaling.original_context_length", false, defaultOriginalContext)
	if m.err != nil {
		return nil, m.err
	}
	rs, err := fitLlama3(r, c, orig)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %s: %w", f.Path, ropeFreqsTensor, err)
	}
	return rs, nil
}

func fitLlama3(r []float32, c model.Config, orig int) (*model.RopeScaling, error) {
	factor := 0.0
	for _, v := range r {
		if math.IsNaN(float64(v)) || v < 1 {
			return nil, fmt.Errorf("factor %v is not ≥ 1 (not llama3 scaling)", v)
		}
		factor = max(factor, float64(v))
	}
	if factor == 1 {
		return nil, nil
	}
	hs := c.HeadSize()
	// s = (orig/wave - low)/(high - low) for the band's interpolated factors.
	var xs, ss []float64
	for i, v := range r {
		if f := float64(v); f > 1+1e-6 && f < factor-1e-6*factor {
			wave := 2 * math.Pi * math.Pow(float64(c.RopeTheta), float64(2*i)/float64(hs))
			xs = append(xs, float64(orig)/wave)
			ss = append(ss, (1/f-1/factor)/(1-1/factor))
		}
	}
	if len(xs) < 2 {
		return nil, fmt.Errorf("%d interpolated factors: too few to recover llama3 scaling", len(xs))
	}
	n := len(xs) - 1
	span := (xs[0] - xs[n]) / (ss[0] - ss[n]) // high - low
	low := xs[0] - ss[0]*span
	rs := &model.RopeScaling{Type: "llama3", Factor: factor, LowFreqFactor: low, HighFreqFactor: low + span, OriginalMaxPositions: orig}
	// Round to the float32 the factors were stored with, as the file would say.
	rs.LowFreqFactor = roundTo(rs.LowFreqFactor)
	rs.HighFreqFactor = roundTo(rs.HighFreqFactor)
	c.RopeScaling = rs
	for i, v := range ropeFactors(c) {
		if d := math.Abs(float64(v-r[i])) / float64(r[i]); d > 1e-4 {
			return nil, fmt.Errorf("factor %d is %v, llama3 scaling %+v gives %v", i, r[i], *rs, v)
		}
	}
	return rs, nil
}

// roundTo rounds a recovered parameter to 4 significant decimals when that
// is within float32 noise (the published values are small round numbers).
func roundTo(x float64) float64 {
	p := math.Pow(10, 3-math.Floor(math.Log10(math.Abs(x))))
	if r := math.Round(x*p) / p; math.Abs(r-x) <= 1e-4*math.Abs(x) {
		return r
	}
	return x
}
