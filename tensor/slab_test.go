package tensor

import (
	"testing"
	"unsafe"
)

// TestMakeWeights: buffers under 2 MiB come from a slab, 64-byte aligned,
// zeroed and not overlapping; larger ones are allocated on their own.
func TestMakeWeights(t *testing.T) {
	type span struct{ lo, hi uintptr }
	var got []span
	var keep [][]uint16
	for _, n := range []int{1, 100, 576 * 576, 192 * 576, 1536 * 576, 1536 * 576, 3, 1536 * 576} {
		b := MakeWeights[uint16](n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("MakeWeights(%d): len %d cap %d", n, len(b), cap(b))
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if p%64 != 0 {
			t.Fatalf("MakeWeights(%d) at %#x, not 64-byte aligned", n, p)
		}
		for i, v := range b {
			if v != 0 {
				t.Fatalf("MakeWeights(%d)[%d] = %d, want 0", n, i, v)
			}
		}
		for i := range b {
			b[i] = uint16(len(got) + 1)
		}
		got = append(got, span{p, p + uintptr(2*n)})
		keep = append(keep, b)
	}
	for i, a := range got {
		for j, b := range got[:i] {
			if a.lo < b.hi && b.lo < a.hi {
				t.Fatalf("buffers %d and %d overlap: [%#x,%#x) and [%#x,%#x)", j, i, b.lo, b.hi, a.lo, a.hi)
			}
		}
	}
	for i, b := range keep {
		for _, v := range b {
			if v != uint16(i+1) {
				t.Fatalf("buffer %d was overwritten (found %d)", i, v)
			}
		}
	}
	big := MakeWeights[float32](hugePage / 4)
	if len(big) != hugePage/4 {
		t.Fatalf("MakeWeights of 2 MiB: len %d", len(big))
	}
}
