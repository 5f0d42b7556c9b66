// Package storetest is the conformance suite every store backend runs: the
// same assertions against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"fspo/store"
)

// Run runs the suite. open returns a new, empty, migrated store each call
// (a fresh file or schema); the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Users", testUsers},
		{"Preferences", testPreferences},
		{"PreferenceIsolation", testIsolation},
		{"Studies", testStudies},
		{"Votes", testVotes},
		{"ConcurrentWrites", testConcurrentWrites},
		{"TextValidation", testTextValidation},
		{"Pages", testPages},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"TokenRotationAndUserDeletion", testRotateAndDelete},
		{"Sessions", testSessions},
		{"Descriptions", testDescriptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// MustUser creates a user whose token is "token-"+id.
func MustUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	u := store.User{ID: id, Name: "name of " + id}
	if err := s.CreateUser(context.Background(), u, hash("token-"+id)); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	got, err := s.UserByToken(ctx, hash("token-bob"))
	if err != nil {
		t.Fatalf("UserByToken(bob): %v", err)
	}
	if got.ID != "bob" || got.Name != "name of bob" || got.Created.IsZero() {
		t.Errorf("UserByToken(bob) = %+v, want id bob, name, creation time", got)
	}
	if _, err := s.UserByToken(ctx, hash("token-carol")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByToken(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.CreateUser(ctx, store.User{ID: "alice"}, hash("other")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUser(duplicate id) error = %v, want ErrConflict", err)
	}
	if err := s.CreateUser(ctx, store.User{ID: "dave"}, hash("token-alice")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUser(duplicate token) error = %v, want ErrConflict", err)
	}
}

func addPrefs(t *testing.T, s store.Store, user, source string, n int) []store.Preference {
	t.Helper()
	var out []store.Preference
	for i := range n {
		p, err := s.AddPreference(context.Background(), store.Preference{
			User: user, Prompt: fmt.Sprintf("%s q%d", user, i), Chosen: "good 'quoted' \"text\"; DROP TABLE users; --",
			Rejected: "bad ✓", Source: source,
		})
		if err != nil {
			t.Fatalf("AddPreference(%s #%d): %v", user, i, err)
		}
		if p.ID == 0 || p.Created.IsZero() {
			t.Fatalf("AddPreference returned %+v, want id and creation time set", p)
		}
		out = append(out, p)
	}
	return out
}

// aliceAndBob creates the users alice and bob with n and m preferences and
// returns alice's.
func aliceAndBob(t *testing.T, s store.Store, n, m int) []store.Preference {
	t.Helper()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	a := addPrefs(t, s, "alice", "api", n)
	addPrefs(t, s, "bob", "api", m)
	return a
}

func prompts(ps []store.Preference) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Prompt)
	}
	return out
}

