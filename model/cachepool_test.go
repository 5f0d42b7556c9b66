package model

import (
	"context"
	"testing"
)

// TestReleasedCacheMemoryIsReused: a released cache's buffers serve the next
// cache of a size they hold (at most twice over), cleared; a cache a View was
// taken of gives its memory back when it and every view are released;
// generating on reused memory gives the tokens
// generating on fresh memory gave.
func TestReleasedCacheMemoryIsReused(t *testing.T) {
	m := loadStories(t)
	const n = 173 // a size no other test asks for
	c := m.NewCacheFor(n)
	if err := m.Forward([]Step{{Cache: c, Tokens: []int{BOS, 403, 407, 261}}}); err != nil {
		t.Fatal(err)
	}
	k, v := &c.k[0], &c.v[0]
	c.Release()
	if c.k != nil || c.Len() != 0 {
		t.Fatalf("a released cache keeps its buffers (%d positions)", c.Len())
	}
	d := m.NewCacheFor(n - 20)
	if got := [2]*float32{&d.k[0], &d.v[0]}; (got[0] != k && got[0] != v) || (got[1] != k && got[1] != v) {
		t.Fatalf("a cache of %d positions after releasing one of %d got new memory", n-20, n)
	}
	for i := range d.k {
		if d.k[i] != 0 || d.v[i] != 0 {
			t.Fatalf("reused memory not cleared at %d: k %v v %v", i, d.k[i], d.v[i])
		}
	}
	if want := (n - 20 + 15) &^ 15; d.Cap() != want || len(d.k) != m.Config.Layers*want*m.Config.KVDim() {
		t.Fatalf("reused buffer has %d values for %d positions, want %d positions (%d rounded up to 16)", len(d.k), d.Cap(), want, n-20)
	}
	d.Release()
	if e := m.NewCacheFor(n / 3); &e.k[0] == k || &e.k[0] == v {
		t.Fatalf("a cache of %d positions took a buffer of %d (more than twice its size)", n/3, n)
	}

	// a viewed cache's memory goes back only when the cache and every view
	// of it are released: until then a view may still be read
	f := m.NewCacheFor(n)
	if err := m.Forward([]Step{{Cache: f, Tokens: []int{BOS, 291, 280}}}); err != nil {
		t.Fatal(err)
	}
	fk := &f.k[0]
	view, view2 := f.View(2), f.View(3)
	f.Release()
	view.Release()
	if view2.k == nil || view2.Len() != 3 || &view2.k[0] != fk {
		t.Fatal("releasing a cache and one view took the memory from the other view")
	}
	if g := m.NewCacheFor(n); &g.k[0] == fk || &g.v[0] == fk {
		t.Fatal("a new cache took the memory a view still reads")
	}
	view2.Release()
	view2.Release() // a second release does nothing
	if g := m.NewCacheFor(n); &g.k[0] != fk && &g.v[0] != fk {
		t.Fatal("the memory of a cache and its views, all released, did not go back to the pool")
	}

	gen := func() []int {
		out, err := m.Generate(context.Background(), []int{BOS, 403}, GenOptions{MaxTokens: 60}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Tokens
	}
	first, again := gen(), gen() // the second on the first's released memory
	if !equalInts(first, again) {
		t.Fatalf("generation on reused memory %v, on fresh %v", again, first)
	}
}
