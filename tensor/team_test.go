package tensor

import (
	"sync/atomic"
	"testing"
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
