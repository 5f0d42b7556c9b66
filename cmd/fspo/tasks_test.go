package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"fspo/tensor"
)

// TestRunTasks: two workers run independent chains at once, a task waits
// for its predecessor, the kernel threads are shared out while two run and
// given back after, and the first error cancels the other running task.
func TestRunTasks(t *testing.T) {
	defer tensor.SetThreads(0)
	tensor.SetThreads(2)
	var mu sync.Mutex
	var events []string
	maxRunning, running := 0, 0
	threads := map[string]int{}
	task := func(name, after string, d time.Duration) trainTask {
		return trainTask{name: name, after: after, run: func(ctx context.Context, env *Env) error {
			mu.Lock()
			running++
			maxRunning = max(maxRunning, running)
			events = append(events, "start "+name)
			mu.Unlock()
			time.Sleep(d)
			mu.Lock()
			threads[name] = tensor.Threads()
			running--
			events = append(events, "end "+name)
			mu.Unlock()
			env.Stderr.Write([]byte(name + " done\n"))
			return nil
		}}
	}
	var stderr bytes.Buffer
	env := &Env{Stderr: &stderr}
	tasks := []trainTask{task("a1", "", 50*time.Millisecond), task("b1", "", 10*time.Millisecond),
		task("a2", "a1", 10*time.Millisecond), task("b2", "b1", 300*time.Millisecond), task("c", "", 10*time.Millisecond)}
	if err := runTasks(context.Background(), env, tasks, 2); err != nil {
		t.Fatal(err)
	}
	if maxRunning != 2 {
		t.Errorf("at most %d tasks ran at once, want 2", maxRunning)
	}
	idx := func(e string) int { return slices.Index(events, e) }
	for _, e := range []string{"a1", "b1", "a2", "b2", "c"} {
		if idx("end "+e) < 0 {
			t.Fatalf("task %s did not run: %v", e, events)
		}
	}
	if idx("start a2") < idx("end a1") || idx("start b2") < idx("end b1") {
		t.Errorf("a task started before its predecessor ended: %v", events)
	}
	if threads["a1"] != 1 {
		t.Errorf("a1 ran beside b1 with %d kernel threads, want 1 of 2", threads["a1"])
	}
	if threads["b2"] != 2 {
		t.Errorf("b2, alone at its end, had %d kernel threads, want 2", threads["b2"])
	}
	if tensor.Threads() != 2 {
		t.Errorf("threads after runTasks = %d, want 2 restored", tensor.Threads())
	}
	if got := stderr.String(); len(got) != len("a1 done\n")*4+len("c done\n") {
		t.Errorf("stderr %q: want five whole lines", got)
	}

	// The first error cancels the other running task; dependents never start.
	boom := errors.New("boom")
	var cancelled bool
	tasks = []trainTask{
		{name: "slow", run: func(ctx context.Context, env *Env) error {
			select {
			case <-ctx.Done():
				cancelled = true
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return nil
			}
		}},
		{name: "bad", run: func(ctx context.Context, env *Env) error { return boom }},
		{name: "after-bad", after: "bad", run: func(ctx context.Context, env *Env) error {
			t.Error("a task ran after its predecessor failed")
			return nil
		}},
	}
	if err := runTasks(context.Background(), env, tasks, 2); !errors.Is(err, boom) || !cancelled {
		t.Errorf("runTasks = %v (slow task cancelled: %v), want boom and the slow task cancelled", err, cancelled)
	}
}
