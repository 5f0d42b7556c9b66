package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"fspo/dataset"
	"fspo/elicit"
	"fspo/episode"
	"fspo/fewshot"
	"fspo/fileio"
	"fspo/model"
	"fspo/runcard"
	"fspo/serve"
	"fspo/store"
	"fspo/store/postgres"
	"fspo/store/sqlite"
	"fspo/tensor"
)

func init() {
	register(&command{name: "serve", summary: "personalization server: OpenAI-compatible API, preferences, web app and studies", run: runServe})
}

// openStore opens --db: sqlite:PATH or postgres://… (postgresql:// too).
func openStore(ctx context.Context, db string) (store.Store, error) {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "//"))
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	}
	return nil, fmt.Errorf("%w: fspo serve: --db %q: want sqlite:PATH or postgres://USER@HOST/DB", errUsage, db)
}

// labelling reads the questions offered for labelling and the committee
// that chooses the pairs.
func labelling(cfg *serve.Config, questions, elicitFrom string, maxChars int) (err error) {
	if cfg.Questions, err = readQuestions(questions, maxChars); err != nil {
		return err
	}
	cfg.Committee, err = readCommittee(elicitFrom, cfg.Shots)
	return err
}

// readCommittee reads the plausible users of active elicitation from a
// data folder (its manifest's training users, else every user) or a
// preferences file: elicit.DefaultMembers users' contexts of shots pairs.
func readCommittee(path string, shots int) ([][]serve.Shot, error) {
	if path == "" {
		return nil, nil
	}
	file, users := path, []string(nil)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		file = filepath.Join(path, dataset.FileName)
		if man, err := dataset.ReadManifest(path); err == nil {
			users = man.TrainUsers
		}
	}
	recs, err := dataset.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("fspo serve: --elicit-from: %w", err)
	}
	byUser := dataset.GroupByUser(recs)
	if users != nil {
		train := map[string][]dataset.Record{}
		for _, u := range users {
			train[u] = byUser[u]
		}
		byUser = train
	}
	var out [][]serve.Shot
	for _, c := range elicit.Contexts(byUser, elicit.DefaultMembers, shots, 1) {
		member := make([]serve.Shot, len(c))
		for k, r := range c {
			member[k] = serve.Shot{Prompt: r.Prompt, Chosen: r.Chosen, Rejected: r.Rejected}
		}
		out = append(out, member)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("fspo serve: --elicit-from %s: no user has %d labelled pairs", path, shots+1)
	}
	return out, nil
}

// readQuestions reads one question per line (blank lines and # comments
// skipped); none for an empty path.
func readQuestions(path string, maxChars int) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	var qs []string
	err := fileio.Lines(path, func(_ int, text []byte) error {
		q := strings.TrimSpace(string(text))
		if q == "" || strings.HasPrefix(q, "#") {
			return nil
		}
		if n := len([]rune(q)); n > maxChars {
			return fmt.Errorf("%d characters; the limit is %d", n, maxChars)
		}
		qs = append(qs, q)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read questions: %w", err)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("questions %s: no questions", path)
	}
	return qs, nil
}

// checkServeFlags reports the first usage error of the admin token, --db
// and --strategy, before any model is loaded.
func checkServeFlags(admin, db, strategy string) error {
	if len(admin) < 16 {
		return fmt.Errorf("%w: fspo serve: set FSPO_ADMIN_TOKEN to a secret of at least 16 characters (e.g. openssl rand -hex 32)", errUsage)
	}
	if db == "" {
		return fmt.Errorf("%w: fspo serve: --db is required (sqlite:fspo.db for one server)", errUsage)
	}
	if !strings.HasPrefix(db, "sqlite:") && !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		return fmt.Errorf("%w: fspo serve: --db %q: want sqlite:PATH or postgres://USER@HOST/DB", errUsage, db)
	}
	switch strategy {
	case "recent", "random", "all-fit":
	default:
		return fmt.Errorf("%w: fspo serve: unknown shot strategy %q (want recent, random or all-fit)", errUsage, strategy)
	}
	return nil
}

