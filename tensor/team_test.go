package tensor

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestTeamForCoversEveryItemOnce(t *testing.T) {
	tm := NewTeam()
	defer tm.Close()
	for _, n := range []int{0, 1, 2, 4, 7, 100} {
		for rep := 0; rep < 200; rep++ {
			hits := make([]atomic.Int32, n)
			var bad atomic.Bool
			tm.For(n, func(worker, i int) {
				if worker != 0 && worker != 1 {
					bad.Store(true)
				}
				hits[i].Add(1)
			})
			if bad.Load() {
				t.Fatalf("n=%d: worker outside {0,1}", n)
			}
			for i := range hits {
				if got := hits[i].Load(); got != 1 {
					t.Fatalf("n=%d rep %d: item %d ran %d times, want 1", n, rep, i, got)
				}
			}
		}
	}
}

// TestTeamGoesSoloAfterStalls: a partner that holds items long makes the
// caller run the following jobs alone, all items still done once. The
// caller's item waits (up to 50 ms) for the partner to claim the other, and
// the partner's item then lasts 80 ms: longer than the caller's share, so
// every item the partner claims is a stall however late it claims it (a
// timer started with the job, 20 ms, made late claims no stalls on a busy
// machine, and the test failed in a full run).
func TestTeamGoesSoloAfterStalls(t *testing.T) {
	tm := NewTeam()
	defer tm.Close()
	var partnerItems atomic.Int32
	for job := 0; job < 10 && tm.solo == 0; job++ {
		claimed := partnerItems.Load()
		tm.For(2, func(worker, i int) {
			if worker == 1 {
				partnerItems.Add(1)
				time.Sleep(80 * time.Millisecond)
				return
			}
			for start := time.Now(); partnerItems.Load() == claimed && time.Since(start) < 50*time.Millisecond; {
			}
		})
	}
	if partnerItems.Load() < teamStalls {
		t.Skipf("the partner ran %d items of 10 jobs (machine too busy)", partnerItems.Load())
	}
	if tm.solo == 0 {
		t.Fatalf("after %d slow partner items the team is not solo", partnerItems.Load())
	}
	before := partnerItems.Load()
	for job := 0; job < 10; job++ {
		tm.For(3, func(worker, i int) {
			if worker != 0 {
				partnerItems.Add(1)
			}
		})
	}
	if partnerItems.Load() != before {
		t.Fatalf("solo team gave %d items to the partner", partnerItems.Load()-before)
	}
}
