package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"

	"fspo/tensor"
)

// trainTask is one training of the demo. It starts once the task named
// after (if that is among the tasks run) has finished.
type trainTask struct {
	name, after string
	run         func(ctx context.Context, env *Env) error
}

// runTasks runs tasks on up to workers goroutines at once, starting each,
// in list order, as soon as a worker is free and its predecessor is done.
// The kernel threads are shared out: with k tasks running each gets
// Threads()/k (at least one), and a task left alone gets them all back.
// The first error cancels the running tasks (which stop at a checkpoint,
// so a rerun resumes them) and is returned. Their output goes to env.Stderr
// a line at a time; on a terminal their bars share one display.
func runTasks(ctx context.Context, env *Env, tasks []trainTask, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	budget := tensor.Threads()
	defer tensor.SetThreads(budget)
	share := func(running int) { tensor.SetThreads(max(1, budget/max(1, running))) }

	taskEnv := *env
	taskEnv.Stderr = &lineWriter{w: env.Stderr}
	if isTerminal(env.Stderr) {
		bars := mpb.New(mpb.WithOutput(env.Stderr), mpb.WithWidth(40))
		taskEnv.Stderr, taskEnv.bars = bars, bars
		defer bars.Wait()
	}

	names := map[string]bool{}
	for _, t := range tasks {
		names[t.name] = true
	}
	type result struct {
		i   int
		err error
	}
	results := make(chan result)
	started := make([]bool, len(tasks))
	done := map[string]bool{}
	running := 0
	var first error
	for {
		for i, t := range tasks {
			if first != nil || started[i] || running >= workers || (names[t.after] && !done[t.after]) {
				continue
			}
			started[i] = true
			running++
			share(running)
			go func() { results <- result{i, t.run(ctx, &taskEnv)} }()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		share(running)
		done[tasks[r.i].name] = true
		if r.err != nil && first == nil {
			first = r.err
			cancel()
		}
	}
	if first != nil {
		return first
	}
	for i, t := range tasks {
		if !started[i] {
			return fmt.Errorf("demo: training %s never started: it waits for %s, which never finishes", t.name, t.after)
		}
	}
	return nil
}

// lineWriter serializes writes from concurrent tasks, so lines do not mix.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
