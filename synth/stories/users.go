package stories

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"

	"fspo/fileio"
)

// UsersName is the users file's name inside a data directory.
const UsersName = "users.json"

// UsersFile is the content of users.json: every user's hidden profile and
// kind, and the values reserved for Unseen users.
type UsersFile struct {
	Version  int       `json:"version"`
	Seed     int64     `json:"seed"`
	Reserved []Pref    `json:"reserved"` // values no training user likes (weight 0 here)
	Users    []Profile `json:"users"`
}

// usersVersion is the users.json format version.
const usersVersion = 1

// userCounts is how many users of each kind to draw.
type userCounts struct {
	Train, HeldOut, Interpolated, Unseen int
}

// countsFor splits total users into train and three equal-as-possible
// held-out kinds (interpolated get the remainder first); test held-out users
// in all, or a third of total (rounded) when test is 0.
func countsFor(total, test int) (userCounts, error) {
	if total < 4 {
		return userCounts{}, fmt.Errorf("users: %d is too few; need at least 4 (train, held-out, interpolated, unseen)", total)
	}
	if test == 0 {
		test = max(3, int(math.Round(float64(total)/3)))
	}
	if test < 3 || test > total-1 {
		return userCounts{}, fmt.Errorf("users: %d held-out of %d users: need at least 3 (one per kind) and one train user", test, total)
	}
	c := userCounts{Train: total - test}
	c.HeldOut, c.Interpolated, c.Unseen = test/3, test/3, test/3
	if test%3 > 0 {
		c.Interpolated++
	}
	if test%3 > 1 {
		c.Unseen++
	}
	return c, nil
}

// drawer draws profiles with one random stream.
type drawer struct {
	rng      *rand.Rand
	reserved map[string]bool
}

func weight(rng *rand.Rand) float64 {
	return math.Round(5+rng.Float64()*10) / 10 // 0.5 … 1.5 in steps of 0.1
}

// pick returns a random value of one of cats that ok accepts, or false.
func (d *drawer) pick(cats []Category, ok func(Value) bool) (Value, bool) {
	var cands []Value
	for _, c := range cats {
		for _, v := range Values(c) {
			if ok(v) {
				cands = append(cands, v)
			}
		}
	}
	if len(cands) == 0 {
		return Value{}, false
	}
	return cands[d.rng.IntN(len(cands))], true
}

var likeCats = []Category{Name, Animal, Place, Object}

// draw makes one profile: two likes from different categories among name,
// animal, place and object (plus a liked mood with probability 0.4), one
// dislike (two with probability 0.3) of another value, and a length
// preference with probability 0.6. likeOK restricts the liked values;
// first, when set, is the first like.
func (d *drawer) draw(likeOK func(Value) bool, first *Value) Profile {
	var p Profile
	used := map[string]bool{}
	usedCat := map[Category]bool{}
	add := func(v Value, w float64) {
		used[v.key()], usedCat[v.Category] = true, true
		p.Prefs = append(p.Prefs, Pref{Category: v.Category, Value: v.Word, Weight: w})
	}
	if first != nil {
		add(*first, weight(d.rng))
	}
	for len(p.Prefs) < 2 {
		v, ok := d.pick(likeCats, func(v Value) bool { return !usedCat[v.Category] && likeOK(v) })
		if !ok {
			break
		}
		add(v, weight(d.rng))
	}
	if d.rng.Float64() < 0.4 {
		if v, ok := d.pick([]Category{Mood}, likeOK); ok {
			add(v, weight(d.rng))
		}
	}
	nDis := 1
	if d.rng.Float64() < 0.3 {
		nDis = 2
	}
	for range nDis {
		v, ok := d.pick([]Category{Animal, Place, Object, Mood, Name}, func(v Value) bool { return !used[v.key()] && !d.reserved[v.key()] })
		if ok {
			add(v, -weight(d.rng))
		}
	}
	if d.rng.Float64() < 0.6 {
		b := "short"
		if d.rng.IntN(2) == 1 {
			b = "long"
		}
		p.Prefs = append(p.Prefs, Pref{Category: Length, Value: b, Weight: weight(d.rng)})
	}
	return p
}