func testPreferences(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	added := addPrefs(t, s, "alice", "api", 5)
	addPrefs(t, s, "alice", "study:s1", 2)

	all, err := s.Preferences(ctx, "alice", store.PrefQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alice q0", "alice q1", "alice q2", "alice q3", "alice q4", "alice q0", "alice q1"}
	if got := prompts(all); !reflect.DeepEqual(got, want) {
		t.Errorf("Preferences(all) prompts = %q, want %q (oldest first)", got, want)
	}
	if !reflect.DeepEqual(all[0], added[0]) {
		t.Errorf("stored preference = %+v, want as returned by AddPreference %+v", all[0], added[0])
	}
	last, err := s.Preferences(ctx, "alice", store.PrefQuery{Source: "api", Last: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prompts(last), []string{"alice q3", "alice q4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Preferences(api, last 2) = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		source string
		want   int
	}{{"", 7}, {"api", 5}, {"study:s1", 2}, {"web", 0}} {
		got, err := s.CountPreferences(ctx, "alice", tc.source)
		if err != nil || got != tc.want {
			t.Errorf("CountPreferences(%q) = %d, %v; want %d", tc.source, got, err, tc.want)
		}
	}
	if err := s.DeletePreference(ctx, "alice", added[1].ID); err != nil {
		t.Fatalf("DeletePreference(own): %v", err)
	}
	if err := s.DeletePreference(ctx, "alice", added[1].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeletePreference(already deleted) error = %v, want ErrNotFound", err)
	}
	if n, _ := s.CountPreferences(ctx, "alice", ""); n != 6 {
		t.Errorf("count after delete = %d, want 6", n)
	}
	if _, err := s.AddPreference(ctx, store.Preference{User: "nobody", Prompt: "x", Source: "api"}); err == nil {
		t.Errorf("AddPreference(unknown user) succeeded, want a foreign-key error")
	}
}

func testIsolation(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := aliceAndBob(t, s, 2, 3)
	if err := s.DeletePreference(ctx, "bob", a[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob deleting alice's preference: error = %v, want ErrNotFound", err)
	}
	got, err := s.Preferences(ctx, "bob", store.PrefQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.User != "bob" {
			t.Errorf("bob's list holds %+v", p)
		}
	}
	if len(got) != 3 {
		t.Errorf("bob has %d preferences, want 3", len(got))
	}
	if n, _ := s.CountPreferences(ctx, "alice", ""); n != 2 {
		t.Errorf("alice has %d preferences after bob's delete attempt, want 2", n)
	}
}

// testConcurrentWrites checks that parallel writers all succeed (no "database
// is locked") and every acknowledged write is readable.
func testConcurrentWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	const users, each = 4, 15
	for u := range users {
		MustUser(t, s, fmt.Sprintf("u%d", u))
	}
	var wg sync.WaitGroup
	errs := make(chan error, users*each)
	for u := range users {
		for i := range each {
			wg.Go(func() {
				_, err := s.AddPreference(ctx, store.Preference{User: fmt.Sprintf("u%d", u), Prompt: fmt.Sprint(i), Source: "api"})
				if err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent AddPreference: %v", err)
	}
	for u := range users {
		n, err := s.CountPreferences(ctx, fmt.Sprintf("u%d", u), "")
		if err != nil || n != each {
			t.Errorf("user u%d: %d preferences, %v; want %d", u, n, err, each)
		}
	}
}

// testTextValidation: text that one backend would store and another refuse
// (NUL on PostgreSQL) or silently alter (invalid UTF-8) is refused by both
// before storage, with the field named, and nothing is written; tab,
// newline, carriage return and other Unicode pass unchanged.
func testTextValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	bad := []struct{ name, text, reason string }{
		{"NUL", "nul\x00byte", "NUL"},
		{"invalid UTF-8", "caf\xe9", "UTF-8"},
		{"escape", "bell\x07", "U+0007"},
		{"control 0x1f", "unit\x1fsep", "U+001F"},
	}
	for _, b := range bad {
		for _, field := range []string{"prompt", "chosen", "rejected"} {
			p := store.Preference{User: "alice", Prompt: "q", Chosen: "a", Rejected: "b", Source: "api"}
			switch field {
			case "prompt":
				p.Prompt = b.text
			case "chosen":
				p.Chosen = b.text
			case "rejected":
				p.Rejected = b.text
			}
			_, err := s.AddPreference(ctx, p)
			var inv *store.InvalidTextError
			if !errors.As(err, &inv) || inv.Field != field || !strings.Contains(err.Error(), b.reason) {
				t.Errorf("AddPreference with %s in %s: error %v, want an InvalidTextError naming %q and %q", b.name, field, err, field, b.reason)
			}
		}
		var inv *store.InvalidTextError
		if err := s.CreateUser(ctx, store.User{ID: "u-" + b.name, Name: b.text}, hash("t-"+b.name)); !errors.As(err, &inv) || inv.Field != "name" {
			t.Errorf("CreateUser with %s in name: error %v, want an InvalidTextError for \"name\"", b.name, err)
		}
		st := store.Study{ID: "s-" + b.name, Name: "study", Questions: []string{"fine", b.text}, SystemA: "a", SystemB: "b", Pairs: 1}
		if err := s.CreateStudy(ctx, st); !errors.As(err, &inv) || inv.Field != "questions[1]" {
			t.Errorf("CreateStudy with %s in questions[1]: error %v, want an InvalidTextError for \"questions[1]\"", b.name, err)
		}
	}
	if n, err := s.CountPreferences(ctx, "alice", ""); err != nil || n != 0 {
		t.Errorf("after refused writes: %d preferences (%v), want 0", n, err)
	}
	if studies, err := s.Studies(ctx); err != nil || len(studies) != 0 {
		t.Errorf("after refused writes: %d studies (%v), want 0", len(studies), err)
	}
	good := "tab\there\nnew line\r\nCRLF, é, 日本, 🙂"
	p, err := s.AddPreference(ctx, store.Preference{User: "alice", Prompt: good, Chosen: "a", Rejected: "b", Source: "api"})
	if err != nil {
		t.Fatalf("AddPreference with tab/newline/CR and non-ASCII: %v", err)
	}
	got, err := s.Preferences(ctx, "alice", store.PrefQuery{})
	if err != nil || len(got) != 1 || got[0].Prompt != good || got[0].ID != p.ID {
		t.Errorf("stored %q, read back %+v (%v)", good, got, err)
	}
}

// testPages: After, First and Offset read a page at a time, oldest first,
// and together walk every row exactly once; bob's rows never show.
func testPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	added := aliceAndBob(t, s, 7, 3)
	var walked []string
	after := int64(0)
	for pages := 0; ; pages++ {
		page, err := s.Preferences(ctx, "alice", store.PrefQuery{After: after, First: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if pages != 3 {
				t.Errorf("walked in %d pages of 3, want 3 (3+3+1)", pages)
			}
			break
		}
		walked = append(walked, prompts(page)...)
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(walked, prompts(added)) {
		t.Errorf("pages walked %q, want %q", walked, prompts(added))
	}
	mid, err := s.Preferences(ctx, "alice", store.PrefQuery{Offset: 2, First: 2})
	if err != nil || !reflect.DeepEqual(prompts(mid), []string{"alice q2", "alice q3"}) {
		t.Errorf("Offset 2 First 2 = %q (%v), want alice q2, q3", prompts(mid), err)
	}
	rest, err := s.Preferences(ctx, "alice", store.PrefQuery{Offset: 5})
	if err != nil || !reflect.DeepEqual(prompts(rest), []string{"alice q5", "alice q6"}) {
		t.Errorf("Offset 5 = %q (%v), want alice q5, q6", prompts(rest), err)
	}
	if _, err := s.Preferences(ctx, "alice", store.PrefQuery{Last: 2, First: 2}); err == nil {
		t.Error("Last with First: no error")
	}
}
