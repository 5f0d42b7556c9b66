package torch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"fspo/atomicfile"
	"fspo/hf"
	"fspo/model"
	"fspo/train"
)

// Options are the launch's settings.
type Options struct {
	NProc  int    // processes (ranks) on this machine; default 1
	Python string // an interpreter that imports torch; "" tries python3, then /usr/bin/python3
	Stage  StageOptions
	// Log receives the trainer's messages, each line prefixed with its rank.
	Log io.Writer
	// Progress, when set, is called after each trained step.
	Progress func(step, total int64, loss float64)
}

// Train stages r, runs trainer.py on opt.NProc processes and writes the
// trained model to r.Dir as the Go engine would (model.fspo with its run
// card, metrics.jsonl); the trainer's Hugging Face folder stays in
// r.Dir/torch/out. An interrupted run resumes from the trainer's last
// checkpoint (every checkpoint_every steps).
func Train(ctx context.Context, r *train.Run, opt Options) error {
	if opt.NProc < 1 {
		opt.NProc = 1
	}
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	done, err := finished(filepath.Join(r.Dir, Dir))
	if err != nil {
		return err
	}
	var python, version string
	if !done { // find Python before the staging, which may take long
		if python, version, err = FindPython(ctx, opt.Python); err != nil {
			return err
		}
	}
	dir, err := Stage(ctx, r, opt.Stage)
	if err != nil {
		return err
	}
	if done {
		fmt.Fprintf(opt.Log, "torch engine: %s already holds the trained model (every step in its metrics)\n", filepath.Join(dir, OutDir))
	} else {
		fmt.Fprintf(opt.Log, "torch engine: %s with PyTorch %s, %d process(es), stage in %s\n", python, version, opt.NProc, dir)
		if err := run(ctx, python, dir, opt); err != nil {
			return err
		}
	}
	m, _, err := hf.Load(filepath.Join(dir, OutDir))
	if err != nil {
		return fmt.Errorf("torch engine: the trainer's model: %w", err)
	}
	if want := r.Model.Config; !reflect.DeepEqual(m.Config, want) && !(want.Arch == "" && reflect.DeepEqual(withArch(want, m.Config.Arch), m.Config)) {
		return fmt.Errorf("torch engine: the trainer's model has the shape %+v, not the initial model's %+v", m.Config, want)
	}
	m.Config = r.Model.Config // a llama2.c model stays one
	if err := atomicfile.Copy(filepath.Join(dir, "metrics.jsonl"), filepath.Join(r.Dir, train.MetricsFile)); err != nil {
		return fmt.Errorf("torch engine: %w", err)
	}
	return r.SaveTrained(m, "torch")
}

// finished reports whether dir's trainer completed: the output folder is in
// place (it is renamed there last) and the metrics reach the plan's last step.
func finished(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, OutDir, "config.json")); err != nil {
		return false, nil
	}
	p, err := ReadPlan(dir)
	if err != nil {
		return false, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return false, nil
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var last struct{ Step int64 }
	if json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil {
		return false, nil
	}
	return last.Step == p.Steps, nil
}

func withArch(c model.Config, arch string) model.Config {
	c.Arch = arch
	return c
}

// FindPython returns an interpreter that imports torch, and torch's version.
func FindPython(ctx context.Context, python string) (path, version string, err error) {
	cands := []string{python}
	if python == "" {
		cands = []string{"python3", "/usr/bin/python3"}
	}
	var tried []string
	for _, c := range cands {
		out, err := exec.CommandContext(ctx, c, "-c", "import torch; print(torch.__version__)").CombinedOutput()
		if err == nil {
			return c, strings.TrimSpace(string(out)), nil
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		why := err.Error()
		if len(out) > 0 {
			why = lines[len(lines)-1]
		}
		tried = append(tried, fmt.Sprintf("%s: %s", c, why))
	}
	return "", "", fmt.Errorf("torch engine: no Python that imports torch (tried %s); install PyTorch (Debian: apt-get install python3-torch) or give --python", strings.Join(tried, "; "))
}

// run starts the ranks with torchrun's worker environment and waits for all;
// when one fails the others are stopped and its last lines are the error.
func run(ctx context.Context, python, dir string, opt Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	threads := max(1, runtime.NumCPU()/opt.NProc)
	errs := make([]error, opt.NProc)
	var wg sync.WaitGroup
	var logMu sync.Mutex
	for rank := range opt.NProc {
		cmd := exec.CommandContext(ctx, python, "-u", filepath.Join(dir, TrainerFile), "--stage-dir", dir)
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(rank), "LOCAL_RANK="+strconv.Itoa(rank),
			"WORLD_SIZE="+strconv.Itoa(opt.NProc), "LOCAL_WORLD_SIZE="+strconv.Itoa(opt.NProc),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "OMP_NUM_THREADS="+strconv.Itoa(threads))
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 20 * time.Second // a rank stuck in a collective is killed
		stdout, _ := cmd.StdoutPipe()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("torch engine: start rank %d: %w", rank, err)
		}
		tail := &lastLines{n: 12}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); readProgress(stdout, opt.Progress) }()
			go func() {
				defer inner.Done()
				sc := bufio.NewScanner(stderr)
				sc.Buffer(make([]byte, 64<<10), 1<<20)
				for sc.Scan() {
					tail.add(sc.Text())
					logMu.Lock()
					fmt.Fprintf(opt.Log, "torch rank %d: %s\n", rank, sc.Text())
					logMu.Unlock()
				}
			}()
			inner.Wait()
			if err := cmd.Wait(); err != nil && ctx.Err() == nil {
				errs[rank] = fmt.Errorf("torch engine: rank %d failed (%w): %s\n%s", rank, err, tail.last(), tail.String())
				cancel() // one rank down: the others would wait for it forever
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// readProgress reads rank 0's {"progress","of","loss"} lines.
func readProgress(r io.Reader, progress func(step, total int64, loss float64)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var p struct {
			Progress, Of int64
			Loss         float64
		}
		if json.Unmarshal(sc.Bytes(), &p) == nil && p.Of > 0 && progress != nil {
			progress(p.Progress, p.Of, p.Loss)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("torch engine: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines keeps the last n lines written.
type lastLines struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > l.n {
		l.lines = l.lines[1:]
	}
}

func (l *lastLines) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "no output"
	}
	return l.lines[len(l.lines)-1]
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
