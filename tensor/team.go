package tensor

import (
	"runtime"
	"sync/atomic"
)

// Team is the caller plus one partner goroutine that spins waiting for
// work, for splitting jobs of a few microseconds (the attention of one
// decoded token) where waking a parked helper (ParallelFor) costs more than
// it saves. Items are claimed through an atomic counter, so the caller does
// every item the partner has not started: a partner that the machine does
// not schedule slows nothing down. The partner holds a thread while the
// team lives; Close it when the burst of jobs is over.
type Team struct {
	cur    atomic.Pointer[teamJob]
	stop   atomic.Bool
	exited chan struct{}
}

type teamJob struct {
	fn   func(worker, i int)
	n    int32
	next atomic.Int32
	done atomic.Int32
}

// teamSpins is how many empty polls a spinning thread makes between yields
// of its processor (about 10 µs): on a machine with more runnable threads
// than cores, a partner preempted while holding an item then gets the core
// of the caller waiting for it.
const teamSpins = 1 << 12

// NewTeam starts the partner goroutine.
func NewTeam() *Team {
	t := &Team{exited: make(chan struct{})}
	go t.partner()
	return t
}

func (t *Team) partner() {
	defer close(t.exited)
	var seen *teamJob
	for polls := 0; !t.stop.Load(); polls++ {
		j := t.cur.Load()
		if j == seen {
			if polls%teamSpins == teamSpins-1 {
				runtime.Gosched()
				osYield()
			}
			continue
		}
		seen = j
		j.work(1)
	}
}

func (j *teamJob) work(worker int) {
	for {
		i := j.next.Add(1) - 1
		if i >= j.n {
			return
		}
		j.fn(worker, int(i))
		j.done.Add(1)
	}
}

// For calls fn(worker, i) for every i in [0,n), worker 0 being the caller
// and 1 the partner, and returns when all calls have returned.
func (t *Team) For(n int, fn func(worker, i int)) {
	if n <= 0 {
		return
	}
	j := &teamJob{fn: fn, n: int32(n)}
	t.cur.Store(j) // publishes fn and n to the partner
	j.work(0)
	for polls := 0; j.done.Load() < j.n; polls++ {
		// the partner is finishing an item
		if polls%teamSpins == teamSpins-1 {
			osYield()
		}
	}
}

// Close stops the partner and waits for it to exit.
func (t *Team) Close() {
	t.stop.Store(true)
	<-t.exited
}
