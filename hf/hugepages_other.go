//go:build !linux

package hf

// hugePages does nothing where transparent huge pages are not asked for.
func hugePages([]float32) {}
