package stories

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCountsFor(t *testing.T) {
	tests := []struct {
		total int
		want  userCounts
	}{
		{72, userCounts{Train: 48, HeldOut: 8, Interpolated: 8, Unseen: 8}},
		{12, userCounts{Train: 8, HeldOut: 1, Interpolated: 2, Unseen: 1}},
		{10, userCounts{Train: 7, HeldOut: 1, Interpolated: 1, Unseen: 1}},
		{4, userCounts{Train: 1, HeldOut: 1, Interpolated: 1, Unseen: 1}},
	}
	for _, tc := range tests {
		got, err := countsFor(tc.total, 0)
		if err != nil || got != tc.want {
			t.Errorf("countsFor(%d) = %+v, %v; want %+v", tc.total, got, err, tc.want)
		}
	}
	if _, err := countsFor(3, 0); err == nil {
		t.Error("countsFor(3, 0) = nil error, want one")
	}
}

// TestHeldOutUsersAreUnseen checks the held-out kinds against the training
// users: interpolated users like only values some training user likes, but
// no two of them together; unseen users like a value no training user likes
// (or dislikes); every user likes a different set of values.
func TestHeldOutUsersAreUnseen(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 99} {
		uf, err := drawUsers(72, 0, seed, "")
		if err != nil {
			t.Fatal(err)
		}
		tr := checkUsersAndIndexTraining(t, seed, uf)
		reserved := map[string]bool{}
		for _, r := range uf.Reserved {
			reserved[string(r.Category)+":"+r.Value] = true
			if tr.any[string(r.Category)+":"+r.Value] {
				t.Errorf("seed %d: reserved %s:%s appears in a training profile", seed, r.Category, r.Value)
			}
		}
		for _, u := range uf.Users {
			checkHeldOutUser(t, seed, u, tr, reserved)
		}
	}
}

// trainingValues indexes what the training users like: the values some
// training user likes (liked), the values in any training profile (any),
// and the pairs "a|b" some training user likes together (co).
type trainingValues struct{ liked, any, co map[string]bool }

// checkUsersAndIndexTraining checks every user (valid, a like set of its
// own) and the count of each kind, and indexes the training users' values.
func checkUsersAndIndexTraining(t *testing.T, seed int64, uf UsersFile) trainingValues {
	t.Helper()
	tr := trainingValues{liked: map[string]bool{}, any: map[string]bool{}, co: map[string]bool{}}
	kinds := map[Kind]int{}
	likeSets := map[string]string{}
	for _, u := range uf.Users {
		kinds[u.Kind]++
		if err := u.Check(); err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
		if prev, dup := likeSets[likesKey(u)]; dup {
			t.Errorf("seed %d: %s and %s like the same values %s", seed, prev, u.ID, likesKey(u))
		}
		likeSets[likesKey(u)] = u.ID
		if u.Kind != Train {
			continue
		}
		ls := likedValues(u)
		for i, a := range ls {
			tr.liked[a.key()] = true
			for _, b := range ls[i+1:] {
				tr.co[a.key()+"|"+b.key()], tr.co[b.key()+"|"+a.key()] = true, true
			}
		}
		for _, p := range u.Prefs {
			tr.any[string(p.Category)+":"+p.Value] = true
		}
	}
	if kinds[Train] != 48 || kinds[HeldOut] != 8 || kinds[Interpolated] != 8 || kinds[Unseen] != 8 {
		t.Errorf("seed %d: kinds %v", seed, kinds)
	}
	return tr
}

