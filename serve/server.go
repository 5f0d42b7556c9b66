package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"fspo/store"
)

// Config is everything the server needs; zero fields take the defaults below.
type Config struct {
	Store store.Store
	// Engine is the default model; systems "fspo" and "base" use it.
	Engine Engine
	// Engines are further models by name, for studies comparing engines.
	Engines map[string]Engine
	// AdminToken guards user and study creation; required.
	AdminToken string

	// Shots is how many preferences the "recent" and "random" strategies use
	// (default 8, the paper's recommended N; METHOD.md §2).
	Shots int
	// Strategy picks the shots: "recent" (default), "random" or "all-fit".
	Strategy string
	// ShotBudget is the byte budget of "all-fit" (default 6000).
	ShotBudget int

	// MaxBodyBytes bounds request bodies (default 1 MiB) → 413.
	MaxBodyBytes int64
	// MaxTextChars bounds each question, prompt and answer text (default 4000 characters) → 400.
	MaxTextChars int
	// MaxTokens bounds max_tokens of a completion (default 512) and is the default.
	MaxTokens int
	// MaxPreferences bounds the preferences one user may store (default 10000).
	MaxPreferences int

	// RateLimit and RateBurst are each user's token bucket (default 10/s, burst 20) → 429.
	RateLimit rate.Limit
	RateBurst int

	// AttemptLimit and AttemptBurst are each client address's bucket for
	// sign-ins and failed token checks (default 1/s, burst 10) → 429.
	AttemptLimit rate.Limit
	AttemptBurst int
	// BodyTimeout bounds how long a request body may take to arrive (default
	// 30 s) → 408; the headers are bounded by ReadHeaderTimeout (10 s).
	BodyTimeout time.Duration

	// SecureCookies marks cookies Secure and sends HSTS on pages: set it
	// behind a TLS-terminating proxy. TrustedProxies are the addresses whose
	// X-Forwarded-Proto: https has the same effect for a request, and whose
	// X-Forwarded-For names the client for the per-address limits.
	SecureCookies  bool
	TrustedProxies []netip.Prefix

	// Questions are offered on the labelling page.
	Questions []string
	// Committee holds plausible users' few-shot contexts (other users'
	// labelled pairs): with a ranking engine, the pairs to label are chosen
	// by how much their answer tells about the user among them (elicit).
	Committee [][]Shot
	// Logger receives one line per request (never tokens or bodies).
	Logger *slog.Logger
	// Now is the clock (tests replace it).
	Now func() time.Time
}

func (c *Config) defaults() error {
	if c.Store == nil || c.Engine == nil {
		return errors.New("serve: Config needs a Store and an Engine")
	}
	if len(c.AdminToken) < 16 {
		return errors.New("serve: the admin token must be at least 16 characters (set FSPO_ADMIN_TOKEN)")
	}
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.Shots, 8)
	setInt(&c.ShotBudget, 6000)
	setInt(&c.MaxTextChars, 4000)
	setInt(&c.MaxTokens, 512)
	setInt(&c.MaxPreferences, 10000)
	setInt(&c.RateBurst, 20)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.RateLimit == 0 {
		c.RateLimit = 10
	}
	setInt(&c.AttemptBurst, 10)
	if c.AttemptLimit == 0 {
		c.AttemptLimit = 1
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = 30 * time.Second
	}
	if c.Strategy == "" {
		c.Strategy = "recent"
	}
	if _, ok := strategies[c.Strategy]; !ok {
		return fmt.Errorf("serve: unknown shot strategy %q (want recent, random or all-fit)", c.Strategy)
	}
	if c.Shots < 0 || c.ShotBudget < 0 || c.MaxTextChars < 0 || c.MaxTokens < 0 {
		return errors.New("serve: negative limit in Config")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Committee) > maxCommittee {
		return fmt.Errorf("serve: a committee of %d users; at most %d", len(c.Committee), maxCommittee)
	}
	if c.Questions == nil {
		c.Questions = DefaultQuestions
	}
	return nil
}

// DefaultQuestions are offered for labelling when the configuration has
// none: story openings, as the default stories model continues them.
var DefaultQuestions = []string{
	"Once upon a time, there was a cat",
	"One day, Tom went to the park.",
	"Lily found a big red ball.",
	"It was a sunny day at the beach.",
}

// Server handles the API and the web pages.
type Server struct {
	cfg     Config
	engines map[string]Engine
	limits  *limiter
	// attempts limits sign-ins and failed token checks per client address.
	attempts *limiter
	bodies   bodies
	pairs    pairBook
	// labelProbs remembers the committee's ratings of users' labels.
	labelProbs probCache
	mux        *http.ServeMux
	pages      *pages
}

// New checks cfg and builds the server.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, engines: map[string]Engine{}, mux: http.NewServeMux()}
	for name, e := range cfg.Engines {
		s.engines[name] = e
	}
	s.engines[cfg.Engine.Name()] = cfg.Engine
	s.limits = newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now)
	s.attempts = newLimiter(cfg.AttemptLimit, cfg.AttemptBurst, cfg.Now)
	var err error
	if s.pages, err = loadPages(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("POST /api/users", s.admin(s.createUser))
	m.Handle("POST /api/preferences", s.user(s.addPreference))
	m.Handle("GET /api/preferences", s.user(s.listPreferences))
	m.Handle("DELETE /api/preferences/{id}", s.user(s.deletePreference))
	m.Handle("GET /api/me/description", s.user(s.describeMe))
	m.Handle("PUT /api/me/description", s.user(s.setDescription))
	m.Handle("POST /api/me/token", s.user(s.rotateToken))
	m.Handle("DELETE /api/me", s.user(s.deleteMe))
	m.Handle("DELETE /api/users/{id}", s.admin(s.deleteUser))
	m.Handle("POST /v1/chat/completions", s.user(s.chatCompletions))
	m.Handle("POST /v1/completions", s.user(s.completions))
	m.Handle("GET /v1/models", s.user(s.models))
	m.Handle("POST /api/rank", s.user(s.rank))
	m.Handle("GET /api/next-pair", s.user(s.apiNextPair))
	m.Handle("POST /api/studies", s.admin(s.apiCreateStudy))
	m.Handle("GET /api/studies/{id}/results", s.admin(s.apiStudyResults))
	m.Handle("GET /api/studies/{id}/results.csv", s.admin(s.studyCSV))
	s.webRoutes()
}

// ServeHTTP implements http.Handler: requests are logged (method, path,
// status, duration, user id; never headers, tokens or bodies).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	info := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
	defer s.bodies.watch(w, r, s.cfg.BodyTimeout)()
	s.mux.ServeHTTP(rec, r)
	s.cfg.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"bytes", rec.bytes, "ms", s.cfg.Now().Sub(start).Milliseconds(), "user", info.user)
}

type infoKey struct{}

// reqInfo carries what the handlers learn about a request back to the log line.
type reqInfo struct{ user string }

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "engine": s.cfg.Engine.Name()})
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, lets running requests (streams included) finish for up to
// grace, then closes what is left.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(s.bodies.expire)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
		err = fmt.Errorf("shutdown: requests still running after %v were cut off", grace)
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
