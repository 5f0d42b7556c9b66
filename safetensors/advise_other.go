//go:build !linux

package safetensors

const adviceDontNeed, advicePopulate = 0, 0

// advise does nothing where the Linux advice is not available.
func advise([]byte, int) {}
