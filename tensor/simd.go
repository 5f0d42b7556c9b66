package tensor

// Instruction-set levels of the kernels. The level is chosen once at start-up
// from the build (GOEXPERIMENT=simd on amd64) and the CPU's features; tests
// lower it to run every path on the same machine.
const (
	levelGo     = iota // portable Go
	levelAVX2          // 256-bit AVX2 + FMA
	levelAVX512        // AVX-512F for the main matrix kernel, AVX2 elsewhere
)

var (
	maxLevel = detectLevel() // best level this build and CPU support
	level    = maxLevel      // level in use
)

// SIMD reports whether the kernels use SIMD instructions (AVX2 and FMA, and
// AVX-512 for the main matrix kernel when the CPU has it).
func SIMD() bool { return level > levelGo }

// PromptsRoundActivations is whether a product of many activation rows (a
// prompt's) by a matrix of type dt rounds the activations where a few rows'
// products do not, or otherwise: Q8_0 quantizes them per block of 32 as a
// few rows' products always do, where the 8-bit tiles run (AVX-512 VNNI);
// BF16 rounds them to BF16, where its tiles run (AVX512-BF16, rows a
// multiple of 4 long). Elsewhere such a product widens the weights and
// keeps the activations.
func PromptsRoundActivations(dt DType) bool {
	switch dt {
	case Q8_0:
		return q8TilesOK()
	case BF16:
		return bf16TilesOK(4)
	}
	return false
}

// SIMDLevel names the instruction set the kernels use: "avx512", "avx2" or "go".
func SIMDLevel() string {
	switch level {
	case levelAVX512:
		return "avx512"
	case levelAVX2:
		return "avx2"
	}
	return "go"
}
