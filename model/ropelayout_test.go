package model

import (
	"slices"
	"testing"
)

func TestHalfToInterleaved(t *testing.T) {
	// Two heads of size 4, two columns: rows r hold (10r, 10r+1).
	w := make([]float32, 2*4*2)
	for r := 0; r < 8; r++ {
		w[2*r], w[2*r+1] = float32(10*r), float32(10*r+1)
	}
	orig := slices.Clone(w)
	HalfToInterleaved(w, 4, 2)
	// Within each head, rows (0,1,2,3) in half layout become (0,2,1,3).
	want := []float32{0, 1, 20, 21, 10, 11, 30, 31, 40, 41, 60, 61, 50, 51, 70, 71}
	if !slices.Equal(w, want) {
		t.Fatalf("got %v, want %v", w, want)
	}
	InterleavedToHalf(w, 4, 2)
	if !slices.Equal(w, orig) {
		t.Fatalf("round trip: got %v, want %v", w, orig)
	}
}
