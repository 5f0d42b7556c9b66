package serve_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"fspo/internal/testenv"
	"fspo/serve"
	"fspo/serve/servetest"
	"fspo/store/postgres"
)

// TestTwoInstancesSharePostgres runs two servers on one PostgreSQL
// database: what one acknowledges, the other serves.
func TestTwoInstancesSharePostgres(t *testing.T) {
	dsn := pgSchema(t)
	ctx := context.Background()
	var urls []string
	for range 2 {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		s, err := serve.New(serve.Config{Store: st, Engine: servetest.New("fake"), AdminToken: adminToken})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s)
		t.Cleanup(func() { srv.Close(); st.Close() })
		urls = append(urls, srv.URL)
	}
	one := &env{t: t, base: urls[0], hc: http.DefaultClient}
	two := &env{t: t, base: urls[1], hc: http.DefaultClient}
	_, tok := one.user("alice")
	id := one.pref(tok, "q", "shared across instances", "b")
	code, body, _ := two.do("GET", "/api/preferences", tok, nil)
	if code != 200 || !strings.Contains(string(body), "shared across instances") {
		t.Errorf("instance two lists %d %s, want the preference made on instance one", code, body)
	}
	if code, _, _ := two.do("DELETE", "/api/preferences/"+strconv.FormatInt(id, 10), tok, nil); code != 204 {
		t.Errorf("delete on instance two = %d", code)
	}
	if _, body, _ := one.do("GET", "/api/preferences", tok, nil); strings.Contains(string(body), "shared across") {
		t.Errorf("instance one still lists the deleted preference: %s", body)
	}
}

// pgSchema returns the URL of a fresh schema on the test PostgreSQL server
// (dropped at the end of the test).
func pgSchema(t *testing.T) string {
	base := testenv.Postgres(t)
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fspo_serve_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		c.Close(ctx)
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// newPGEnv is newEnv over a fresh PostgreSQL schema.
func newPGEnv(t *testing.T, configure func(*serve.Config)) *env {
	st, err := postgres.Open(context.Background(), pgSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, st, configure)
}

// onBothStores runs fn on a server over SQLite and on one over PostgreSQL.
func onBothStores(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t, nil)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newPGEnv(t, nil)) })
}