// defaultServeShots is the shots of a model without a run card (fspo
// train's default).
const defaultServeShots = 4

// engineLoader loads the models of fspo serve with the prompt of their run
// cards, checked against the prompt flags given.
type engineLoader struct {
	env     *Env
	given   runcard.Prompt // the flags set (zero: unset)
	force   bool           // --force-prompt
	rawBase bool
	batch   int
	prefix  int          // --prefix-cache-mb
	dtype   string       // --dtype
	kv      tensor.DType // --kv-cache

	ctx context.Context // the batchers' lifetime
}

// flags registers the flags that say how ld loads and runs the models.
func (ld *engineLoader) flags(fs *flag.FlagSet) {
	fs.IntVar(&ld.batch, "batch", 16, "generations of concurrent requests batched per forward pass (0: each alone)")
	fs.IntVar(&ld.prefix, "prefix-cache-mb", 256, "memory for the KV caches of recent prompts, per model (LRU): a user's next question reuses their few-shot context's (0: off; needs --batch)")
	fs.StringVar(&ld.dtype, "dtype", "auto", dtypeHelp)
	kvCacheFlag(fs, &ld.kv)
}

// load loads one engine and returns the prompt it serves with.
func (ld engineLoader) load(name, path string) (*serve.ModelEngine, runcard.Prompt, error) {
	lm, err := loadLMAs(ld.env, path, ld.dtype)
	if err != nil {
		return nil, runcard.Prompt{}, err
	}
	m := lm.Model
	m.SetKVCache(ld.kv) // f32 or f16, checked by the flag
	p, err := servePrompt(ld.env, lm.Paths.Checkpoint, ld.given, ld.force)
	if err != nil {
		return nil, p, err
	}
	v, _ := episode.ParseVariant(p.Variant)
	lay, _ := episode.ParseLayout(p.Layout)
	e := &serve.ModelEngine{Label: name, Model: m, RawBase: ld.rawBase, Codec: lm.codec(fewshot.Codec{Variant: v, Layout: lay})}
	e.Ref, e.Beta, e.Loss = ld.reference(name, lm.Paths.Checkpoint)
	if ld.batch > 0 {
		e.Batcher = serve.NewBatcher(m, ld.batch)
		if ld.prefix > 0 {
			e.Batcher.Prefix = serve.NewPrefixCache(int64(ld.prefix) << 20)
		}
		go e.Batcher.Run(ld.ctx)
	}
	return e, p, nil
}

// reference loads the reference model of a preference-trained run (its run
// card's initial model) and the objective's β, with which the engine ranks
// answers by the user's implicit reward (/api/rank, best_of). Without one
// (no card, another stage or objective, a missing file: said on stderr),
// the engine does not rank.
func (ld engineLoader) reference(name, file string) (*model.Model, float64, string) {
	card, err := runcard.Load(file)
	if err != nil || card == nil || card.Train.Stage != "pref" || card.Init.Path == "" {
		return nil, 0, ""
	}
	if l := card.Train.Loss; l != "ipo" && l != "dpo" && l != "cdpo" {
		fmt.Fprintf(ld.env.Stderr, "fspo serve: %s: no ranking (objective %s has no summed implicit reward)\n", name, l)
		return nil, 0, ""
	}
	ref, err := loadLMAs(ld.env, card.Init.Path, ld.dtype)
	if err != nil {
		fmt.Fprintf(ld.env.Stderr, "fspo serve: %s: no ranking: reference model: %v\n", name, err)
		return nil, 0, ""
	}
	ref.Model.SetKVCache(ld.kv)
	return ref.Model, card.Train.Beta, card.Train.Loss
}

