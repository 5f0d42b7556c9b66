//go:build linux

package tensor

// Kernel tuning on a shared machine: wall-clock benchmarks swing with the
// load of other processes, so these measure the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID) and keep the best of thirty 3 ms windows.
//
//	GOEXPERIMENT=simd TUNE=. go test -run TestTune -v ./tensor      # Gemm, 1 thread, CPU time
//	GOEXPERIMENT=simd TUNE=. TUNEWALL=1 go test -run TestTune -v ./tensor  # wall time, 1 and 2 threads
//	GOEXPERIMENT=simd TUNEVEC=1 go test -run TestTuneVec -v ./tensor
//
// TUNELEVEL=avx2 measures the AVX2 kernels on an AVX-512 machine.

import (
	"fmt"
	"os"
	"regexp"
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

// TestTune prints GFLOP/s of each model shape (TUNE is a regexp on the
// names): CPU time on one thread, or wall time on 1 and 2 threads with
// TUNEWALL=1.
func TestTune(t *testing.T) {
	if os.Getenv("TUNE") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	defer SetThreads(Threads())
	re := regexp.MustCompile(os.Getenv("TUNE"))
	if os.Getenv("TUNELEVEL") == "avx2" && maxLevel >= levelAVX2 {
		defer func(l int) { level = l }(level)
		level = levelAVX2
	}
	wall := os.Getenv("TUNEWALL") != ""
	shapes := append(modelShapes(), gemmShape{name: "np_NN_1024_1024_1024", M: 1024, N: 1024, K: 1024}, gemmShape{name: "np_NN_2048_172_64", M: 2048, N: 172, K: 64})
	for _, g := range shapes {
		if !re.MatchString(g.name) {
			continue
		}
		a, lda, bb, ldb, c, ldc := g.operands()
		line := fmt.Sprintf("%-30s", g.name)
		for _, th := range []int{1, 2} {
			if th == 2 && !wall {
				continue
			}
			SetThreads(th)
			best := 0.0
			for range 30 {
				n := 0
				t0, w0 := threadCPU(), time.Now()
				el := func() time.Duration {
					if wall {
						return time.Since(w0)
					}
					return threadCPU() - t0
				}
				batch := 1 + 1<<20/(g.M*g.N*g.K)
				for el() < 3*time.Millisecond {
					for range batch {
						Gemm(g.transA, g.transB, g.M, g.N, g.K, a, lda, bb, ldb, g.beta, c, ldc)
					}
					n += batch
				}
				best = max(best, 2*float64(g.M*g.N*g.K)*float64(n)/el().Seconds()/1e9)
			}
			line += fmt.Sprintf(" %7.2f", best)
		}
		fmt.Println(line)
	}
}

// TestTuneVec prints the CPU time of vector ops on 512 elements.
func TestTuneVec(t *testing.T) {
	if os.Getenv("TUNEVEC") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
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
		best := 1e9
		for range 10 {
			t0 := threadCPU()
			for range 2000 {
				op.f()
			}
			best = min(best, float64(threadCPU()-t0)/2000)
		}
		fmt.Printf("%-10s n=512 %8.1f ns\n", op.name, best)
	}
}
