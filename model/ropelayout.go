package model

// RoPE pairs. The engine rotates interleaved pairs (x[2i], x[2i+1]) of each
// head, as Meta's Llama code and llama2.c do. Hugging Face checkpoints rotate
// halves (x[i], x[i+hs/2]), "rotate_half". The two are the same model up to a
// permutation of each head's query and key channels, so loaders of Hugging
// Face (and NeoX-style GGUF) weights permute those rows once on load, and
// writers permute them back:
//
//	interleaved channel 2i   ← half-layout channel i
//	interleaved channel 2i+1 ← half-layout channel i + hs/2
//
// The rows so permuted are Wq/Wk (per output row), the biases Bq/Bk and the
// per-head norm weights QNorm/KNorm (RMSNorm is invariant to a permutation
// of its channels when its weights move with them). Wo, Wv and Bv are not
// touched.

// HalfToInterleaved permutes, in place, the rows of w — rows × cols values
// holding heads×hs rows per block of `rows` — from the half layout to the
// interleaved one. w may hold several layers back to back (len(w) a multiple
// of heads*hs*cols). cols is 1 for biases and norm weights.
func HalfToInterleaved(w []float32, hs, cols int) { permuteHeads(w, hs, cols, false) }

// HalfToInterleavedRows is HalfToInterleaved on rows of any element type
// (F16 or BF16 bits, Q8_0 quants, or their block scales with cols the
// blocks per row).
func HalfToInterleavedRows[T any](w []T, hs, cols int) { permuteHeads(w, hs, cols, false) }

// InterleavedToHalf is the inverse of HalfToInterleaved.
func InterleavedToHalf(w []float32, hs, cols int) { permuteHeads(w, hs, cols, true) }

func permuteHeads[T any](w []T, hs, cols int, inverse bool) {
	if hs%2 != 0 || len(w)%(hs*cols) != 0 {
		panic("model: permuteHeads: shape mismatch")
	}
	half := hs / 2
	tmp := make([]T, hs*cols)
	for h := 0; h < len(w)/(hs*cols); h++ {
		head := w[h*hs*cols : (h+1)*hs*cols]
		copy(tmp, head)
		for i := 0; i < half; i++ {
			for j, src := range [2]int{i, i + half} {
				dst := 2*i + j
				if inverse {
					dst, src = src, dst
				}
				copy(head[dst*cols:(dst+1)*cols], tmp[src*cols:(src+1)*cols])
			}
		}
	}
}
