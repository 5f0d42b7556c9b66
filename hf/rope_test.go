package hf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"fspo/safetensors"
)

// headQK computes one head's query (or key) for input x the way each
// layout defines it: projection, bias, per-head RMS norm, then RoPE at
// position pos — rotate_half pairs (i, i+hs/2) for the Hugging Face
// tensors, interleaved pairs (2i, 2i+1) for the engine's.
func headQK(w, b, norm, x []float32, head, hs int, eps float64, pos int, theta float64, interleaved bool) []float64 {
	d := len(x)
	v := make([]float64, hs)
	for r := range hs {
		row := w[(head*hs+r)*d : (head*hs+r+1)*d]
		for k, xv := range x {
			v[r] += float64(row[k]) * float64(xv)
		}
		if b != nil {
			v[r] += float64(b[head*hs+r])
		}
	}
	if norm != nil {
		var ss float64
		for _, a := range v {
			ss += a * a
		}
		s := 1 / math.Sqrt(ss/float64(hs)+eps)
		for r := range v {
			v[r] *= s * float64(norm[r])
		}
	}
	out := make([]float64, hs)
	for i := range hs / 2 {
		a := float64(pos) * math.Pow(theta, -2*float64(i)/float64(hs))
		c, s := math.Cos(a), math.Sin(a)
		i0, i1 := i, i+hs/2
		if interleaved {
			i0, i1 = 2*i, 2*i+1
		}
		out[i0] = v[i0]*c - v[i1]*s
		out[i1] = v[i1]*c + v[i0]*s
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// The loaded (permuted) query and key weights, biases and norms give the
// same attention scores under interleaved RoPE as the file's tensors give
// under Hugging Face's rotate_half, for every head and layer.
func TestPermutationKeepsAttentionScores(t *testing.T) {
	for _, name := range []string{"llama-gqa-scaled", "qwen2", "qwen3"} {
		m, _ := mustLoad(t, tiny(name))
		f, err := safetensors.Open(filepath.Join(tiny(name), WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		raw := func(n string) []float32 {
			info, ok := f.Info(n)
			if !ok {
				return nil
			}
			out := make([]float32, info.Numel())
			if err := f.ReadF32(n, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
		c := m.Config
		hs, r := c.HeadSize(), rand.New(rand.NewPCG(3, 4))
		x, y := make([]float32, c.Dim), make([]float32, c.Dim)
		for i := range x {
			x[i], y[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		var worst float64
		for l := range c.Layers {
			pre := fmt.Sprintf("model.layers.%d.self_attn.", l)
			hfQ := func(n string) []float32 { return raw(pre + n) }
			ly := func(w []float32, size int) []float32 {
				if w == nil {
					return nil
				}
				return w[l*size : (l+1)*size]
			}
			p := m.W
			for h := range c.Heads {
				kh := h / (c.Heads / c.KVHeads)
				for _, pos := range [][2]int{{0, 0}, {5, 3}, {200, 17}} {
					q1 := headQK(hfQ("q_proj.weight"), hfQ("q_proj.bias"), hfQ("q_norm.weight"), x, h, hs, float64(c.NormEps), pos[0], float64(c.RopeTheta), false)
					k1 := headQK(hfQ("k_proj.weight"), hfQ("k_proj.bias"), hfQ("k_norm.weight"), y, kh, hs, float64(c.NormEps), pos[1], float64(c.RopeTheta), false)
					q2 := headQK(ly(p.Wq, c.QDim()*c.Dim), ly(p.Bq, c.QDim()), ly(p.QNorm, hs), x, h, hs, float64(c.NormEps), pos[0], float64(c.RopeTheta), true)
					k2 := headQK(ly(p.Wk, c.KVDim()*c.Dim), ly(p.Bk, c.KVDim()), ly(p.KNorm, hs), y, kh, hs, float64(c.NormEps), pos[1], float64(c.RopeTheta), true)
					a, b := dot(q1, k1), dot(q2, k2)
					worst = max(worst, math.Abs(a-b))
					if math.Abs(a-b) > 1e-9*(1+math.Abs(a)) {
						t.Errorf("%s layer %d head %d positions %v: score %v (file, rotate_half) vs %v (loaded, interleaved)", name, l, h, pos, a, b)
					}
				}
			}
		}
		f.Close()
		t.Logf("%s: max |Δscore| %.2g", name, worst)
	}
}
