package llm

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Stats is the accounting of calls. The Ensemble fills everything but
// CachedHits; the Cache fills CachedHits and the failures it has recorded;
// Add combines them.
type Stats struct {
	Calls      int            `json:"calls"`       // calls answered by an endpoint
	CachedHits int            `json:"cached_hits"` // calls answered by the cache
	Failures   map[string]int `json:"failures"`    // calls that finally failed, by kind
	Retries    int            `json:"retries"`     // attempts after the first
	// Usage includes answers rejected and retried (schema violations,
	// empty choices): they were paid for.
	Usage
	LatencyP50 time.Duration `json:"latency_p50_ns"` // of the answering attempt
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	// Stages breaks calls, tokens and cost down by Request.Stage.
	Stages map[string]StageStats `json:"stages,omitempty"`
}

// StageStats is one stage's share of Stats.
type StageStats struct {
	Calls    int `json:"calls"`
	Failures int `json:"failures"`
	Usage
}

// Usage is what calls were charged: tokens, and their cost in the currency
// of the configured prices (per million tokens). Embedded in the accounting
// of calls (Stats, and its users elsewhere), whose JSON it shares.
type Usage struct {
	PromptTokens     int     `json:"prompt_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	Cost             float64 `json:"cost"`
}

// Add adds o to u.
func (u *Usage) Add(o Usage) {
	u.PromptTokens += o.PromptTokens
	u.CompletionTokens += o.CompletionTokens
	u.Cost += o.Cost
}

// FailureCount is the total of Failures.
func (s Stats) FailureCount() int {
	n := 0
	for _, v := range s.Failures {
		n += v
	}
	return n
}

// Add returns s with o's counts added (latency percentiles: s's unless zero).
func (s Stats) Add(o Stats) Stats {
	out := s
	out.Failures = maps.Clone(s.Failures)
	if out.Failures == nil {
		out.Failures = map[string]int{}
	}
	for k, v := range o.Failures {
		out.Failures[k] += v
	}
	out.Stages = maps.Clone(s.Stages)
	if out.Stages == nil {
		out.Stages = map[string]StageStats{}
	}
	for k, v := range o.Stages {
		st := out.Stages[k]
		st.Calls += v.Calls
		st.Failures += v.Failures
		st.Usage.Add(v.Usage)
		out.Stages[k] = st
	}
	out.Calls += o.Calls
	out.CachedHits += o.CachedHits
	out.Retries += o.Retries
	out.Usage.Add(o.Usage)
	if out.LatencyP50 == 0 {
		out.LatencyP50, out.LatencyP99 = o.LatencyP50, o.LatencyP99
	}
	return out
}

// accountant collects Stats under a mutex.
type accountant struct {
	mu        sync.Mutex
	s         Stats
	latencies []time.Duration
}

func newAccountant() *accountant {
	return &accountant{s: Stats{Failures: map[string]int{}, Stages: map[string]StageStats{}}}
}

func (a *accountant) success(stage string, r Response) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Calls++
	a.latencies = append(a.latencies, r.Latency)
	st := a.s.Stages[stage]
	st.Calls++
	a.s.Stages[stage] = st
	a.addUsage(stage, r.Usage())
}

func (a *accountant) charge(stage string, u Usage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.addUsage(stage, u)
}

func (a *accountant) addUsage(stage string, u Usage) {
	a.s.Usage.Add(u)
	st := a.s.Stages[stage]
	st.Usage.Add(u)
	a.s.Stages[stage] = st
}

func (a *accountant) failure(stage, kind string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.s.Failures[kind]++
	st := a.s.Stages[stage]
	st.Failures++
	a.s.Stages[stage] = st
}

func (a *accountant) retry() {
	a.mu.Lock()
	a.s.Retries++
	a.mu.Unlock()
}

func (a *accountant) snapshot() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.s
	s.Failures = maps.Clone(a.s.Failures)
	s.Stages = maps.Clone(a.s.Stages)
	if n := len(a.latencies); n > 0 {
		l := slices.Clone(a.latencies)
		slices.Sort(l)
		s.LatencyP50 = l[percentileIndex(n, 0.50)]
		s.LatencyP99 = l[percentileIndex(n, 0.99)]
	}
	return s
}

// percentileIndex is the nearest-rank index of quantile q in n sorted values.
func percentileIndex(n int, q float64) int {
	i := int(q*float64(n)+0.999999) - 1
	return min(max(i, 0), n-1)
}
