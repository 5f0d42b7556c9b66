package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fspo/store"
	"fspo/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "fspo.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dir with space", "fspo.db")
	if _, err := Open(ctx, path); err == nil {
		t.Fatalf("Open in a missing directory succeeded, want an error")
	}
	path = filepath.Join(t.TempDir(), "fspo db ✓.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustUser(t, s, "alice")
	if _, err := s.AddPreference(ctx, store.Preference{User: "alice", Prompt: "p", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if want := store.Migrations[len(store.Migrations)-1].Version; err != nil || v != want {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
	if n, err := s.CountPreferences(ctx, "alice", ""); err != nil || n != 1 {
		t.Errorf("after reopen: %d preferences, %v; want 1", n, err)
	}
	// WAL mode keeps a -wal file beside the database while it is open.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log beside the database: %v", err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer program is not
// opened (its schema may not match these queries).
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fspo.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "schema version 999 is newer") {
		t.Errorf("Open of a newer schema: %v, want a 'newer' error", err)
	}
}

func TestIsWrite(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"INSERT INTO x VALUES (1) RETURNING id", true},
		{"  delete from x", true},
		{"SELECT 1", false},
		{"\n\tUPDATE x SET a = 1", true},
		{"WITH a AS (SELECT 1) SELECT * FROM a", false},
	} {
		if got := isWrite(tc.q); got != tc.want {
			t.Errorf("isWrite(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
}
