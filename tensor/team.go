package tensor

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Team is the caller plus one partner goroutine that spins waiting for
// work, for splitting jobs of a few microseconds (the attention of one
// decoded token) where waking a parked helper (ParallelFor) costs more than
// it saves. Items are claimed through an atomic counter, so the caller does
// every item the partner has not started. The partner holds a thread while
// the team lives; Close it when the burst of jobs is over.
//
// On a machine with more runnable threads than cores the partner is
// sometimes preempted holding an item, and the caller waits for it, often
// for a whole time slice of the other process (milliseconds, the time of
// dozens of tokens). After teamStalls waits longer than teamStallTime
// within teamWindow jobs the team goes solo: the caller runs the jobs of
// the next teamSoloTime alone and the partner parks, then the pair is
// tried again; a pair that stalls again within a window of coming back
// stays solo twice as long the next time (up to teamSoloMax).
type Team struct {
	cur    atomic.Pointer[teamJob]
	stop   atomic.Bool
	parked atomic.Bool
	wake   chan struct{}
	exited chan struct{}

	// caller's side only
	jobs, stalls int
	soloUntil    time.Time     // zero while paired
	soloFor      time.Duration // the next solo period
	sinceSolo    int           // jobs since the last solo period ended
}

type teamJob struct {
	fn   func(worker, i int)
	n    int32
	next atomic.Int32
	done atomic.Int32
}

const (
	// teamSpins is how many empty polls a spinning thread makes between
	// yields of its processor (about 10 µs), so that a preempted partner
	// can get the core of the caller waiting for it.
	teamSpins = 1 << 12
	// teamPark is how many empty polls the partner makes before parking.
	teamPark = 64 * teamSpins
	// teamStalls: a decoded token splits ~240 products of a few tens of
	// microseconds over the team; on this shared 2-core machine one wait
	// past teamStallTime in 256 jobs is ordinary noise, and going solo on the
	// first one kept 2-thread decoding of a 180M model at 1-thread speed
	// (60 vs 80 tok/s measured).
	teamStalls = 8
	// teamStallTime is how long the caller waits for the partner before it
	// counts a stall: longer than an interrupt or a brief imbalance between
	// the halves of a large product (waits of 60–600 µs, a few in every
	// 1,000 jobs of a 1B model, measured here), shorter than the time slice
	// of another process (0.75 ms or more). At 50 µs those imbalances sent
	// a 1B model's two-thread decoding solo within its first tokens.
	teamStallTime = 700 * time.Microsecond
	teamWindow    = 256
	// teamSoloTime is the first solo period, teamSoloMax the longest. A
	// period in jobs (it was 16,384) is half a second of a 180M model's
	// decoding but 20 s of a 1B model's, whose token has fewer, longer jobs.
	teamSoloTime = 250 * time.Millisecond
	teamSoloMax  = 4 * time.Second
)

// NewTeam starts the partner goroutine.
func NewTeam() *Team {
	t := &Team{wake: make(chan struct{}, 1), exited: make(chan struct{})}
	go t.partner()
	return t
}

func (t *Team) partner() {
	defer close(t.exited)
	var seen *teamJob
	for polls := 0; !t.stop.Load(); polls++ {
		j := t.cur.Load()
		if j != seen {
			seen = j
			j.work(1)
			polls = 0
			continue
		}
		switch {
		case polls >= teamPark:
			t.parked.Store(true)
			<-t.wake
			t.parked.Store(false)
			polls = 0
		case polls%teamSpins == teamSpins-1:
			runtime.Gosched()
			osYield()
		}
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
// and 1 the partner, and returns when all calls have returned. For is
// called from one goroutine at a time.
func (t *Team) For(n int, fn func(worker, i int)) {
	if n <= 0 {
		return
	}
	if t.solo() {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	if !t.soloUntil.IsZero() { // the solo period is over
		t.soloUntil, t.sinceSolo = time.Time{}, 0
	}
	if t.parked.Load() {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	j := &teamJob{fn: fn, n: int32(n)}
	t.cur.Store(j) // publishes fn and n to the partner
	start := time.Now()
	j.work(0)
	// A stall is a wait for the partner longer than teamStallTime and than
	// the caller's own share took: a partner holding a long item (half of a
	// 1B model's matrix, ~0.5 ms) is working, not preempted.
	limit := max(teamStallTime, time.Since(start))
	stalled := false
	var t0 time.Time
	for polls := 0; j.done.Load() < j.n; polls++ {
		// the partner is finishing an item
		if polls%teamSpins == teamSpins-1 {
			if t0.IsZero() {
				t0 = time.Now()
			} else if time.Since(t0) > limit {
				stalled = true
			}
			osYield()
		}
	}
	// t.cur keeps j until the next job; its function, and what that
	// captures, need not live as long (every call of it has returned).
	j.fn = nil
	if stalled {
		t.stalls++
	}
	if t.jobs++; t.jobs == teamWindow {
		t.jobs = 0
		t.stalls = 0
	}
	t.sinceSolo++
	if t.stalls >= teamStalls {
		t.goSolo()
	}
}

// goSolo starts a solo period: the first, or one twice as long as the last
// when the pair stalled again within a window of coming back.
func (t *Team) goSolo() {
	switch {
	case t.soloFor == 0 || t.sinceSolo > teamWindow:
		t.soloFor = teamSoloTime
	default:
		t.soloFor = min(2*t.soloFor, teamSoloMax)
	}
	t.soloUntil = time.Now().Add(t.soloFor)
	t.stalls, t.jobs = 0, 0
}

// solo reports whether the team is in a solo period.
func (t *Team) solo() bool { return !t.soloUntil.IsZero() && time.Now().Before(t.soloUntil) }

// Close stops the partner and waits for it to exit.
func (t *Team) Close() {
	t.stop.Store(true)
	select {
	case t.wake <- struct{}{}:
	default:
	}
	<-t.exited
}
