package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

func TestParallelForCoversRange(t *testing.T) {
	defer SetThreads(Threads())
	cases := []struct{ n, grain int }{
		{0, 1}, {1, 1}, {2, 1}, {7, 3}, {10, 3}, {100, 1}, {100, 7}, {1000, 1}, {5, 10}, {64, 0},
	}
	for _, threads := range []int{1, 2, 4} {
		SetThreads(threads)
		if got := Threads(); got != threads {
			t.Fatalf("Threads() = %d after SetThreads(%d)", got, threads)
		}
		for _, tc := range cases {
			hits := make([]int32, tc.n)
			var mu sync.Mutex
			var chunks [][2]int
			ParallelFor(tc.n, tc.grain, func(lo, hi int) {
				mu.Lock()
				chunks = append(chunks, [2]int{lo, hi})
				mu.Unlock()
				for i := lo; i < hi; i++ {
					hits[i]++ // plain write: -race checks the chunks are disjoint and ordered before return
				}
			})
			for i, h := range hits {
				if h != 1 {
					t.Fatalf("threads=%d n=%d grain=%d: index %d visited %d times", threads, tc.n, tc.grain, i, h)
				}
			}
			for _, c := range chunks {
				if c[1]-c[0] < tc.grain && len(chunks) > 1 {
					t.Errorf("threads=%d n=%d grain=%d: chunk %v shorter than grain", threads, tc.n, tc.grain, c)
				}
			}
			if threads == 1 && len(chunks) > 1 {
				t.Errorf("one thread: got %d chunks, want fn(0, n) inline", len(chunks))
			}
		}
	}
}

func TestSetThreadsDefault(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(0)
	if got, want := Threads(), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("SetThreads(0): Threads() = %d, want GOMAXPROCS %d", got, want)
	}
}

func TestParallelForNestedAndConcurrent(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				ParallelFor(16, 1, func(lo, hi int) {
					for range hi - lo {
						ParallelFor(8, 1, func(lo, hi int) { total.Add(int64(hi - lo)) })
					}
				})
			}
		})
	}
	wg.Wait()
	if got, want := total.Load(), int64(4*50*16*8); got != want {
		t.Errorf("nested calls did %d units of work, want %d", got, want)
	}
}

func TestSetThreadsWhileRunning(t *testing.T) {
	defer SetThreads(Threads())
	var wg sync.WaitGroup
	var sum atomic.Int64
	wg.Go(func() {
		for range 200 {
			ParallelFor(100, 1, func(lo, hi int) { sum.Add(int64(hi - lo)) })
		}
	})
	for i := range 20 {
		SetThreads(1 + i%3)
	}
	wg.Wait()
	if got := sum.Load(); got != 200*100 {
		t.Errorf("work done = %d, want %d", got, 200*100)
	}
}

func BenchmarkParallelFor(b *testing.B) {
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			var x [2]int64
			for b.Loop() {
				ParallelFor(2, 1, func(lo, hi int) { x[lo]++ })
			}
		})
	}
}

func TestParallelForRunsConcurrently(t *testing.T) {
	// Sleeping chunks need no CPU, so two threads finish eight 10 ms chunks
	// in about half the serial 80 ms. On a loaded machine the helper's OS
	// thread may be descheduled for a while (the caller then does all the
	// work, correctly but serially), so the best of five tries counts.
	defer SetThreads(Threads())
	SetThreads(2)
	best := time.Hour
	for range 5 {
		start := time.Now()
		ParallelFor(8, 1, func(lo, hi int) { time.Sleep(time.Duration(hi-lo) * 10 * time.Millisecond) })
		best = min(best, time.Since(start))
	}
	if best > 65*time.Millisecond {
		t.Errorf("8 x 10 ms on 2 threads took %v at best, want about 40 ms", best)
	}
}

// TestParallelForReleasesItsFunction: a call whose chunks the caller took
// alone, its job still queued for helpers busy elsewhere, does not keep what
// its function captures alive (a model's F32 weights after SetDType).
func TestParallelForReleasesItsFunction(t *testing.T) {
	defer SetThreads(Threads())
	SetThreads(3)
	// occupy the caller and both helpers of another call
	var entered atomic.Int32
	release := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		ParallelFor(12, 1, func(lo, hi int) {
			entered.Add(1)
			<-release
		})
		close(busy)
	}()
	for entered.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	w := func() weak.Pointer[float32] { // data is reachable only through the function
		data := make([]float32, 1<<16)
		sum := float32(0)
		ParallelFor(len(data), 1024, func(lo, hi int) {
			for _, v := range data[lo:hi] {
				sum += v // the caller runs every chunk: no race
			}
		})
		return weak.Make(&data[0])
	}()
	runtime.GC()
	gone := w.Value() == nil
	close(release)
	<-busy
	if !gone {
		t.Fatal("the data a finished ParallelFor's function captured is still reachable")
	}
}
