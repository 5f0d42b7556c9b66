package episode

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"fspo/dataset"
)

// Descriptions maps each user to a description: the first non-empty
// Description among the user's records (users without one are left out).
func Descriptions(byUser map[string][]dataset.Record) map[string]string {
	out := make(map[string]string, len(byUser))
	for u, recs := range byUser {
		for _, r := range recs {
			if r.Description != "" {
				out[u] = r.Description
				break
			}
		}
	}
	return out
}

// Others draws another user's description for the rejected completion of a
// COT episode whose record has no RejectedDescription (METHOD.md §2: "the
// description of the persona that produced y_l, or another user's").
type Others struct {
	users, descs []string // sorted by user
}

// NewOthers indexes user descriptions (e.g. from Descriptions).
func NewOthers(descriptions map[string]string) *Others {
	o := &Others{}
	for u := range descriptions {
		o.users = append(o.users, u)
	}
	sort.Strings(o.users)
	for _, u := range o.users {
		o.descs = append(o.descs, descriptions[u])
	}
	return o
}

// For picks, deterministically from (seed, user, query key), the
// description of a user other than ep.User that differs from the query's
// own description; "" when there is none. The draw starts at a uniform
// position and steps past ineligible users, so users right after an
// ineligible one are slightly more likely.
func (o *Others) For(ep Episode, seed int64) string {
	n := len(o.users)
	if n == 0 {
		return ""
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h := sha256.New()
	h.Write(b[:])
	h.Write([]byte(ep.User))
	h.Write([]byte{0})
	h.Write([]byte(ep.Query.Key()))
	sum := h.Sum(nil)
	r := &rng{binary.LittleEndian.Uint64(sum[:8])}
	start := int(r.intn(uint64(n)))
	for k := range n {
		i := (start + k) % n
		if o.users[i] != ep.User && o.descs[i] != "" && o.descs[i] != ep.Query.Description {
			return o.descs[i]
		}
	}
	return ""
}

// Option is the OtherDescription option for ep, or no option when no other
// description exists (Render then reports the missing description).
func (o *Others) Option(ep Episode, seed int64) []Option {
	if d := o.For(ep, seed); d != "" {
		return []Option{OtherDescription(d)}
	}
	return nil
}
