package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"fspo/store"
)

// newToken returns a bearer token: 32 random bytes, base64url, prefixed.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documentation, Go 1.24+)
	return "fspo_" + base64.RawURLEncoding.EncodeToString(b)
}

// newID returns a random identifier with a prefix ("u_…", "s_…").
func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// HashToken is how tokens are stored: SHA-256. The tokens are 256-bit random
// strings, so a fast unsalted hash suffices (no dictionary to attack).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) isAdmin(token string) bool {
	a := sha256.Sum256([]byte(token))
	b := sha256.Sum256([]byte(s.cfg.AdminToken))
	// Hashing first makes the comparison constant-time in the length too.
	return token != "" && subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

type userKey struct{}

// userFrom returns the authenticated user of a request handled by s.user.
func userFrom(ctx context.Context) store.User {
	u, _ := ctx.Value(userKey{}).(store.User)
	return u
}

func setLogUser(r *http.Request, id string) {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		info.user = id
	}
}

// lookupUser resolves a token to its user; ok is false for unknown tokens.
func (s *Server) lookupUser(ctx context.Context, token string) (store.User, bool, error) {
	if token == "" || len(token) > 200 {
		return store.User{}, false, nil
	}
	u, err := s.cfg.Store.UserByToken(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	if err != nil {
		return store.User{}, false, err
	}
	return u, true, nil
}

// user wraps an API handler that needs a user's bearer token; it applies the
// user's rate limit.
func (s *Server) user(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := s.lookupUser(r.Context(), bearer(r))
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if !ok {
			if bearer(r) != "" && !s.allowAttempt(w, r) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="fspo"`)
			writeError(w, http.StatusUnauthorized, "authentication_error", "missing or unknown bearer token (Authorization: Bearer TOKEN)")
			return
		}
		setLogUser(r, u.ID)
		if !s.allow(w, u.ID) {
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// admin wraps a handler that needs the admin token.
func (s *Server) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.isAdmin(bearer(r)) {
			if bearer(r) != "" && !s.allowAttempt(w, r) {
				return
			}
			writeError(w, http.StatusUnauthorized, "authentication_error", "this route needs the admin token (Authorization: Bearer ADMIN_TOKEN)")
			return
		}
		setLogUser(r, "admin")
		h(w, r)
	})
}

// allow applies the user's rate limit, answering 429 with Retry-After when exceeded.
func (s *Server) allow(w http.ResponseWriter, user string) bool {
	wait := s.limits.reserve(user)
	if wait == 0 {
		return true
	}
	retryAfter(w, wait)
	writeError(w, http.StatusTooManyRequests, "rate_limit_error", "rate limit exceeded; retry after "+wait.Round(time.Millisecond).String())
	return false
}

func retryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
}

// limiterKeys bounds a limiter's buckets: past it the full (idle) ones are
// dropped, or all of them when that frees less than half, so the scan costs
// O(1) per new key amortized.
const limiterKeys = 100_000

// limiter holds one token bucket per key — user id or client address —
// (golang.org/x/time/rate).
type limiter struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	now   func() time.Time
	users map[string]*rate.Limiter
}

func newLimiter(every rate.Limit, burst int, now func() time.Time) *limiter {
	return &limiter{every: every, burst: burst, now: now, users: map[string]*rate.Limiter{}}
}

// reserve takes a token for user and returns 0, or how long until one is
// available (then nothing is taken).
func (l *limiter) reserve(user string) time.Duration {
	l.mu.Lock()
	lim, ok := l.users[user]
	if !ok && len(l.users) >= limiterKeys {
		now := l.now()
		for k, b := range l.users {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.users, k) // full again: forgetting it changes nothing
			}
		}
		if len(l.users) > limiterKeys/2 {
			// mostly busy buckets (many addresses at once): start afresh
			// rather than scan again at the next new key
			clear(l.users)
		}
	}
	if !ok {
		lim = rate.NewLimiter(l.every, l.burst)
		l.users[user] = lim
	}
	l.mu.Unlock()
	now := l.now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Hour
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}
