package hf

import (
	"syscall"
	"unsafe"
)

// hugePages asks for transparent huge pages under the weights: a billion
// weights fill 1.2 million 4 KiB pages, and faulting them in one by one
// takes longer than converting them. Advice only.
func hugePages(block []float32) {
	page := uintptr(2 << 20)
	base := unsafe.Pointer(unsafe.SliceData(block))
	start := uintptr(base)
	end := start + 4*uintptr(len(block))
	lo, hi := (start+page-1)&^(page-1), end&^(page-1)
	if hi > lo {
		_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, lo-start)), hi-lo), 14) // MADV_HUGEPAGE
	}
}
