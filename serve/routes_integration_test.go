package serve_test

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/time/rate"

	"fspo/episode"
	"fspo/serve"
	"fspo/serve/servetest"
)

// TestRouteAuth: every API route of the issue (and of the package
// documentation) with no token, a user's token and the admin token. User
// routes refuse the admin token and admin routes refuse user tokens: the two
// kinds of bearer are never interchangeable.
func TestRouteAuth(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.AttemptLimit = rate.Inf }) // many wrong tokens from one address
	_, tok := e.user("alice")
	id := e.pref(tok, "q", "a", "b")
	code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "s", "questions": []string{"q"}, "pairs": 1,
		"systems": []string{"fspo", "base"}})
	if code != http.StatusCreated {
		t.Fatalf("create study: %d %s", code, body)
	}
	study := decode[map[string]any](t, body)["id"].(string)
	chat := map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}
	pref := map[string]string{"prompt": "p", "chosen": "c", "rejected": "r"}
	const open, user, admin = "open", "user", "admin"
	routes := []struct {
		method, path string
		body         any
		who          string
		ok           int // the status for the right caller
	}{
		{"GET", "/healthz", nil, open, 200},
		{"POST", "/api/users", map[string]string{"name": "bob"}, admin, 201},
		{"POST", "/api/preferences", pref, user, 201},
		{"GET", "/api/preferences", nil, user, 200},
		{"GET", "/api/me/description", nil, user, 200},
		{"GET", "/v1/models", nil, user, 200},
		{"POST", "/v1/chat/completions", chat, user, 200},
		{"POST", "/v1/completions", map[string]any{"prompt": "hi"}, user, 200},
		{"POST", "/api/studies", map[string]any{"name": "t", "questions": []string{"q"}, "systems": []string{"fspo", "base"}}, admin, 201},
		{"GET", "/api/studies/" + study + "/results", nil, admin, 200},
		{"GET", "/api/studies/" + study + "/results.csv", nil, admin, 200},
		{"DELETE", "/api/preferences/" + itoa(id), nil, user, 204}, // last: it removes the preference
	}
	for _, r := range routes {
		callers := map[string]string{"none": "", user: tok, admin: adminToken}
		for _, name := range []string{"none", user, admin} {
			code, body, _ := e.do(r.method, r.path, callers[name], r.body)
			want := http.StatusUnauthorized
			if r.who == open || r.who == name {
				want = r.ok
			}
			if code != want {
				t.Errorf("%s %s as %s = %d, want %d: %s", r.method, r.path, name, code, want, body)
			}
		}
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestModelsRoute: GET /v1/models lists every engine, sorted, as OpenAI's
// model objects.
func TestModelsRoute(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) {
		c.Engines = map[string]serve.Engine{"zeta": servetest.New("zeta"), "alpha": servetest.New("alpha")}
	})
	_, tok := e.user("alice")
	code, body, _ := e.do("GET", "/v1/models", tok, nil)
	var got struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.Unmarshal(body, &got); err != nil || code != 200 || got.Object != "list" {
		t.Fatalf("GET /v1/models = %d %s (%v)", code, body, err)
	}
	var ids []string
	for _, m := range got.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" {
			t.Errorf("model %s has object %q, want model", m.ID, m.Object)
		}
	}
	if want := []string{"alpha", "fake", "zeta"}; !slices.Equal(ids, want) {
		t.Errorf("models %v, want %v", ids, want)
	}
}

// TestCompletionsStreaming: POST /v1/completions with "stream": true sends
// text pieces that add up to the unstreamed text, the fspo field on the
// final chunk, usage when asked, and [DONE].
func TestCompletionsStreaming(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	e.pref(tok, "q", "liked", "disliked")
	code, body, _ := e.do("POST", "/v1/completions", tok, map[string]any{"prompt": "tell me", "seed": 3})
	whole := decode[chatResp](t, body)
	if code != 200 || len(whole.Choices) != 1 {
		t.Fatalf("unstreamed: %d %s", code, body)
	}
	code, body, hdr := e.do("POST", "/v1/completions", tok, map[string]any{"prompt": "tell me", "seed": 3, "stream": true,
		"stream_options": map[string]bool{"include_usage": true}})
	if code != 200 || hdr.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("streamed: %d %q %s", code, hdr.Get("Content-Type"), body)
	}
	var text strings.Builder
	var final map[string]any
	var usage map[string]any
	events := strings.Split(strings.TrimSpace(string(body)), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", events)
	}
	for _, ev := range events[:len(events)-1] {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %q is not a data line", ev)
		}
		var c struct {
			Choices []struct {
				Text         string
				FinishReason *string `json:"finish_reason"`
			}
			FSPO  map[string]any `json:"fspo"`
			Usage map[string]any
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if len(c.Choices) == 0 {
			usage = c.Usage
			continue
		}
		text.WriteString(c.Choices[0].Text)
		if c.Choices[0].FinishReason != nil {
			final = c.FSPO
		}
	}
	if got, want := text.String(), whole.Choices[0].Text; got != want {
		t.Errorf("streamed text %q, unstreamed %q", got, want)
	}
	if final == nil || final["shots"] != 1.0 || final["personalized"] != true {
		t.Errorf("final chunk fspo = %v", final)
	}
	if usage == nil || usage["completion_tokens"] != float64(whole.Usage.CompletionTokens) {
		t.Errorf("usage chunk %v, want %d completion tokens", usage, whole.Usage.CompletionTokens)
	}
}

