package llm

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Cache is the SQLite call cache: responses keyed by Key, embeddings keyed
// by model and text, and the calls that finally failed. The database runs in
// WAL mode; each response is committed before Cached returns it, so a
// process killed right after loses nothing it acknowledged (with
// synchronous=NORMAL a WAL commit survives a process crash, though not
// necessarily a power loss; sqlite.org/wal.html). Safe for concurrent use.
type Cache struct {
	db   *sql.DB
	get  *sql.Stmt // prepared: lookups dominate a resumed run
	path string
	mu   sync.Mutex // serialises writers (SQLite has one writer at a time)
	hits atomic.Int64
	miss atomic.Int64
	// flight joins concurrent misses of one key into one call.
	flight singleflight.Group
}

const cacheSchema = `
CREATE TABLE IF NOT EXISTS calls (
	key      TEXT PRIMARY KEY,
	stage    TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	model    TEXT NOT NULL,
	response TEXT NOT NULL,
	created  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
	key      TEXT PRIMARY KEY,
	stage    TEXT NOT NULL,
	endpoint TEXT NOT NULL,
	kind     TEXT NOT NULL,
	error    TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	created  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
	key    TEXT PRIMARY KEY,
	vector BLOB NOT NULL
);`

// NewCache opens (creating if needed) the cache database at path.
func NewCache(path string) (*Cache, error) {
	if path == "" {
		return nil, errors.New("open llm cache: empty path")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)&_pragma=mmap_size(268435456)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open llm cache %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if _, err := db.Exec(cacheSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open llm cache %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("open llm cache %s: journal mode %q, want wal (%v)", path, mode, err)
	}
	get, err := db.Prepare("SELECT response FROM calls WHERE key = ?")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open llm cache %s: %w", path, err)
	}
	return &Cache{db: db, get: get, path: path}, nil
}

// Close closes the database.
func (c *Cache) Close() error {
	c.get.Close()
	return c.db.Close()
}

// Get returns the cached response under key (Cached set) and whether it was found.
func (c *Cache) Get(ctx context.Context, key string) (Response, bool, error) {
	var text string
	err := c.get.QueryRowContext(ctx, key).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return Response{}, false, nil
	}
	if err != nil {
		return Response{}, false, fmt.Errorf("llm cache %s: read %s: %w", c.path, key, err)
	}
	var r Response
	if err := json.Unmarshal([]byte(text), &r); err != nil {
		return Response{}, false, fmt.Errorf("llm cache %s: entry %s: %w", c.path, key, err)
	}
	r.Cached = true
	return r, true, nil
}

