package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"fspo/internal/testenv"
	"fspo/store"
	"fspo/store/storetest"
)

// testURL returns the server to test against; CI's .ci/services.sh sets it.
// Without one the test skips, or fails under CI.
func testURL(t *testing.T) string {
	return testenv.Postgres(t)
}

// freshSchema creates an empty schema and returns a URL whose connections use it.
func freshSchema(t *testing.T, base string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "fspo_test_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", base, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect for cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestConformance(t *testing.T) {
	base := testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), freshSchema(t, base))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestConcurrentOpenMigratesOnce opens one database from several "instances"
// at once: the advisory lock must let exactly one apply the migrations.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	u := freshSchema(t, testURL(t))
	ctx := context.Background()
	var wg sync.WaitGroup
	stores := make([]*store.SQL, 4)
	errs := make([]error, 4)
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, u+"&pool_max_conns=2") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	storetest.MustUser(t, stores[0], "alice")
	if _, err := stores[3].UserByToken(ctx, storetestHash("token-alice")); err != nil {
		t.Errorf("instance 3 does not see the user instance 0 made: %v", err)
	}
	v, err := stores[1].SchemaVersion(ctx)
	if want := store.Migrations[len(store.Migrations)-1].Version; err != nil || v != want {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, want)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"postgres://x/y?pool_max_conns=0", "postgres://x/y?pool_max_conns=abc", "://bad"} {
		if _, err := Open(ctx, u); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

func storetestHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
