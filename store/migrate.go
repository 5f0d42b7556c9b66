package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Migration is one versioned schema change. Its statements are portable SQL
// in which {{serial}} (an auto-increment integer primary key) and {{blob}}
// (a byte string) are replaced by the dialect's types.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations are applied in order, each in its own transaction, when a store
// is opened; the applied versions are recorded in schema_migrations. Never
// edit a released migration: append a new one.
var Migrations = []Migration{
	{1, "users, preferences, studies, votes", []string{
		`CREATE TABLE users (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			token_hash {{blob}} NOT NULL UNIQUE,
			created BIGINT NOT NULL)`,
		`CREATE TABLE preferences (
			id {{serial}},
			user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			prompt TEXT NOT NULL,
			chosen TEXT NOT NULL,
			rejected TEXT NOT NULL,
			source TEXT NOT NULL,
			created BIGINT NOT NULL)`,
		`CREATE INDEX preferences_user ON preferences (user_id, id)`,
		`CREATE TABLE studies (
			id TEXT PRIMARY KEY,
			name TEXT NOT NULL,
			questions TEXT NOT NULL,
			label_questions TEXT NOT NULL,
			pairs INTEGER NOT NULL,
			system_a TEXT NOT NULL,
			system_b TEXT NOT NULL,
			created BIGINT NOT NULL)`,
		`CREATE TABLE votes (
			study_id TEXT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
			user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			question INTEGER NOT NULL,
			left_system TEXT NOT NULL,
			winner TEXT NOT NULL,
			created BIGINT NOT NULL,
			PRIMARY KEY (study_id, user_id, question))`,
	}},
	{2, "preference idempotency keys", []string{
		// NULL for rows stored without a key: NULLs never collide in a unique index.
		`ALTER TABLE preferences ADD COLUMN idempotency_key TEXT`,
		`CREATE UNIQUE INDEX preferences_idempotency ON preferences (user_id, idempotency_key)`,
	}},
	{3, "web sessions", []string{
		// user_id is '' for the admin's sessions
		`CREATE TABLE sessions (
			id_hash {{blob}} PRIMARY KEY,
			user_id TEXT NOT NULL,
			admin INTEGER NOT NULL,
			expires BIGINT NOT NULL)`,
		`CREATE INDEX sessions_user ON sessions (user_id)`,
	}},
	{4, "shot counts of voted answers", []string{
		`ALTER TABLE votes ADD COLUMN left_shots INTEGER NOT NULL DEFAULT -1`,
		`ALTER TABLE votes ADD COLUMN left_out INTEGER NOT NULL DEFAULT -1`,
		`ALTER TABLE votes ADD COLUMN right_shots INTEGER NOT NULL DEFAULT -1`,
		`ALTER TABLE votes ADD COLUMN right_out INTEGER NOT NULL DEFAULT -1`,
	}},
	{5, "user descriptions", []string{
		// NULL: the user wrote none (a COT model then states its own guess)
		`ALTER TABLE users ADD COLUMN description TEXT`,
	}},
}

// Dialect is what differs between SQL backends.
type Dialect struct {
	Name string
	// Types maps the migrations' {{name}} placeholders to SQL types.
	Types map[string]string
	// IsConflict reports whether err is a unique-constraint violation.
	IsConflict func(error) bool
	// MigrationLock, when set, is run first in the migration transaction so
	// that several processes opening one database migrate it once.
	MigrationLock string
}

func (d Dialect) expand(stmt string) (string, error) {
	for k, v := range d.Types {
		stmt = strings.ReplaceAll(stmt, "{{"+k+"}}", v)
	}
	if i := strings.Index(stmt, "{{"); i >= 0 {
		return "", fmt.Errorf("dialect %s has no type for %s", d.Name, stmt[i:min(len(stmt), i+20)])
	}
	return stmt, nil
}

// migrate brings the schema to the newest version.
func migrate(ctx context.Context, c Conn, d Dialect) error {
	return c.Tx(ctx, func(tx Conn) error {
		if d.MigrationLock != "" {
			if _, err := tx.Exec(ctx, d.MigrationLock); err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := queryRow(ctx, tx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`, nil, &current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		latest := Migrations[len(Migrations)-1].Version
		if current > latest {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d); upgrade fspo", current, latest)
		}
		for _, m := range Migrations {
			if m.Version <= current {
				continue
			}
			for i, s := range m.Statements {
				stmt, err := d.expand(s)
				if err != nil {
					return fmt.Errorf("migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
				}
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d (%s) statement %d: %w", m.Version, m.Name, i+1, err)
				}
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UnixMicro()); err != nil {
				return fmt.Errorf("record migration %d: %w", m.Version, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the newest applied migration.
func (s *SQL) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := queryRow(ctx, s.c, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`, nil, &v)
	return v, err
}