// Put stores r under key (replacing an entry) and clears a recorded failure of that key.
func (c *Cache) Put(ctx context.Context, key, stage string, r Response) error {
	r.Cached = false
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("llm cache %s: encode %s: %w", c.path, key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("llm cache %s: write %s: %w", c.path, key, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO calls(key, stage, endpoint, model, response, created) VALUES(?,?,?,?,?,?)",
		key, stage, r.Endpoint, r.Model, string(b), time.Now().Unix()); err != nil {
		return fmt.Errorf("llm cache %s: write %s: %w", c.path, key, err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM failures WHERE key = ?", key); err != nil {
		return fmt.Errorf("llm cache %s: write %s: %w", c.path, key, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("llm cache %s: commit %s: %w", c.path, key, err)
	}
	return nil
}

// RecordFailure stores the final failure of a call; a later success under
// the same key removes it.
func (c *Cache) RecordFailure(ctx context.Context, key, stage, endpoint string, callErr error) error {
	kind, attempts := FailureKind(callErr), 1
	var ce *CallError
	if errors.As(callErr, &ce) {
		attempts = ce.Attempts
		if endpoint == "" {
			endpoint = ce.Endpoint
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.db.ExecContext(ctx, "INSERT OR REPLACE INTO failures(key, stage, endpoint, kind, error, attempts, created) VALUES(?,?,?,?,?,?,?)",
		key, stage, endpoint, kind, callErr.Error(), attempts, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("llm cache %s: record failure %s: %w", c.path, key, err)
	}
	return nil
}

// Failures counts the recorded failures by kind (across all runs that used this cache).
func (c *Cache) Failures(ctx context.Context) (map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT kind, COUNT(*) FROM failures GROUP BY kind")
	if err != nil {
		return nil, fmt.Errorf("llm cache %s: count failures: %w", c.path, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("llm cache %s: count failures: %w", c.path, err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// Len is the number of cached responses.
func (c *Cache) Len(ctx context.Context) (int, error) {
	var n int
	if err := c.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM calls").Scan(&n); err != nil {
		return 0, fmt.Errorf("llm cache %s: count: %w", c.path, err)
	}
	return n, nil
}

// Stats reports this session's cache hits (CachedHits); add it to the
// Ensemble's Stats for the whole picture.
func (c *Cache) Stats() Stats { return Stats{CachedHits: int(c.hits.Load())} }

// Misses is the number of lookups this session that had to call through.
func (c *Cache) Misses() int { return int(c.miss.Load()) }

func embedKey(model, text string) string {
	h := sha256.New()
	h.Write([]byte("embed\x00" + model + "\x00"))
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))
}

func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVector(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("vector of %d bytes is not float32s", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// EmbeddingModeler is implemented by clients that can name their embedding
// model, which then keys cached embeddings.
type EmbeddingModeler interface{ EmbeddingModel() string }

// EmbeddingModel names the model that serves Embed ("" when none).
func (e *Ensemble) EmbeddingModel() string {
	if e.embed == nil {
		return ""
	}
	return e.embed.name + "/" + e.embed.ep.EmbeddingModel
}

// Cached wraps c so that responses are read from cache when present and,
// when not, stored before being returned; final failures are recorded.
// When c is a Router, the key includes the resolved request and the member.
func Cached(c Client, cache *Cache) Client { return &cachedClient{inner: c, cache: cache} }

type cachedClient struct {
	inner Client
	cache *Cache
}

func (c *cachedClient) Complete(ctx context.Context, req Request) (Response, error) {
	key := Key(req, "", "")
	if r, ok := c.inner.(Router); ok {
		resolved, ep, model := r.Route(req)
		key = Key(resolved, ep, model)
	}
	if resp, ok, err := c.cache.Get(ctx, key); err != nil {
		return Response{}, err
	} else if ok {
		c.cache.hits.Add(1)
		return resp, nil
	}
	// Concurrent identical requests share one call: the first makes it, the
	// others get its response marked Cached (nothing is paid for twice).
	leader := false
	v, err, _ := c.cache.flight.Do(key, func() (any, error) {
		leader = true
		c.cache.miss.Add(1)
		resp, err := c.inner.Complete(ctx, req)
		if err != nil {
			if ctx.Err() == nil && FailureKind(err) != KindCanceled {
				if rerr := c.cache.RecordFailure(context.WithoutCancel(ctx), key, req.Stage, "", err); rerr != nil {
					return Response{}, errors.Join(err, rerr)
				}
			}
			return Response{}, err
		}
		if err := c.cache.Put(context.WithoutCancel(ctx), key, req.Stage, resp); err != nil {
			return Response{}, err
		}
		return resp, nil
	})
	if err != nil {
		return Response{}, err
	}
	resp := v.(Response)
	if !leader {
		c.cache.hits.Add(1)
		resp.Cached = true
		resp.Logprobs = append([]TokenLogprob(nil), resp.Logprobs...)
	}
	return resp, nil
}

func (c *cachedClient) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	model := ""
	if m, ok := c.inner.(EmbeddingModeler); ok {
		model = m.EmbeddingModel()
	}
	out := make([][]float32, len(texts))
	var missing []int
	for i, t := range texts {
		var b []byte
		err := c.cache.db.QueryRowContext(ctx, "SELECT vector FROM embeddings WHERE key = ?", embedKey(model, t)).Scan(&b)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			missing = append(missing, i)
		case err != nil:
			return nil, fmt.Errorf("llm cache %s: read embedding: %w", c.cache.path, err)
		default:
			v, err := decodeVector(b)
			if err != nil {
				return nil, fmt.Errorf("llm cache %s: embedding of text %d: %w", c.cache.path, i, err)
			}
			out[i] = v
		}
	}
	c.cache.hits.Add(int64(len(texts) - len(missing)))
	if len(missing) == 0 {
		return out, nil
	}
	c.cache.miss.Add(int64(len(missing)))
	sub := make([]string, len(missing))
	for j, i := range missing {
		sub[j] = texts[i]
	}
	vecs, err := c.inner.Embed(ctx, sub)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(sub) {
		return nil, fmt.Errorf("llm embed: got %d vectors for %d texts", len(vecs), len(sub))
	}
	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	tx, err := c.cache.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return nil, fmt.Errorf("llm cache %s: write embeddings: %w", c.cache.path, err)
	}
	defer tx.Rollback()
	for j, i := range missing {
		out[i] = vecs[j]
		if _, err := tx.Exec("INSERT OR REPLACE INTO embeddings(key, vector) VALUES(?, ?)", embedKey(model, texts[i]), encodeVector(vecs[j])); err != nil {
			return nil, fmt.Errorf("llm cache %s: write embedding: %w", c.cache.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("llm cache %s: commit embeddings: %w", c.cache.path, err)
	}
	return out, nil
}
