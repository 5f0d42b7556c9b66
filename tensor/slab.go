package tensor

import (
	"sync"
	"unsafe"
)

// MakeWeights returns n zeroed values for a long-lived weight matrix. A
// buffer of 2 MiB or more is MakeHuge's; a smaller one gets no huge page of
// its own, so it is cut from a shared slab of huge pages instead: a model's
// per-layer matrices (0.2–1.7 MB each at 180M parameters) then stream
// through few TLB entries. Measured on the 2-core EPYC, decoding a 180M
// model in F16 ran 65–71 tok/s on one thread with the matrices in 4 KiB
// pages and 75–78 from slabs. A slab's memory is freed once none of its
// buffers is referenced and a newer slab is being cut (the current one's
// unused part, < 32 MiB, stays); buffers for short-lived data (KV caches)
// belong in MakeHuge, lest one of them keep a slab alive.
func MakeWeights[T uint16 | int8 | uint8 | float32](n int) []T {
	var z T
	size := uintptr(n) * unsafe.Sizeof(z)
	if size == 0 || size >= hugePage {
		return MakeHuge[T](n)
	}
	return unsafe.Slice((*T)(slabs.alloc(size)), n)
}

const (
	hugePage = 2 << 20
	// slabSize is a slab's usable bytes: at most a buffer's worth (< 2
	// MiB) of its end goes unused.
	slabSize = 32 << 20
)

var slabs slabAllocator

type slabAllocator struct {
	mu   sync.Mutex
	free []byte // the current slab's unused part
}

// alloc returns size bytes, 64-byte aligned, from the current slab, starting
// a new one when they do not fit. The slabs are []byte, so the buffers must
// hold no pointers (MakeWeights' types).
func (s *slabAllocator) alloc(size uintptr) unsafe.Pointer {
	size = (size + 63) &^ 63
	s.mu.Lock()
	defer s.mu.Unlock()
	if uintptr(len(s.free)) < size {
		b := make([]byte, slabSize+hugePage)
		off := (hugePage - uintptr(unsafe.Pointer(unsafe.SliceData(b)))%hugePage) % hugePage
		s.free = b[off : off+slabSize]
		adviseHuge(unsafe.Pointer(unsafe.SliceData(s.free)), slabSize)
	}
	p := unsafe.Pointer(unsafe.SliceData(s.free))
	s.free = s.free[size:]
	return p
}