// checkHeldOutUser checks one user's likes against its kind: interpolated
// users like ≥ 2 training values never liked together, unseen users like a
// reserved value no training user likes, held-out users no reserved value.
func checkHeldOutUser(t *testing.T, seed int64, u Profile, tr trainingValues, reserved map[string]bool) {
	t.Helper()
	ls := likedValues(u)
	switch u.Kind {
	case Interpolated:
		if len(ls) < 2 {
			t.Errorf("seed %d: interpolated %s likes %d values, want ≥ 2", seed, u.ID, len(ls))
		}
		for i, a := range ls {
			if !tr.liked[a.key()] {
				t.Errorf("seed %d: interpolated %s likes %s, which no training user likes", seed, u.ID, a.key())
			}
			for _, b := range ls[i+1:] {
				if tr.co[a.key()+"|"+b.key()] {
					t.Errorf("seed %d: interpolated %s likes %s and %s, liked together in training", seed, u.ID, a.key(), b.key())
				}
			}
		}
	case Unseen:
		n := 0
		for _, v := range ls {
			if reserved[v.key()] {
				n++
			}
			if reserved[v.key()] && tr.liked[v.key()] {
				t.Errorf("seed %d: unseen %s's reserved value %s is liked in training", seed, u.ID, v.key())
			}
		}
		if n == 0 {
			t.Errorf("seed %d: unseen %s likes no reserved value: %v", seed, u.ID, u.Prefs)
		}
	case HeldOut:
		for _, v := range ls {
			if reserved[v.key()] {
				t.Errorf("seed %d: heldout %s likes reserved %s", seed, u.ID, v.key())
			}
		}
	}
}

func TestDrawUsersDeterministic(t *testing.T) {
	a, err := drawUsers(30, 0, 5, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := drawUsers(30, 0, 5, "")
	c, _ := drawUsers(30, 0, 6, "")
	if len(a.Users) != 30 {
		t.Fatalf("%d users, want 30", len(a.Users))
	}
	same := func(x, y UsersFile) bool {
		for i := range x.Users {
			if x.Users[i].Description != y.Users[i].Description || likesKey(x.Users[i]) != likesKey(y.Users[i]) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed, different users")
	}
	if same(a, c) {
		t.Error("different seeds, same users")
	}
}

func TestLoadUsers(t *testing.T) {
	dir := t.TempDir()
	uf, err := drawUsers(12, 0, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(filepath.Join(dir, UsersName), uf); err != nil {
		t.Fatal(err)
	}
	got, err := LoadUsers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != 12 || got.Users[3].Description != uf.Users[3].Description {
		t.Errorf("round trip lost users: %d users", len(got.Users))
	}
	u, ok := got.User("u003")
	if !ok || u.Reward("x") != uf.Users[3].Reward("x") {
		t.Errorf("User(u003) = %v, %v", u, ok)
	}
	train, test := got.Split()
	if len(train) != 8 || len(test) != 4 || len(got.OfKind(Interpolated)) != 2 {
		t.Errorf("Split = %d train, %d test; %d interpolated", len(train), len(test), len(got.OfKind(Interpolated)))
	}

	bad := []struct {
		name, json, want string
	}{
		{"unknown field", `{"version":1,"seed":1,"reserved":[],"users":[],"extra":1}`, `unknown field "extra"`},
		{"version", `{"version":2,"seed":1,"reserved":[],"users":[]}`, "version: 2, want 1"},
		{"no users", `{"version":1,"seed":1,"reserved":[],"users":[]}`, "users: none"},
		{"bad kind", `{"version":1,"seed":1,"reserved":[],"users":[{"id":"a","kind":"test","prefs":[{"category":"animal","value":"cat","weight":1}],"description":"x"}]}`, `users[0] (a): kind "test"`},
		{"duplicate id", `{"version":1,"seed":1,"reserved":[],"users":[{"id":"a","kind":"train","prefs":[{"category":"animal","value":"cat","weight":1}],"description":"x"},{"id":"a","kind":"train","prefs":[{"category":"animal","value":"dog","weight":1}],"description":"y"}]}`, `users[1]: id "a" listed twice`},
		{"bad value", `{"version":1,"seed":1,"reserved":[],"users":[{"id":"a","kind":"train","prefs":[{"category":"animal","value":"dragon","weight":1}],"description":"x"}]}`, `users[0]: user a: prefs[0]: "dragon" is not a known animal`},
		{"not json", `{"version":1,`, "unexpected EOF"},
	}
	for _, tc := range bad {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, UsersName), []byte(tc.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadUsers(d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(d, UsersName)) {
			t.Errorf("%s: LoadUsers error %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadUsers(t.TempDir()); err == nil || !strings.Contains(err.Error(), "load users") {
		t.Errorf("missing file: error %v", err)
	}
}
