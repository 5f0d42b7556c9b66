package llm

import "time"

// Stats is the accounting of calls.
type Stats struct {
	Calls            int            // calls that returned a response from an endpoint
	CachedHits       int            // calls answered by the cache
	Failures         map[string]int // calls that finally failed, by kind
	Retries          int            // retried attempts
	PromptTokens     int
	CompletionTokens int
	LatencyP50       time.Duration
	LatencyP99       time.Duration
	Cost             float64
}
