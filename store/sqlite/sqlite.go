// Package sqlite is the default store backend: one SQLite file
// (modernc.org/sqlite, pure Go) in WAL mode with a busy timeout, so one
// server process can read and write it from many goroutines.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"fspo/store"
)

// Dialect is SQLite's flavour of the shared migrations.
var Dialect = store.Dialect{
	Name: "sqlite",
	Types: map[string]string{
		"serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
		"blob":   "BLOB",
	},
	IsConflict: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// MaxConns bounds the open connections (readers run in parallel in WAL mode).
const MaxConns = 16

// BusyTimeoutMS is how long a writer waits for the database lock before failing.
const BusyTimeoutMS = 10000

// Open opens (creating when missing) the SQLite database at path and
// migrates it. Connections use WAL journaling, synchronous=FULL (a commit is
// on disk before it is acknowledged), foreign keys, a busy timeout and
// BEGIN IMMEDIATE transactions (writers queue on the lock instead of failing
// to upgrade a read lock).
func Open(ctx context.Context, path string) (*store.SQL, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path (use --db sqlite:PATH)")
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// Keep connections open: a new one re-runs the pragmas above, and the
	// default of two idle connections would churn under concurrent requests.
	db.SetMaxOpenConns(MaxConns)
	db.SetMaxIdleConns(MaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	s, err := store.Open(ctx, conn{db: db, wmu: new(sync.Mutex)}, Dialect, db.Close)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

// conn adapts database/sql to store.Conn; tx is set inside a transaction.
//
// SQLite has one writer at a time. Writers of this process queue on wmu
// instead of on the busy handler, whose sleep-and-retry polling gives long
// tail latencies under load; the busy timeout still covers other processes.
// Readers do not take wmu (WAL lets them run beside the writer).
type conn struct {
	db  *sql.DB
	tx  *sql.Tx
	wmu *sync.Mutex
}

// isWrite reports whether a statement writes (so Query of INSERT … RETURNING queues too).
func isWrite(query string) bool {
	q := strings.ToUpper(strings.TrimSpace(query))
	for _, p := range []string{"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"} {
		if strings.HasPrefix(q, p) {
			return true
		}
	}
	return false
}

type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (c conn) q() execQuerier {
	if c.tx != nil {
		return c.tx
	}
	return c.db
}

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if c.tx == nil {
		c.wmu.Lock()
		defer c.wmu.Unlock()
	}
	res, err := c.q().ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c conn) Query(ctx context.Context, query string, args ...any) (store.Rows, error) {
	locked := c.tx == nil && isWrite(query)
	if locked {
		c.wmu.Lock()
	}
	r, err := c.q().QueryContext(ctx, query, args...)
	if err != nil {
		if locked {
			c.wmu.Unlock()
		}
		return nil, err
	}
	var release func()
	if locked {
		release = c.wmu.Unlock
	}
	return store.ReleaseOnClose(rows{r}, release), nil
}

func (c conn) Tx(ctx context.Context, fn func(store.Conn) error) error {
	if c.tx != nil {
		return fn(c)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(conn{db: c.db, tx: tx, wmu: c.wmu}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rows is a result set of database/sql as a store.Rows.
type rows struct{ *sql.Rows }

func (r rows) Close() { r.Rows.Close() }
