package tensor

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"
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
	for job := 0; job < 10 && !tm.solo(); job++ {
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
	if !tm.solo() {
		t.Fatalf("after %d slow partner items the team is not solo", partnerItems.Load())
	}
	tm.soloUntil = time.Now().Add(time.Hour) // a slow machine must not end the period before the jobs
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

// TestTeamSoloPeriods: a solo period is a time, not a count of jobs; when it
// ends the partner takes items again, and a pair that stalls again right
// after coming back stays solo twice as long (up to teamSoloMax), while one
// that ran a window of jobs first starts over from teamSoloTime.
func TestTeamSoloPeriods(t *testing.T) {
	tm := NewTeam()
	defer tm.Close()
	tm.goSolo()
	if !tm.solo() || tm.soloFor != teamSoloTime {
		t.Fatalf("first solo period: solo=%v for %v, want true for %v", tm.solo(), tm.soloFor, teamSoloTime)
	}
	tm.soloUntil = time.Now().Add(time.Hour) // a slow machine must not end the period before the job
	var partner atomic.Int32
	tm.For(4, func(worker, i int) {
		if worker != 0 {
			partner.Add(1)
		}
	})
	if partner.Load() != 0 {
		t.Fatalf("solo team gave %d items to the partner", partner.Load())
	}
	tm.soloUntil = time.Now().Add(-time.Millisecond) // the period is over
	claimed := false
	for job := 0; job < 20 && !claimed; job++ {
		tm.For(2, func(worker, i int) {
			if worker == 1 {
				partner.Add(1)
				return
			}
			for start := time.Now(); partner.Load() == 0 && time.Since(start) < 100*time.Millisecond; {
			}
		})
		claimed = partner.Load() > 0
	}
	if !claimed || tm.solo() {
		t.Fatalf("after the solo period the partner claimed no item in 20 jobs (solo=%v)", tm.solo())
	}
	want := teamSoloTime
	for range 6 {
		tm.goSolo() // stalled again right after coming back
		want = min(2*want, teamSoloMax)
		if tm.soloFor != want {
			t.Fatalf("solo again soon after: %v, want %v", tm.soloFor, want)
		}
		tm.soloUntil, tm.sinceSolo = time.Time{}, 0
	}
	tm.sinceSolo = teamWindow + 1 // a window of paired jobs without stalls
	tm.goSolo()
	if tm.soloFor != teamSoloTime {
		t.Fatalf("solo after a calm window: %v, want %v", tm.soloFor, teamSoloTime)
	}
}

// TestTeamReleasesItsFunction: after For returns, the team's last job does
// not keep what its function captured alive.
func TestTeamReleasesItsFunction(t *testing.T) {
	team := NewTeam()
	defer team.Close()
	w := func() weak.Pointer[float32] { // data is reachable only through the function
		data := make([]float32, 1<<16)
		var sum atomic.Int64
		team.For(64, func(_, i int) { sum.Add(int64(data[i*1024])) })
		return weak.Make(&data[0])
	}()
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("the data a finished team job's function captured is still reachable")
	}
}