// servePrompt is the prompt to serve the model file with: its run card's,
// checked against the flags given (a contradiction is a usage error naming
// both values; with force, a warning), the defaults without a card.
func servePrompt(env *Env, file string, given runcard.Prompt, force bool) (runcard.Prompt, error) {
	card, err := runcard.Load(file)
	if err != nil {
		return given, err
	}
	warn := func(w string) { fmt.Fprintf(env.Stderr, "fspo serve: %s\n", w) }
	p, err := card.Reconcile(file, given, force, warn)
	if err != nil {
		return p, fmt.Errorf("%w: fspo serve: %v", errUsage, err)
	}
	if p.Variant == "" {
		p.Variant = string(episode.Plain)
	}
	if p.Layout == "" {
		p.Layout = "compact"
	}
	if p.Shots == 0 {
		p.Shots = defaultServeShots
	}
	v, err := episode.ParseVariant(p.Variant)
	if err != nil || v == episode.ZeroShot || v == episode.Oracle {
		return p, fmt.Errorf("%w: fspo serve: --variant %q (given or from the run card of %s): want plain, cot or preferred-only", errUsage, p.Variant, file)
	}
	if _, err := episode.ParseLayout(p.Layout); err != nil {
		return p, fmt.Errorf("%w: fspo serve: layout of %s: %v", errUsage, file, err)
	}
	return p, nil
}

func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "serve", "--db sqlite:PATH|postgres://… [--addr HOST:PORT] [--model M] [flags]   (admin token in $FSPO_ADMIN_TOKEN)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	modelFlag := fs.String("model", "", "checkpoint file, model folder or name (default stories260K)")
	db := fs.String("db", "", "store: sqlite:PATH (one server) or postgres://USER@HOST/DB (several servers)")
	var given runcard.Prompt
	fs.StringVar(&given.Variant, "variant", "", "the template the model was trained with: plain, cot or preferred-only (default: the model's run card, else plain; another value is an error)")
	fs.StringVar(&given.Layout, "layout", "", "the template layout: compact or paper (default: the model's run card, else compact)")
	force := fs.Bool("force-prompt", false, "use --variant/--layout/--shots even where they contradict a run card (with a warning)")
	rawBase := fs.Bool("raw-base", false, `non-personalized answers continue the question text itself (the untrained stories model's use) instead of the zero-shot template`)
	engines := map[string]string{}
	fs.Func("engine", "a further model for studies, NAME=PATH (repeatable)", func(v string) error {
		name, path, err := parseEngine(v)
		engines[name] = path
		return err
	})
	fs.IntVar(&given.Shots, "shots", 0, fmt.Sprintf("preferences used as shots by the recent and random strategies (default: the model's run card, else %d)", defaultServeShots))
	strategy := fs.String("strategy", "recent", "shot selection: recent, random or all-fit")
	budget := fs.Int("shot-budget", 6000, "bytes of shots the all-fit strategy may use")
	maxTokens := fs.Int("max-tokens", 256, "largest max_tokens of a completion (and the default)")
	maxChars := fs.Int("max-chars", 4000, "longest question, prompt or answer text, in characters")
	rps := fs.Float64("rate", 10, "requests per second per user")
	burst := fs.Int("burst", 20, "burst of requests per user")
	questions := fs.String("questions", "", "file of questions offered for labelling, one per line")
	elicitFrom := fs.String("elicit-from", "", "data folder (or preferences.jsonl) whose users' labelled pairs stand for plausible users when choosing pairs to label (active elicitation; needs a ranking model)")
	ld := engineLoader{env: env}
	ld.flags(fs)
	grace := fs.Duration("grace", 15*time.Second, "how long running requests may finish at shutdown")
	secureCookies := fs.Bool("secure-cookies", false, "mark cookies Secure and send HSTS (behind a TLS-terminating proxy)")
	var proxies []netip.Prefix
	fs.Func("trusted-proxy", "address or CIDR of a proxy whose X-Forwarded-Proto: https and X-Forwarded-For are believed (repeatable)", func(v string) error {
		p, err := parsePrefix(v)
		proxies = append(proxies, p)
		return err
	})
	bodyTimeout := fs.Duration("body-timeout", 30*time.Second, "how long a request body may take to arrive (then 408)")
	attempts := fs.Float64("attempt-rate", 1, "sign-ins and failed token checks per second per client address (burst 10)")
	var backend backendFlags
	backend.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	admin := env.Getenv("FSPO_ADMIN_TOKEN")
	if err := checkServeFlags(admin, *db, *strategy); err != nil {
		return err
	}

	// The batchers stop after the server has finished its requests.
	bctx, stopBatchers := context.WithCancel(context.Background())
	defer stopBatchers()
	ld.given, ld.force, ld.rawBase, ld.ctx = given, *force, *rawBase, bctx
	more, err := ld.loadMore(engines)
	if err != nil {
		return err
	}
	eng, prompt, what, err := ld.mainEngine(backend, *modelFlag)
	if err != nil {
		return err
	}

	cfg := serve.Config{Engine: eng, Engines: more, AdminToken: admin, Shots: prompt.Shots, Strategy: *strategy, ShotBudget: *budget,
		MaxTokens: *maxTokens, MaxTextChars: *maxChars, RateLimit: perSecond(*rps), RateBurst: *burst,
		AttemptLimit: perSecond(*attempts), BodyTimeout: *bodyTimeout, SecureCookies: *secureCookies, TrustedProxies: proxies,
		Logger: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	if err := labelling(&cfg, *questions, *elicitFrom, *maxChars); err != nil {
		return err
	}
	st, err := openStore(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg.Store = st
	s, err := serve.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: fspo serve: %v", errUsage, err)
	}
	return listenAndServe(ctx, env, s, *addr, *grace, fmt.Sprintf("%s, store %s", what, strings.SplitN(*db, ":", 2)[0]))
}

