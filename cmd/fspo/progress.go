package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress shows long work: a bar on a terminal, a log line every few
// seconds otherwise.
type progress struct {
	w       io.Writer
	label   string
	total   int64
	bar     *mpb.Bar
	p       *mpb.Progress
	last    time.Time
	started time.Time
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(env *Env, label string, total int64) *progress {
	pr := &progress{w: env.Stderr, label: label, total: total, started: time.Now()}
	display := env.bars
	if display == nil && isTerminal(env.Stderr) {
		pr.p = mpb.New(mpb.WithOutput(env.Stderr), mpb.WithWidth(40))
		display = pr.p
	}
	if display != nil {
		pr.bar = display.AddBar(total,
			mpb.PrependDecorators(decor.Name(label+" "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.EwmaETA(decor.ET_STYLE_GO, 30)))
	}
	return pr
}

// set reports that done of total units are finished; note is shown in log lines.
func (pr *progress) set(done int64, note string) {
	if pr.bar != nil {
		pr.bar.SetCurrent(done)
		return
	}
	if time.Since(pr.last) < 5*time.Second && done < pr.total {
		return
	}
	pr.last = time.Now()
	fmt.Fprintf(pr.w, "%s %d/%d (%.0f%%) %s elapsed %s\n", pr.label, done, pr.total, 100*float64(done)/float64(max(pr.total, 1)), note, time.Since(pr.started).Round(time.Second))
}

func (pr *progress) done() {
	if pr.bar != nil {
		pr.bar.SetTotal(-1, true)
	}
	if pr.p != nil {
		pr.p.Wait()
	}
}
