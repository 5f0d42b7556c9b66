package tensor

import "unsafe"

// Large buffers that are streamed (weights, KV caches) are allocated with
// these, which ask the kernel for huge pages before the memory is first
// touched (see adviseHuge).

// MakeHuge returns n zeroed values, backed by huge pages where the system
// grants them.
func MakeHuge[T any](n int) []T {
	s := make([]T, n)
	HugePages(s)
	return s
}

// HugePages asks for huge pages under s (whole 2 MiB pages only); best done
// before s is first written.
func HugePages[T any](s []T) {
	if len(s) == 0 {
		return
	}
	var z T
	adviseHuge(unsafe.Pointer(unsafe.SliceData(s)), uintptr(len(s))*unsafe.Sizeof(z))
}