// parseEngine reads an --engine value, NAME=PATH.
func parseEngine(v string) (name, path string, err error) {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" || strings.Contains(name, ":") {
		return "", "", fmt.Errorf("want NAME=PATH with a NAME without ':', got %q", v)
	}
	return name, path, nil
}

// parsePrefix reads an IP address (a one-address prefix) or a CIDR.
func parsePrefix(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("want an IP address or CIDR, got %q", v)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// perSecond is a rate flag's limit: none for 0 or less.
func perSecond(r float64) rate.Limit {
	if r <= 0 {
		return rate.Inf
	}
	return rate.Limit(r)
}

// mainEngine is the engine named fspo: the backend's when --backend is
// given, else the --model's. It returns the prompt it serves with and a
// phrase saying what it is.
func (ld engineLoader) mainEngine(backend backendFlags, modelFlag string) (serve.Engine, runcard.Prompt, string, error) {
	if backend.url != "" {
		be, prompt, err := backend.engine(ld.env, modelFlag, ld.given, ld.force)
		return be, prompt, fmt.Sprintf("backend %s (model %s)", backend.url, backend.model), err
	}
	me, prompt, err := ld.load("fspo", modelFlag)
	if err != nil {
		return nil, prompt, "", err
	}
	return me, prompt, fmt.Sprintf("model with %d parameters", me.Model.Config.NumParams()), nil
}

// loadMore loads the further --engine models (the name fspo is the main
// engine's).
func (ld engineLoader) loadMore(engines map[string]string) (map[string]serve.Engine, error) {
	if _, dup := engines["fspo"]; dup {
		return nil, fmt.Errorf("%w: fspo serve: --engine fspo=…: the name fspo is the main engine's", errUsage)
	}
	more := map[string]serve.Engine{}
	for name, path := range engines {
		var err error
		if more[name], _, err = ld.load(name, path); err != nil {
			return nil, fmt.Errorf("--engine %s: %w", name, err)
		}
	}
	return more, nil
}

// listenAndServe serves s on addr until ctx ends, then lets running
// requests finish for grace.
func listenAndServe(ctx context.Context, env *Env, s *serve.Server, addr string, grace time.Duration, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("fspo serve: listen on %s: %w", addr, err)
	}
	fmt.Fprintf(env.Stdout, "fspo serve: listening on http://%s (%s)\n", ln.Addr(), what)
	if err := s.Serve(ctx, ln, grace); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "fspo serve: stopped")
	return nil
}
