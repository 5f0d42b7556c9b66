package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"fspo/store"
)

// testIdempotencyKeys: a second write with a key the user already used
// stores nothing and returns the first row with ErrReplay; keys are per
// user, and rows without a key never collide.
func testIdempotencyKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	first, err := s.AddPreference(ctx, store.Preference{User: "alice", Prompt: "q", Chosen: "a", Rejected: "b", Source: "api", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.AddPreference(ctx, store.Preference{User: "alice", Prompt: "q", Chosen: "a", Rejected: "b", Source: "api", IdempotencyKey: "k1"})
	if !errors.Is(err, store.ErrReplay) || !reflect.DeepEqual(again, first) {
		t.Errorf("replay: %+v, %v; want the first row %+v and ErrReplay", again, err, first)
	}
	if _, err := s.AddPreference(ctx, store.Preference{User: "bob", Prompt: "q", Chosen: "a", Rejected: "b", Source: "api", IdempotencyKey: "k1"}); err != nil {
		t.Errorf("bob with alice's key: %v, want stored (keys are per user)", err)
	}
	for range 2 {
		if _, err := s.AddPreference(ctx, store.Preference{User: "alice", Prompt: "q2", Chosen: "a", Rejected: "b", Source: "api"}); err != nil {
			t.Errorf("without a key: %v", err)
		}
	}
	all, err := s.Preferences(ctx, "alice", store.PrefQuery{})
	if err != nil || len(all) != 3 || all[0] != first {
		t.Errorf("alice has %d rows (%v), first %+v; want 3, the keyed one first as returned", len(all), err, all)
	}
}

// testRotateAndDelete: a new token hash replaces the old one; deleting a
// user removes their preferences and votes and nobody else's.
func testRotateAndDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	if err := s.SetToken(ctx, "alice", hash("new-alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByToken(ctx, hash("token-alice")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old token after rotation: %v, want ErrNotFound", err)
	}
	if u, err := s.UserByToken(ctx, hash("new-alice")); err != nil || u.ID != "alice" {
		t.Errorf("new token: %+v %v", u, err)
	}
	if err := s.SetToken(ctx, "alice", hash("token-bob")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rotating to bob's token hash: %v, want ErrConflict", err)
	}
	if err := s.SetToken(ctx, "nobody", hash("x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rotating an unknown user's token: %v, want ErrNotFound", err)
	}
	addPrefs(t, s, "alice", "api", 3)
	addPrefs(t, s, "bob", "api", 2)
	st := store.Study{ID: "s1", Name: "s", Questions: []string{"q"}, Pairs: 1, SystemA: "a", SystemB: "b"}
	if err := s.CreateStudy(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if err := s.AddVote(ctx, store.Vote{Study: "s1", User: u, Question: 0, Left: "a", Winner: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountPreferences(ctx, "alice", ""); n != 0 {
		t.Errorf("alice's preferences after deletion: %d", n)
	}
	if votes, _ := s.Votes(ctx, "s1", ""); len(votes) != 1 || votes[0].User != "bob" {
		t.Errorf("votes after deleting alice: %+v, want bob's only", votes)
	}
	if n, _ := s.CountPreferences(ctx, "bob", ""); n != 2 {
		t.Errorf("bob's preferences after deleting alice: %d, want 2", n)
	}
	if _, err := s.UserByToken(ctx, hash("new-alice")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user's token: %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting twice: %v, want ErrNotFound", err)
	}
}

// testSessions: a session is found by its hash until it expires or is
// revoked; deleting a user revokes theirs; admin sessions are apart.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := store.Session{Hash: hash("s-a"), User: "alice", Expires: now.Add(time.Hour)}
	a2 := store.Session{Hash: hash("s-a2"), User: "alice", Expires: now.Add(time.Hour)}
	ad := store.Session{Hash: hash("s-admin"), Admin: true, Expires: now.Add(time.Hour)}
	for _, se := range []store.Session{a, a2, ad} {
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, store.Session{Hash: hash("bad"), User: "alice", Admin: true}); err == nil {
		t.Error("a session both user and admin: no error")
	}
	if u, err := s.UserByID(ctx, "alice"); err != nil || u.ID != "alice" || u.Name != "name of alice" {
		t.Errorf("UserByID(alice) = %+v, %v", u, err)
	}
	if _, err := s.UserByID(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(nobody): %v, want ErrNotFound", err)
	}
	got, err := s.SessionByHash(ctx, a.Hash, now)
	if err != nil || got.User != "alice" || got.Admin || !got.Expires.Equal(a.Expires) {
		t.Errorf("SessionByHash = %+v, %v; want alice's", got, err)
	}
	if _, err := s.SessionByHash(ctx, a.Hash, now.Add(2*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired session: %v, want ErrNotFound", err)
	}
	if got, err := s.SessionByHash(ctx, ad.Hash, now); err != nil || !got.Admin || got.User != "" {
		t.Errorf("admin session = %+v, %v", got, err)
	}
	if err := s.DeleteSession(ctx, a.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, a.Hash, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, a.Hash); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, a2.Hash, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session of a deleted user: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSessions(ctx, "", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByHash(ctx, ad.Hash, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("admin session after DeleteSessions: %v, want ErrNotFound", err)
	}
}

func testStudies(t *testing.T, s store.Store) {
	ctx := context.Background()
	st := store.Study{ID: "s1", Name: "pilot", Questions: []string{"q1", "q2 ✓"}, LabelQuestions: nil,
		Pairs: 3, SystemA: "fspo", SystemB: "base", Created: time.UnixMicro(1_700_000_000_000_000).UTC()}
	if err := s.CreateStudy(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateStudy(ctx, st); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateStudy(duplicate) error = %v, want ErrConflict", err)
	}
	got, err := s.Study(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	want := st
	want.LabelQuestions = []string{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Study(s1) = %+v, want %+v", got, want)
	}
	if _, err := s.Study(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Study(unknown) error = %v, want ErrNotFound", err)
	}
	st2 := store.Study{ID: "s2", Name: "second", Questions: []string{"x"}, LabelQuestions: []string{"l"},
		Pairs: 1, SystemA: "a", SystemB: "b", Created: st.Created.Add(time.Second)}
	if err := s.CreateStudy(ctx, st2); err != nil {
		t.Fatal(err)
	}
	all, err := s.Studies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != "s1" || all[1].ID != "s2" || all[1].LabelQuestions[0] != "l" {
		t.Errorf("Studies() = %+v, want s1 then s2", all)
	}
}

func testVotes(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	if err := s.CreateStudy(ctx, store.Study{ID: "s1", Questions: []string{"a", "b"}, SystemA: "fspo", SystemB: "base"}); err != nil {
		t.Fatal(err)
	}
	votes := []store.Vote{
		{Study: "s1", User: "alice", Question: 0, Left: "fspo", Winner: "fspo", LeftShots: 4, LeftOut: 2, RightShots: 0, RightOut: 0},
		{Study: "s1", User: "alice", Question: 1, Left: "base", Winner: "fspo", LeftShots: 0, LeftOut: 0, RightShots: 6, RightOut: 0},
		{Study: "s1", User: "bob", Question: 0, Left: "base", Winner: "base", LeftShots: -1, LeftOut: -1, RightShots: -1, RightOut: -1},
	}
	for _, v := range votes {
		if err := s.AddVote(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddVote(ctx, votes[0]); !errors.Is(err, store.ErrConflict) {
		t.Errorf("AddVote(again) error = %v, want ErrConflict", err)
	}
	all, err := s.Votes(ctx, "s1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("Votes(s1) has %d votes, want 3", len(all))
	}
	alice, err := s.Votes(ctx, "s1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(alice) != 2 || alice[0].Question != 0 || alice[1].Winner != "fspo" || alice[1].Left != "base" {
		t.Errorf("Votes(s1, alice) = %+v", alice)
	}
	for _, v := range all { // shot counts round-trip, unknown (−1) included
		for _, w := range votes {
			if v.User == w.User && v.Question == w.Question && [4]int{v.LeftShots, v.LeftOut, v.RightShots, v.RightOut} != [4]int{w.LeftShots, w.LeftOut, w.RightShots, w.RightOut} {
				t.Errorf("vote %s/%d shot counts %d/%d/%d/%d, stored %d/%d/%d/%d", v.User, v.Question, v.LeftShots, v.LeftOut, v.RightShots, v.RightOut, w.LeftShots, w.LeftOut, w.RightShots, w.RightOut)
			}
		}
	}
	if err := s.AddVote(ctx, store.Vote{Study: "missing", User: "alice", Winner: "x", Left: "x"}); err == nil {
		t.Errorf("AddVote(unknown study) succeeded, want a foreign-key error")
	}
}

// testDescriptions: a user's own description is stored, replaced, removed
// by "" and read back; an unknown user is ErrNotFound; text that cannot be
// stored is refused.
func testDescriptions(t *testing.T, s store.Store) {
	ctx := context.Background()
	MustUser(t, s, "alice")
	MustUser(t, s, "bob")
	if d, err := s.Description(ctx, "alice"); err != nil || d != "" {
		t.Fatalf("new user's description %q, %v; want none", d, err)
	}
	for _, text := range []string{"Likes dogs, dislikes long stories.", "Likes cats.\nShort answers, please."} {
		if err := s.SetDescription(ctx, "alice", text); err != nil {
			t.Fatal(err)
		}
		if d, err := s.Description(ctx, "alice"); err != nil || d != text {
			t.Errorf("description %q, %v; want %q", d, err, text)
		}
	}
	if d, _ := s.Description(ctx, "bob"); d != "" {
		t.Errorf("bob has alice's description %q", d)
	}
	if err := s.SetDescription(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Description(ctx, "alice"); err != nil || d != "" {
		t.Errorf("after removing: %q, %v", d, err)
	}
	if err := s.SetDescription(ctx, "nobody", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.Description(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user's description: %v, want ErrNotFound", err)
	}
	if err := s.SetDescription(ctx, "alice", "nul\x00"); err == nil {
		t.Error("a NUL byte: stored")
	}
}
