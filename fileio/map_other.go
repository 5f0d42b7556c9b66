//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package fileio

import (
	"io"
	"os"
)

// mapFile reads f whole where this package does not map files.
func mapFile(f *os.File, size int) ([]byte, error) {
	mem := make([]byte, size)
	if _, err := io.ReadFull(f, mem); err != nil {
		return nil, err
	}
	return mem, nil
}

func unmapFile([]byte) error { return nil }
