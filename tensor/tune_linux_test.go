//go:build linux

package tensor

// Kernel tuning on a shared machine: wall-clock benchmarks swing with the
// load of other processes, so these also report the calling thread's CPU
// time (CLOCK_THREAD_CPUTIME_ID) as GFLOP/s-cpu (Gemm) or ns-cpu/op (vector ops).
//
//	GOEXPERIMENT=simd go test -run '^$' -bench 'BenchmarkTuneGemm/np_NN' ./tensor
//	GOEXPERIMENT=simd go test -run '^$' -bench BenchmarkTuneVec ./tensor
//
// TUNELEVEL=avx2 measures the AVX2 kernels on an AVX-512 machine.

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0) // CLOCK_THREAD_CPUTIME_ID
	return time.Duration(ts.Nano())
}

// BenchmarkTuneGemm measures Gemm on each model shape, on 1 and 2 threads:
// ns/op is wall time; GFLOP/s-cpu is from the benchmark goroutine's thread
// CPU time and is meaningful on 1 thread only.
func BenchmarkTuneGemm(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer SetThreads(Threads())
	if os.Getenv("TUNELEVEL") == "avx2" && maxLevel >= levelAVX2 {
		defer func(l int) { level = l }(level)
		level = levelAVX2
	}
	shapes := append(modelShapes(), gemmShape{name: "np_NN_1024_1024_1024", M: 1024, N: 1024, K: 1024}, gemmShape{name: "np_NN_2048_172_64", M: 2048, N: 172, K: 64})
	for _, g := range shapes {
		a, lda, bb, ldb, c, ldc := g.operands()
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", g.name, th), func(b *testing.B) {
				SetThreads(th)
				t0 := threadCPU()
				for b.Loop() {
					Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, bb, ldb, g.beta, c, ldc)
				}
				if th == 1 {
					b.ReportMetric(2*float64(g.M*g.N*g.K)*float64(b.N)/(threadCPU()-t0).Seconds()/1e9, "GFLOP/s-cpu")
				}
			})
		}
	}
}

// BenchmarkTuneVec measures vector ops on 512 elements in thread CPU time.
func BenchmarkTuneVec(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x, d := make([]float32, 512), make([]float32, 512)
	for i := range x {
		x[i] = float32(i%17) * 0.1
	}
	ops := []struct {
		name string
		f    func()
	}{
		{"ExpSub", func() { ExpSub(d, x, 3) }},
		{"Dot", func() { Dot(x, d) }},
		{"Add", func() { Add(d, x, d) }},
		{"Axpy", func() { Axpy(0.1, x, d) }},
		{"Max", func() { Max(x) }},
	}
	for _, op := range ops {
		b.Run(op.name+"/n=512", func(b *testing.B) {
			t0 := threadCPU()
			for b.Loop() {
				op.f()
			}
			b.ReportMetric(float64(threadCPU()-t0)/float64(b.N), "ns-cpu/op")
		})
	}
}
