package recipe

import (
	"slices"
	"sort"
	"sync"

	"fspo/llm"
)

// accounting counts calls, tokens and cost by stage and keeps the failures.
type accounting struct {
	mu       sync.Mutex
	stages   map[string]*StageCount
	failures []Failure
	skipped  []Failure
}

// StageCount is one stage's calls of a run (cached ones included).
type StageCount struct {
	Calls  int `json:"calls"`
	Cached int `json:"cached"`
	Failed int `json:"failed"`
	llm.Usage
}

// add adds o's counts to t.
func (t *StageCount) add(o StageCount) {
	t.Calls += o.Calls
	t.Cached += o.Cached
	t.Failed += o.Failed
	t.Usage.Add(o.Usage)
}

// Failure is one call that finally failed (or one item skipped because a
// call it needed failed).
type Failure struct {
	Stage string `json:"stage"`
	Item  string `json:"item"`
	Kind  string `json:"kind"`
	Error string `json:"error"`
}

func newAccounting() *accounting { return &accounting{stages: map[string]*StageCount{}} }

func (a *accounting) stage(name string) *StageCount {
	s := a.stages[name]
	if s == nil {
		s = &StageCount{}
		a.stages[name] = s
	}
	return s
}

func (a *accounting) ok(stage string, r llm.Response) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stage(stage)
	s.Calls++
	if r.Cached {
		s.Cached++
	}
	s.Usage.Add(r.Usage())
}

func (a *accounting) fail(stage, item, kind string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stage(stage)
	s.Calls++
	s.Failed++
	a.failures = append(a.failures, Failure{Stage: stage, Item: item, Kind: kind, Error: err.Error()})
}

func (a *accounting) skip(stage, item, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.skipped = append(a.skipped, Failure{Stage: stage, Item: item, Kind: "skipped", Error: why})
}

// drop forgets the counts and failures of stages that are about to be run again.
func (a *accounting) drop(stages ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range stages {
		delete(a.stages, st)
		a.failures = slices.DeleteFunc(a.failures, func(f Failure) bool { return f.Stage == st })
		a.skipped = slices.DeleteFunc(a.skipped, func(f Failure) bool { return f.Stage == st })
	}
}

func (a *accounting) lastError(stage string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.failures) - 1; i >= 0; i-- {
		if a.failures[i].Stage == stage {
			return a.failures[i].Error
		}
	}
	return "no calls"
}

// Calls is the accounting part of a report.
type Calls struct {
	Stages map[string]StageCount `json:"stages"`
	Calls  int                   `json:"calls"`
	Cached int                   `json:"cached"`
	llm.Usage
	// FailedCalls counts the calls that finally failed (after the client's
	// retries); Failures lists them, sorted by stage and item.
	FailedCalls int       `json:"failed_calls"`
	Failures    []Failure `json:"failures"`
	Skipped     []Failure `json:"skipped"`
}

func (a *accounting) snapshot() Calls {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := Calls{Stages: map[string]StageCount{}}
	var tot StageCount
	for name, s := range a.stages {
		c.Stages[name] = *s
		tot.add(*s)
	}
	c.Calls, c.Cached, c.FailedCalls = tot.Calls, tot.Cached, tot.Failed
	c.Usage = tot.Usage
	c.Failures = sortedFailures(a.failures)
	c.Skipped = sortedFailures(a.skipped)
	return c
}

func sortedFailures(in []Failure) []Failure {
	out := append([]Failure{}, in...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Stage != out[j].Stage {
			return out[i].Stage < out[j].Stage
		}
		return out[i].Item < out[j].Item
	})
	return out
}
