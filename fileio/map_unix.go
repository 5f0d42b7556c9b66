//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package fileio

import (
	"os"
	"syscall"
)

// mapFile maps the size bytes of f read-only.
func mapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
}

func unmapFile(mem []byte) error { return syscall.Munmap(mem) }
