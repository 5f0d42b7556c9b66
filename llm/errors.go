package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/openai/openai-go/v3"
)

// Failure kinds, as recorded in Stats.Failures and in the cache.
const (
	KindRateLimit   = "rate_limit"   // HTTP 429
	KindServer      = "server"       // HTTP 5xx
	KindTimeout     = "timeout"      // the per-attempt timeout elapsed
	KindTruncated   = "truncated"    // the body ended early
	KindInvalidJSON = "invalid_json" // the body is not valid JSON
	KindSchema      = "schema"       // the content violates the requested schema
	KindEmpty       = "empty"        // no choices (or no embeddings) in the body
	KindNetwork     = "network"      // connection refused, reset ...
	KindClient      = "client"       // other HTTP 4xx: the request is wrong, not retried
	KindCanceled    = "canceled"     // the caller's context ended
	KindOther       = "other"
)

// CallError is the error of a call that finally failed: the kind of the last
// attempt's failure, the member and the number of attempts.
type CallError struct {
	Stage, Endpoint, Kind string
	Attempts              int
	Err                   error
	// Message is the error message of the server's last answer, if it sent
	// one (the API error's status line alone does not carry it).
	Message string
}

func newCallError(stage, endpoint, kind string, attempts int, err error) *CallError {
	ce := &CallError{Stage: stage, Endpoint: endpoint, Kind: kind, Attempts: attempts, Err: err}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		ce.Message = apiErr.Message
	}
	return ce
}

func (e *CallError) Error() string {
	msg := fmt.Sprintf("llm %s call to %s failed after %d attempt(s) (%s): %v", e.Stage, e.Endpoint, e.Attempts, e.Kind, e.Err)
	if e.Message != "" {
		msg += fmt.Sprintf(" (server: %q)", e.Message)
	}
	return msg
}

func (e *CallError) Unwrap() error { return e.Err }

// FailureKind returns the kind of a call's error: a CallError's Kind, or a
// classification of any other error.
func FailureKind(err error) string {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Kind
	}
	var ae *attemptError
	if errors.As(err, &ae) {
		return ae.kind
	}
	return classify(nil, err)
}

// attemptError is the failure of one attempt. It unwraps to the cause and,
// when the server asked for a wait, to a backoff.RetryAfterError so that
// backoff.Retry honours it.
type attemptError struct {
	kind       string
	err        error
	retryAfter time.Duration
}

func (e *attemptError) Error() string { return e.kind + ": " + e.err.Error() }

func (e *attemptError) Unwrap() []error {
	if e.retryAfter > 0 {
		return []error{e.err, &backoff.RetryAfterError{Duration: e.retryAfter}}
	}
	return []error{e.err}
}

func retryable(kind string) bool {
	switch kind {
	case KindClient, KindCanceled, KindOther:
		return false
	}
	return true
}

// classify names the kind of an attempt's error. parent is the caller's
// context: a deadline of the attempt's own timeout is a timeout, the caller's
// cancellation is not retried.
func classify(parent context.Context, err error) string {
	if parent != nil && parent.Err() != nil {
		return KindCanceled
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
			return KindRateLimit
		case apiErr.StatusCode >= 500:
			return KindServer
		case apiErr.StatusCode == http.StatusRequestTimeout:
			return KindTimeout
		default:
			return KindClient
		}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return KindTruncated
	case errors.As(err, &syn), errors.As(err, &typ):
		return KindInvalidJSON
	case errors.As(err, &netErr):
		if netErr.Timeout() {
			return KindTimeout
		}
		return KindNetwork
	case strings.Contains(err.Error(), "error parsing response json"):
		return KindInvalidJSON
	case strings.Contains(err.Error(), "connection reset"), strings.Contains(err.Error(), "connection refused"):
		return KindNetwork
	}
	return KindOther
}

// retryAfter reads Retry-After-Ms or Retry-After (seconds or an HTTP date)
// from a 429/5xx answer; 0 when absent.
func retryAfter(err error, now time.Time) time.Duration {
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.Response == nil {
		return 0
	}
	h := apiErr.Response.Header
	if ms := h.Get("Retry-After-Ms"); ms != "" {
		if v, err := strconv.ParseFloat(ms, 64); err == nil && v > 0 {
			return time.Duration(v * float64(time.Millisecond))
		}
	}
	ra := h.Get("Retry-After")
	if ra == "" {
		return 0
	}
	if v, err := strconv.ParseFloat(ra, 64); err == nil && v > 0 {
		return time.Duration(v * float64(time.Second))
	}
	if t, err := http.ParseTime(ra); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
