//go:build !(goexperiment.simd && amd64)

package optim

// useVec is false: this build has no vector loops.
var useVec = false

func adamwVec(p, g, m, v []float32, k *adamwConsts) int { return 0 }

func rmspropVec(p, g, sq, buf, avg []float32, k *rmspropConsts) int { return 0 }
