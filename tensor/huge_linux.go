package tensor

import (
	"syscall"
	"unsafe"
)

// adviseHuge asks for transparent huge pages under the n bytes at p (the
// whole 2 MiB pages inside them). Advice only: where THP is off, or set to
// "madvise" mode without this call, memory comes in 4 KiB pages, and
// streaming a large matrix through them costs a TLB miss every 4 KiB.
func adviseHuge(p unsafe.Pointer, n uintptr) {
	const page = 2 << 20
	start := uintptr(p)
	lo, hi := (start+page-1)&^(page-1), (start+n)&^(page-1)
	if hi > lo {
		_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, lo-start)), hi-lo), 14) // MADV_HUGEPAGE
	}
}
