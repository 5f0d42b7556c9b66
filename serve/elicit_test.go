package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"fspo/elicit"
	"fspo/serve"
	"fspo/store"
)

// committeeOf is three plausible users' contexts for the stories domain.
var committeeOf = [][]serve.Shot{
	{{Prompt: "Once upon a time", Chosen: "a happy dog ran to the park.", Rejected: "a sad cat sat."}},
	{{Prompt: "One day", Chosen: "Lily was sad and cried.", Rejected: "Tom laughed and played."}},
	{{Prompt: "It was a sunny day", Chosen: "Sam read a book by the pond.", Rejected: "Ben ran fast."}},
}

// GET /api/next-pair asks the pair of sampled answers with the largest
// expected information gain over the committee and the caller (recomputed
// here from the engine's own answers and rewards), the same for the same
// seed; POST /api/preferences answers it by id once.
func TestNextPairOverHTTP(t *testing.T) {
	eng := rankingEngine(t)
	eng.Loss = "ipo"
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.Committee = committeeOf; c.MaxTokens = 24 })
	aliceID, tok := e.user("alice")
	e.pref(tok, "Once upon a time", "a happy dog ran.", "a sad cat sat.")
	q := "One day, Tom"
	path := "/api/next-pair?seed=3&question=" + url.QueryEscape(q)
	code, body, _ := e.do("GET", path, tok, nil)
	if code != http.StatusOK {
		t.Fatalf("next-pair: %d %s", code, body)
	}
	np := decode[map[string]any](t, body)
	if np["strategy"] != "active" || np["question"] != q || np["a"] == np["b"] || np["id"] == "" {
		t.Fatalf("next-pair: %s", body)
	}
	a, b, gain := expectedPair(t, eng, q, 3)
	if np["a"] != a || np["b"] != b || fmt.Sprintf("%.9f", np["gain"]) != fmt.Sprintf("%.9f", gain) {
		t.Fatalf("next-pair chose %q / %q (gain %v), want %q / %q (gain %v)", np["a"], np["b"], np["gain"], a, b, gain)
	}
	_, again, _ := e.do("GET", path, tok, nil)
	if np2 := decode[map[string]any](t, again); np2["a"] != a || np2["b"] != b || np2["id"] == np["id"] {
		t.Fatalf("same seed, other pair or same id: %s then %s", body, again)
	}

	id := np["id"].(string)
	_, bobTok := e.user("bob")
	for _, c := range []struct {
		token string
		body  map[string]string
		want  int
	}{
		{tok, map[string]string{"pair": id, "choice": "c"}, http.StatusBadRequest},
		{tok, map[string]string{"pair": id, "choice": "a", "prompt": q}, http.StatusBadRequest},
		{tok, map[string]string{"pair": "0123", "choice": "a"}, http.StatusNotFound},
		{bobTok, map[string]string{"pair": id, "choice": "a"}, http.StatusNotFound}, // another user's pair
		{tok, map[string]string{"pair": id, "choice": "b"}, http.StatusCreated},
		{tok, map[string]string{"pair": id, "choice": "a"}, http.StatusConflict},
	} {
		if code, body, _ := e.do("POST", "/api/preferences", c.token, c.body); code != c.want {
			t.Errorf("POST %v: %d %s, want %d", c.body, code, body, c.want)
		}
	}
	prefs, err := e.store.Preferences(context.Background(), aliceID, store.PrefQuery{})
	if err != nil || len(prefs) != 2 {
		t.Fatalf("stored %d preferences (%v), want the first and the answered pair", len(prefs), err)
	}
	if p := prefs[1]; p.Prompt != q || p.Chosen != b || p.Rejected != a || p.Source != "pair:"+id {
		t.Fatalf("stored %+v, want %q ≻ %q from pair:%s", p, b, a, id)
	}
	if code, _, _ := e.do("GET", "/api/next-pair?seed=x", tok, nil); code != http.StatusBadRequest {
		t.Errorf("seed x: %d, want 400", code)
	}
}

// expectedPair recomputes the choice: the engine's answers for the seed,
// each member's (the committee's, then the caller's) rewards, the caller's
// one label weighing them.
func expectedPair(t *testing.T, eng *serve.ModelEngine, q string, seed uint64) (string, string, float64) {
	ctx := context.Background()
	var texts []string
	for k := uint64(0); k < 4; k += 2 {
		a, b, err := eng.Pair(ctx, q, seed+k)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{a, b} {
			if !slices.Contains(texts, s) {
				texts = append(texts, s)
			}
		}
	}
	label := serve.Shot{Prompt: "Once upon a time", Chosen: "a happy dog ran.", Rejected: "a sad cat sat."}
	members := append(append([][]serve.Shot{}, committeeOf...), []serve.Shot{label})
	var pairs [][2]int
	for i := range texts {
		for j := i + 1; j < len(texts); j++ {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	probs := make([][]float64, len(members))
	for m, shots := range members {
		rw, _, err := eng.Rewards(ctx, shots, q, texts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			probs[m] = append(probs[m], elicit.Prob("ipo", rw[p[0]]-rw[p[1]]))
		}
		lr, _, err := eng.Rewards(ctx, shots, label.Prompt, []string{label.Chosen, label.Rejected})
		if err != nil {
			t.Fatal(err)
		}
		probs[m] = append(probs[m], elicit.Prob("ipo", lr[0]-lr[1]))
	}
	com, err := elicit.NewCommittee(probs)
	if err != nil {
		t.Fatal(err)
	}
	w := com.Posterior(map[int]bool{len(pairs): true})
	best, bestGain := 0, -1.0
	for j := range pairs {
		if g := com.Gain(j, w); g > bestGain+1e-12 {
			best, bestGain = j, g
		}
	}
	return texts[pairs[best][0]], texts[pairs[best][1]], bestGain
}

// Without a committee (or a ranking engine) the pair is the engine's two
// sampled answers, and the answer says why it was not chosen actively.
func TestNextPairWithoutCommittee(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	code, body, _ := e.do("GET", "/api/next-pair", tok, nil)
	np := decode[map[string]any](t, body)
	if code != http.StatusOK || np["strategy"] != "random" || np["why"] == "" || np["question"] != serve.DefaultQuestions[0] {
		t.Fatalf("next-pair: %d %s", code, body)
	}
	if code, body, _ := e.do("POST", "/api/preferences", tok, map[string]string{"pair": np["id"].(string), "choice": "a"}); code != http.StatusCreated {
		t.Fatalf("answer: %d %s", code, body)
	}
	// the next question is the next configured one
	_, body, _ = e.do("GET", "/api/next-pair", tok, nil)
	if np := decode[map[string]any](t, body); np["question"] != serve.DefaultQuestions[1] {
		t.Fatalf("second next-pair: %s", body)
	}
}

// A pair is kept an hour: answered later it is unknown (404), and nothing
// is stored.
func TestNextPairExpires(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, func(c *serve.Config) { c.Now = clock.Now })
	id, tok := e.user("alice")
	_, body, _ := e.do("GET", "/api/next-pair", tok, nil)
	pair := decode[map[string]any](t, body)["id"].(string)
	clock.advance(61 * time.Minute)
	if code, body, _ := e.do("POST", "/api/preferences", tok, map[string]string{"pair": pair, "choice": "a"}); code != http.StatusNotFound {
		t.Fatalf("answer after 61 minutes: %d %s, want 404", code, body)
	}
	if n, err := e.store.CountPreferences(context.Background(), id, ""); err != nil || n != 0 {
		t.Fatalf("%d preferences stored (%v), want none", n, err)
	}
}
