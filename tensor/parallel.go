package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The parallel-for runs on a persistent pool of helper goroutines. A call
// publishes a job (an atomic chunk counter) to idle helpers and then takes
// chunks itself until none are left, so correctness never depends on a helper
// showing up: with busy helpers (for example a ParallelFor nested inside
// another) the caller simply does all the work. Completion of every chunk is
// published through an atomic counter, which orders the chunks' writes before
// the return of ParallelFor.

// pool is a set of helper goroutines; threads-1 helpers plus the caller.
type pool struct {
	threads int
	jobs    chan *job
}

// job is one ParallelFor call split into nchunks chunks of [0,n).
type job struct {
	fn      func(lo, hi int)
	n       int
	nchunks int32 // number of chunks
	next    atomic.Int32
	pending atomic.Int32 // chunks not yet finished
	done    chan struct{}
}

var (
	curPool atomic.Pointer[pool]
	poolMu  sync.Mutex // serializes SetThreads
)

func init() { SetThreads(0) }

// SetThreads sets the number of threads used by ParallelFor and the
// parallel kernels; n <= 0 means runtime.GOMAXPROCS(0).
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	poolMu.Lock()
	defer poolMu.Unlock()
	old := curPool.Load()
	if old != nil && old.threads == n {
		return
	}
	p := &pool{threads: n, jobs: make(chan *job, 4*n)}
	for range n - 1 {
		go p.helper()
	}
	curPool.Store(p)
	if old != nil {
		// A nil job tells one helper of the old pool to exit once it is idle.
		go func() {
			for range old.threads - 1 {
				old.jobs <- nil
			}
		}()
	}
}

// Threads is the number of threads ParallelFor uses.
func Threads() int { return curPool.Load().threads }

func (p *pool) helper() {
	for j := range p.jobs {
		if j == nil {
			return
		}
		j.work()
	}
}

// work runs chunks of j until none are left.
func (j *job) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.nchunks {
			return
		}
		lo := int(c) * j.n / int(j.nchunks)
		hi := int(c+1) * j.n / int(j.nchunks)
		j.fn(lo, hi)
		if j.pending.Add(-1) == 0 {
			close(j.done)
		}
	}
}

// chunksPerThread oversplits the range so that a thread slowed down by other
// processes on the machine does not hold up the others.
const chunksPerThread = 4

// ParallelFor calls fn on disjoint chunks [lo,hi) covering [0,n), each at
// least grain long (a single chunk when n < 2*grain), using up to Threads() threads.
// It returns when every chunk is done. With one thread, or when the range
// is a single chunk, fn(0, n) runs inline on the caller's goroutine.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	p := curPool.Load()
	if p.threads == 1 || n < 2*grain {
		fn(0, n)
		return
	}
	// Chunk c is [c*n/nchunks, (c+1)*n/nchunks): all at least n/nchunks >= grain long.
	nchunks := min(n/grain, chunksPerThread*p.threads)
	j := &job{fn: fn, n: n, nchunks: int32(nchunks), done: make(chan struct{})}
	j.pending.Store(int32(nchunks))
	for range min(p.threads-1, nchunks-1) {
		select {
		case p.jobs <- j:
		default: // helpers are saturated; the caller works alone
		}
	}
	j.work()
	<-j.done
	// Copies of j left in the channel when the caller took every chunk
	// itself reach a helper later and find no chunk; until then they must
	// not keep fn's captures (a model's weights) alive.
	j.fn = nil
}
