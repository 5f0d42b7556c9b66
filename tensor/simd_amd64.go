//go:build goexperiment.simd && amd64

package tensor

import "simd/archsimd"

func detectLevel() int {
	if !archsimd.X86.AVX2() || !archsimd.X86.FMA() {
		return levelGo
	}
	if archsimd.X86.AVX512() {
		return levelAVX512
	}
	return levelAVX2
}
