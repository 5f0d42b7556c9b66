package serve

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A request's body must arrive within Config.BodyTimeout of the handler's
// start (its headers within the http.Server's ReadHeaderTimeout): a client
// trickling bytes holds a connection for a bounded time, not forever. Once
// the body has arrived the deadline is lifted, so a long generation is not
// cut off. At shutdown the bodies still arriving are cut at once, so slow
// senders do not hold the grace period.

// bodyTimeoutError is a body read stopped by the deadline (or by shutdown).
type bodyTimeoutError struct {
	limit    time.Duration
	shutdown bool
}

func (e *bodyTimeoutError) Error() string {
	if e.shutdown {
		return "the server is shutting down; send the request again"
	}
	return fmt.Sprintf("the request body did not arrive within %v", e.limit)
}

// status is the HTTP status of the error: 503 at shutdown, else 408.
func (e *bodyTimeoutError) status() int {
	if e.shutdown {
		return http.StatusServiceUnavailable
	}
	return http.StatusRequestTimeout
}

// deadlineBody is a request body read under a deadline.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	limit    time.Duration
	done     atomic.Bool // the body has ended: the deadline is lifted
	shutdown atomic.Bool // the deadline was moved to now by shutdown
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.done.CompareAndSwap(false, true) {
		b.rc.SetReadDeadline(time.Time{})
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = &bodyTimeoutError{limit: b.limit, shutdown: b.shutdown.Load()}
		}
	}
	return n, err
}

// bodies are the request bodies still arriving.
type bodies struct {
	mu  sync.Mutex
	set map[*deadlineBody]struct{}
}

// watch puts r's body (if it has one) under the deadline; the returned
// function ends the watch.
func (bs *bodies) watch(w http.ResponseWriter, r *http.Request, limit time.Duration) func() {
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(limit)) != nil {
		return func() {} // a writer without deadlines (a test recorder)
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: rc, limit: limit}
	r.Body = b
	bs.mu.Lock()
	if bs.set == nil {
		bs.set = map[*deadlineBody]struct{}{}
	}
	bs.set[b] = struct{}{}
	bs.mu.Unlock()
	return func() {
		bs.mu.Lock()
		delete(bs.set, b)
		bs.mu.Unlock()
	}
}

// expire cuts every body still arriving (at shutdown).
func (bs *bodies) expire() {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for b := range bs.set {
		if !b.done.Load() {
			b.shutdown.Store(true)
			b.rc.SetReadDeadline(time.Now())
		}
	}
}

// bodyReadFailure answers a failed body read that was a timeout; it
// reports whether it did.
func bodyReadFailure(w http.ResponseWriter, err error) bool {
	var te *bodyTimeoutError
	if !errors.As(err, &te) {
		return false
	}
	w.Header().Set("Connection", "close")
	writeError(w, te.status(), "timeout_error", te.Error())
	return true
}

// clientIP is the address a request came from (the proxy's, behind one).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientAddr is the address the per-address limits count: the peer's; or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For address
// that is not a trusted proxy (the address the nearest untrusted hop
// connected from; entries left of it are the client's own claims). An entry
// that is not an address, or none, counts the proxy itself.
func (s *Server) clientAddr(r *http.Request) string {
	peer := clientIP(r)
	if !s.trustedProxy(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(hops[i]), "[]"))
		if err != nil {
			return peer
		}
		if a = a.Unmap(); !s.trustedProxy(a.String()) {
			return a.String()
		}
	}
	return peer
}

// trustedProxy reports whether addr is in one of the trusted proxy ranges.
func (s *Server) trustedProxy(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// allowAttempt takes one unauthenticated attempt (a sign-in or a failed
// token check) from the client address's bucket; when it is empty it
// answers 429 with Retry-After and returns false.
func (s *Server) allowAttempt(w http.ResponseWriter, r *http.Request) bool {
	wait := s.attempts.reserve(s.clientAddr(r))
	if wait == 0 {
		return true
	}
	retryAfter(w, wait)
	writeError(w, http.StatusTooManyRequests, "rate_limit_error", "too many sign-in or token attempts from this address; retry after "+wait.Round(time.Millisecond).String())
	return false
}
