package llm

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fspo/llm/llmtest"
)

// benchmarkOverhead runs b.N calls from 256 goroutines against a loopback
// server that answers at once; the server shares the CPU, so the per-call
// figure bounds the client's overhead from above.
func benchmarkOverhead(b *testing.B, cached bool) {
	srv := llmtest.New(nil)
	defer srv.Close()
	cfg := testConfig(srv)
	cfg.Concurrency = 256
	cfg.Timeout = Duration(30 * time.Second)
	e := mustNew(b, cfg)
	var c Client = e
	if cached {
		c = Cached(e, openCache(b, filepath.Join(b.TempDir(), "calls.db")))
	}
	const workers = 256
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				req := userReq("bench", fmt.Sprintf("question number %d", i))
				if _, err := c.Complete(context.Background(), req); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
	b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
	b.ReportMetric(float64(el.Microseconds())/float64(b.N), "µs/call")
	st := e.Stats()
	b.ReportMetric(float64(st.LatencyP50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(st.LatencyP99.Microseconds()), "p99-µs")
}

func BenchmarkClientOverhead256(b *testing.B)       { benchmarkOverhead(b, false) }
func BenchmarkCachedClientOverhead256(b *testing.B) { benchmarkOverhead(b, true) }

// cpuTime is the process's user+system CPU time (client and server both).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
