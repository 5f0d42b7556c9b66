package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// Split divides users into train and held-out sets, deterministically for
// a seed: each distinct user is ranked by SHA-256(seed, user), and the
// round(testFrac·n) lowest ranked are held out. The ranking does not depend
// on the input order, and a user's rank does not depend on the other users.
// With at least two users and 0 < testFrac < 1 both sets are non-empty
// (the count is moved to 1 or n−1 when rounding would empty one). Both
// results are sorted. Duplicate names count once.
//
// testFrac must be in [0, 1]; callers validate it (ValidFrac) where it comes
// from outside, and Split panics otherwise, as for an out-of-range index.
func Split(users []string, testFrac float64, seed int64) (train, test []string) {
	if err := ValidFrac(testFrac); err != nil {
		panic("dataset.Split: " + err.Error())
	}
	type ranked struct {
		user string
		key  [sha256.Size]byte
	}
	seen := make(map[string]bool, len(users))
	rs := make([]ranked, 0, len(users))
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	for _, u := range users {
		if seen[u] {
			continue
		}
		seen[u] = true
		rs = append(rs, ranked{u, sha256.Sum256(append(s[:8:8], u...))})
	}
	sort.Slice(rs, func(i, j int) bool {
		if c := bytes.Compare(rs[i].key[:], rs[j].key[:]); c != 0 {
			return c < 0
		}
		return rs[i].user < rs[j].user
	})
	n := len(rs)
	k := int(math.Round(testFrac * float64(n)))
	if n >= 2 && testFrac > 0 && testFrac < 1 {
		k = max(1, min(k, n-1))
	}
	for i, r := range rs {
		if i < k {
			test = append(test, r.user)
		} else {
			train = append(train, r.user)
		}
	}
	sort.Strings(train)
	sort.Strings(test)
	return train, test
}

// ValidFrac reports whether f is a fraction in [0, 1].
func ValidFrac(f float64) error {
	if math.IsNaN(f) || f < 0 || f > 1 {
		return fmt.Errorf("fraction %v is not in [0, 1]", f)
	}
	return nil
}
