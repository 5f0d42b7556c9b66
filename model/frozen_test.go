package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"fspo/tensor"
)

// TestAdapterOverReducedBase: an adapter over a base held in F16, BF16 or
// Q8_0 gets from Score and BackwardAdapter the log-probs and gradients it
// gets over the F32 model holding the same values (widened; itself checked
// against finite differences in TestAdapterFiniteDifferences) — to float32
// rounding where the products widen the weights (F16), within what rounding
// the activations costs where they do not (BF16's tiles round them to BF16,
// Q8_0's products to 8 bits: measured at most 0.011 and 0.038 of the
// gradients' norm here). The large matrices are scaled to a standard
// deviation of 0.09, as trained models' are (at randomModel's 0.3 the
// random network magnifies any rounding 20-fold). 60 prompt tokens make 128
// rows, so the products take the prompt paths training takes (tiles for
// BF16).
func TestAdapterOverReducedBase(t *testing.T) {
	tol := map[tensor.DType]float64{tensor.F16: 1e-5, tensor.BF16: 0.025, tensor.Q8_0: 0.08}
	for name, m := range q8Variants(t) {
		for _, dt := range []tensor.DType{tensor.F16, tensor.BF16, tensor.Q8_0} {
			r := clone(t, m)
			for _, tt := range r.W.Tensors(r.Config) {
				if IsLarge(tt.Name) {
					tensor.Scale(0.3, tt.Data)
				}
			}
			if err := r.SetDType(dt); err != nil {
				t.Fatal(err)
			}
			ref := widened(t, r)
			l := randomAdapter(t, m.Config, 7)
			for _, mm := range []*Model{r, ref} {
				if err := mm.Attach(l); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(5, 6))
			V := m.Config.Vocab
			exs := []Example{
				{Prompt: randTokens(rng, 60, V), Completions: [][]int{randTokens(rng, 4, V), randTokens(rng, 3, V)}},
				{Prompt: randTokens(rng, 60, V), Completions: [][]int{randTokens(rng, 5, V)}},
			}
			weights := [][]float32{{1, -0.7}, {0.5}}
			got, want := adapterGrads(t, r, l, exs, weights), adapterGrads(t, ref, l, exs, weights)
			for k := range want {
				if e := relErr(got[k], want[k]); !(e <= tol[dt]) {
					t.Errorf("%s %s: %s differs from the widened model's by %.3g (relative), want ≤ %g", name, dt, k, e, tol[dt])
				}
			}
		}
	}
}

// adapterGrads scores exs with m (adapter l attached), sets the token
// gradients of objective's weights and returns the log-probs ("logp") and
// the gradient of each of l's tensors.
func adapterGrads(t *testing.T, m *Model, l *LoRA, exs []Example, weights [][]float32) map[string][]float32 {
	_, p := objective(t, m, exs, weights)
	out := map[string][]float32{}
	for i := range exs {
		for j := range exs[i].Completions {
			out["logp"] = append(out["logp"], p.Tokens(i, j)...)
			g := make([]float32, len(exs[i].Completions[j]))
			for k := range g {
				g[k] = weights[i][j] * float32(k+1) / 3
			}
			p.SetTokenGrads(i, j, g)
		}
	}
	g := l.Grads()
	p.BackwardAdapter(g)
	for _, tt := range g.Tensors {
		out[fmt.Sprintf("layer %d %s A", tt.Layer, tt.Target)] = tt.A
		out[fmt.Sprintf("layer %d %s B", tt.Layer, tt.Target)] = tt.B
	}
	return out
}

// relErr is |a − b| / |b| (Euclidean norms).
func relErr(a, b []float32) float64 {
	var d, n float64
	for i := range b {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// TestTransposeQ: the transposed copy of a matrix in each type holds the
// same values in its columns, in the matrix's own type (F32 for Q8_0).
func TestTransposeQ(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	w := make([]float32, 48*64)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0} {
		qm, err := tensor.Quantize(dt, w, 48, 64)
		if err != nil {
			t.Fatal(err)
		}
		qt := transposeQ(qm)
		want := dt
		if dt == tensor.Q8_0 {
			want = tensor.F32
		}
		if qt.Rows != 64 || qt.Cols != 48 || qt.DType != want {
			t.Fatalf("%s: transposed is %s %d×%d", dt, qt.DType, qt.Rows, qt.Cols)
		}
		row, col := make([]float32, 64), make([]float32, 48)
		for i := range 48 {
			qm.Row(i, row)
			for j := range 64 {
				qt.Row(j, col)
				if col[i] != row[j] {
					t.Fatalf("%s: [%d][%d] is %g transposed, %g before", dt, j, i, col[i], row[j])
				}
			}
		}
	}
}

// TestDequantize: a reduced model given back F32 weights holds the values
// its matrices held (widened's), scores as it did, and trains as an F32
// model again.
func TestDequantize(t *testing.T) {
	for name, m := range q8Variants(t) {
		r := clone(t, m)
		if err := r.SetDType(tensor.BF16); err != nil {
			t.Fatal(err)
		}
		want := widened(t, r)
		r.Dequantize()
		if r.DType() != tensor.F32 {
			t.Fatalf("%s: dtype %s after Dequantize", name, r.DType())
		}
		for i, tt := range r.W.Tensors(r.Config) {
			if w := want.W.Tensors(r.Config)[i]; !equalF32(tt.Data, w.Data) {
				t.Fatalf("%s: tensor %s differs from the widened values", name, tt.Name)
			}
		}
		if _, err := r.Checkpoint(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