// TestStudyResultsCSVAPI: the admin API's CSV export
// (GET /api/studies/{id}/results.csv with the admin bearer) holds one row
// per vote; unknown studies are 404.
func TestStudyResultsCSVAPI(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "csv", "questions": []string{"=1+1 sum"},
		"label_questions": []string{"label me"}, "pairs": 1, "systems": []string{"fspo", "base"}})
	if code != 201 {
		t.Fatalf("create study: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	_, tok := e.user("participant")
	b := newBrowser(t, e)
	b.signin(tok)
	_, page := b.get("/study/" + id)
	form := hidden(page)
	form.Set("pick", "a")
	b.post("/label", form)
	_, page = b.get("/study/" + id)
	if code, _ := b.post("/study/"+id+"/vote", url.Values{"q": {hidden(page).Get("q")}, "side": {"left"}}); code >= 400 {
		t.Fatalf("vote: %d", code)
	}

	code, body, hdr := e.do("GET", "/api/studies/"+id+"/results.csv", adminToken, nil)
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if code != 200 || err != nil || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("results.csv = %d %q: %v", code, hdr.Get("Content-Type"), err)
	}
	if len(rows) != 2 || rows[0][0] != "study" || rows[1][0] != id || rows[1][3] != "'=1+1 sum" {
		t.Errorf("rows %q; want a header and one vote, the formula-like question defused", rows)
	}
	if w := rows[1][6]; w != "fspo" && w != "base" {
		t.Errorf("winner %q is not a system", w)
	}
	if code, _, _ := e.do("GET", "/api/studies/s_missing/results.csv", adminToken, nil); code != 404 {
		t.Errorf("unknown study's CSV = %d, want 404", code)
	}
}

// TestCOTDescriptionWithStoriesModel: with the real stories260K engine in
// the COT variant, the description the engine infers reaches the caller in
// the completion's fspo.user_description and in GET /api/me/description,
// equal to the engine's own output for the same shots (greedy).
func TestCOTDescriptionWithStoriesModel(t *testing.T) {
	me, _ := storiesEngine(t, episode.COT)
	e := newEnv(t, func(c *serve.Config) { c.Engine, c.MaxTokens = me, 16 })
	_, tok := e.user("alice")
	shot := serve.Shot{Prompt: "Once upon a time,", Chosen: "there was a happy dog named Max.", Rejected: "there was a sad cat."}
	e.pref(tok, shot.Prompt, shot.Chosen, shot.Rejected)
	ctx := t.Context()

	want, err := me.Answer(ctx, serve.AnswerRequest{Question: "One day,", Shots: []serve.Shot{shot}, Personalize: true,
		MaxTokens: 16, Temperature: 0, TopP: 1})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.do("POST", "/v1/chat/completions", tok, map[string]any{"max_tokens": 16, "temperature": 0,
		"messages": []map[string]string{{"role": "user", "content": "One day,"}}})
	r := decode[chatResp](t, body)
	if code != 200 || r.FSPO.Shots != 1 || r.FSPO.UserDescription != want.Description || r.Choices[0].Message.Content != want.Text {
		t.Errorf("COT chat = %d %s\nwant description %q, text %q", code, body, want.Description, want.Text)
	}
	t.Logf("untrained COT output: description %q, response %q", want.Description, want.Text)
	if want.Description == "" {
		t.Errorf("the COT engine inferred an empty description; the test cannot tell it reached the response")
	}

	wantDesc, err := me.Describe(ctx, []serve.Shot{shot})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ = e.do("GET", "/api/me/description", tok, nil)
	if d := decode[map[string]any](t, body); code != 200 || d["description"] != wantDesc || d["shots"] != 1.0 {
		t.Errorf("GET /api/me/description = %d %s, want %q from 1 shot", code, body, wantDesc)
	}
}

// TestWebStudyCreate: the admin creates a study with the web form
// (POST /studies) and it is listed on /studies; a signed-in user is refused
// (403) and a malformed form gets a 400 page naming the field.
func TestWebStudyCreate(t *testing.T) {
	e := newEnv(t, nil)
	form := func() url.Values {
		return url.Values{"name": {"web study"}, "questions": {"q one\nq two"}, "label_questions": {"label me"},
			"pairs": {"1"}, "system_a": {"fspo"}, "system_b": {"base"}}
	}
	_, tok := e.user("participant")
	u := newBrowser(t, e)
	u.signin(tok)
	u.get("/studies")
	if code, _ := u.post("/studies", form()); code != http.StatusForbidden {
		t.Errorf("a user creating a study = %d, want 403", code)
	}

	admin := newBrowser(t, e)
	admin.signin(adminToken)
	admin.get("/studies")
	bad := form()
	bad.Set("pairs", "two")
	if code, page := admin.post("/studies", bad); code != http.StatusBadRequest || !strings.Contains(page, "pairs must be a whole number") {
		t.Errorf("pairs=two: %d, want 400 naming pairs", code)
	}
	code, page := admin.post("/studies", form())
	if code != 200 || !strings.Contains(page, "web study") {
		t.Errorf("create study by form: %d, the studies page does not list it", code)
	}
	if _, page := u.get("/studies"); !strings.Contains(page, "web study") {
		t.Errorf("the participant's studies page does not list the new study")
	}
}