// likesKey identifies a profile's set of liked names, animals, places and
// objects (moods left out, so two users never share their main likes).
func likesKey(p Profile) string {
	var ks []string
	for _, v := range likedValues(p) {
		if v.Category != Mood {
			ks = append(ks, v.key())
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

func likedValues(p Profile) []Value {
	var out []Value
	for _, pr := range p.Prefs {
		if pr.Category != Length && pr.Weight > 0 {
			v, _ := lookup(pr.Category, pr.Value)
			out = append(out, v)
		}
	}
	return out
}

// drawUsers draws the users of a run: train users first, then held-out,
// interpolated and unseen users, with ids u000, u001, … in that order.
// One name, one animal and one object are reserved: no train, held-out or
// interpolated user likes or dislikes them, and every unseen user likes one.
func drawUsers(total, test int, seed int64, phrasing string) (UsersFile, error) {
	counts, err := countsFor(total, test)
	if err != nil {
		return UsersFile{}, err
	}
	d := &drawer{rng: rand.New(rand.NewPCG(uint64(seed), 0x05e75)), reserved: map[string]bool{}}
	uf := UsersFile{Version: usersVersion, Seed: seed}
	var reservedList []Value
	for _, c := range []Category{Name, Animal, Object} {
		vs := Values(c)
		v := vs[d.rng.IntN(len(vs))]
		d.reserved[v.key()] = true
		reservedList = append(reservedList, v)
		uf.Reserved = append(uf.Reserved, Pref{Category: c, Value: v.Word})
	}
	notReserved := func(v Value) bool { return !d.reserved[v.key()] }
	seen := map[string]bool{} // likesKey of every user drawn: no two share their main likes
	var users []Profile
	// add draws n users of a kind, each until it is valid and distinct.
	add := func(n int, kind Kind, draw func(i int) (Profile, bool)) error {
		for i := range n {
			try := 0
			for ; try < 10000; try++ {
				p, ok := draw(i)
				if !ok || seen[likesKey(p)] {
					continue
				}
				seen[likesKey(p)] = true
				p.ID = fmt.Sprintf("u%03d", len(users))
				p.Kind = kind
				p.Description = DescribeAs(phrasing, p.Prefs, uint64(seed)*1000003+uint64(len(users)))
				users = append(users, p)
				break
			}
			if try == 10000 {
				return fmt.Errorf("users: could not draw a distinct %s user after 10000 tries (too many users for the vocabulary?)", kind)
			}
		}
		return nil
	}
	plain := func(int) (Profile, bool) { return d.draw(notReserved, nil), true }
	if err := add(counts.Train, Train, plain); err != nil {
		return UsersFile{}, err
	}
	trainLiked, coLiked := likedTogether(users)
	if err := add(counts.HeldOut, HeldOut, plain); err != nil {
		return UsersFile{}, err
	}
	interp := func(int) (Profile, bool) {
		p := d.draw(func(v Value) bool { return trainLiked[v.key()] }, nil)
		ls := likedValues(p)
		if len(ls) < 2 {
			return p, false
		}
		for i, a := range ls {
			for _, b := range ls[i+1:] {
				if coLiked[[2]string{a.key(), b.key()}] {
					return p, false
				}
			}
		}
		return p, true
	}
	if err := add(counts.Interpolated, Interpolated, interp); err != nil {
		return UsersFile{}, err
	}
	unseen := func(i int) (Profile, bool) {
		first := reservedList[i%len(reservedList)]
		return d.draw(notReserved, &first), true
	}
	if err := add(counts.Unseen, Unseen, unseen); err != nil {
		return UsersFile{}, err
	}
	uf.Users = users
	return uf, nil
}

// likedTogether returns what the users like, alone and in pairs (both
// orders).
func likedTogether(users []Profile) (map[string]bool, map[[2]string]bool) {
	liked := map[string]bool{}
	pairs := map[[2]string]bool{}
	for _, p := range users {
		ls := likedValues(p)
		for i, a := range ls {
			liked[a.key()] = true
			for _, b := range ls[i+1:] {
				pairs[[2]string{a.key(), b.key()}], pairs[[2]string{b.key(), a.key()}] = true, true
			}
		}
	}
	return liked, pairs
}

// Split returns the ids of the training users and of the held-out users
// (every other kind), in file order.
func (uf *UsersFile) Split() (train, test []string) {
	for _, u := range uf.Users {
		if u.Kind == Train {
			train = append(train, u.ID)
		} else {
			test = append(test, u.ID)
		}
	}
	return train, test
}

// OfKind returns the ids of the users of kind k, in file order.
func (uf *UsersFile) OfKind(k Kind) []string {
	var ids []string
	for _, u := range uf.Users {
		if u.Kind == k {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// LoadUsers reads dir/users.json strictly (unknown fields are errors) and
// checks every profile. Errors name the file and the user.
func LoadUsers(dir string) (*UsersFile, error) {
	path := filepath.Join(dir, UsersName)
	uf, err := fileio.Parse(path, parseUsers)
	if err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	return uf, nil
}

func parseUsers(data []byte) (*UsersFile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var uf UsersFile
	if err := dec.Decode(&uf); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if uf.Version != usersVersion {
		return nil, fmt.Errorf("version: %d, want %d", uf.Version, usersVersion)
	}
	if len(uf.Users) == 0 {
		return nil, errors.New("users: none")
	}
	ids := map[string]bool{}
	for i, u := range uf.Users {
		if strings.TrimSpace(u.ID) == "" {
			return nil, fmt.Errorf("users[%d]: id: missing", i)
		}
		if ids[u.ID] {
			return nil, fmt.Errorf("users[%d]: id %q listed twice", i, u.ID)
		}
		ids[u.ID] = true
		switch u.Kind {
		case Train, HeldOut, Interpolated, Unseen:
		default:
			return nil, fmt.Errorf("users[%d] (%s): kind %q is not one of train, heldout, interpolated, unseen", i, u.ID, u.Kind)
		}
		if err := u.Check(); err != nil {
			return nil, fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	return &uf, nil
}

// User returns the profile with this id.
func (uf *UsersFile) User(id string) (*Profile, bool) {
	for i := range uf.Users {
		if uf.Users[i].ID == id {
			return &uf.Users[i], true
		}
	}
	return nil, false
}
