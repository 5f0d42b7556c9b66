package serve_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"fspo/serve"
	"fspo/serve/servetest"
	"fspo/store"
)

// browser is a cookie-keeping HTTP client that reads form tokens from pages.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, e *env) *browser {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client()
	c.Jar = jar
	return &browser{t: t, base: e.srv.URL, c: &c}
}

var (
	csrfRe   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)
)

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	if form.Get("csrf") == "" && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, string(body)
}

// hidden returns a page's hidden form fields, unescaped.
func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

func (b *browser) signin(token string) {
	b.t.Helper()
	b.get("/")
	if code, body := b.post("/signin", url.Values{"token": {token}}); code != 200 || !strings.Contains(body, "Sign out") {
		b.t.Fatalf("sign in: %d %s", code, body)
	}
}

func TestWebLabelAskAndDelete(t *testing.T) {
	e := newEnv(t, nil)
	_, tok := e.user("alice")
	b := newBrowser(t, e)
	if code, body := b.post("/signin", url.Values{"token": {tok}, "csrf": {"forged"}}); code != 403 {
		t.Errorf("sign-in with a forged form token = %d %s, want 403", code, body)
	}
	if _, page := b.get("/"); !strings.Contains(page, `id="token-help"`) || !strings.Contains(page, "fspo_") {
		t.Errorf("the sign-in page does not say what a token is and where it comes from:\n%s", page)
	}
	if code, body := b.post("/signin", url.Values{"token": {"wrong"}}); code != 401 || !strings.Contains(body, "not valid") {
		t.Errorf("sign-in with a wrong token = %d", code)
	}
	b.signin(tok)

	_, page := b.get("/label?question=" + url.QueryEscape(`Tell me about <script>x</script>`))
	if strings.Contains(page, "<script>x</script>") || !strings.Contains(page, "&lt;script&gt;x&lt;/script&gt;") {
		t.Errorf("the question is not HTML-escaped on the label page")
	}
	if !strings.Contains(page, `id="pair-why"`) {
		t.Errorf("the label page does not say how the pair was chosen:\n%s", page)
	}
	form := hidden(page)
	form.Set("pick", "b")
	if code, body := b.post("/label", form); code != 200 || !strings.Contains(body, "Saved your preference") {
		t.Fatalf("label post: %d %s", code, body)
	}
	if code, body := b.post("/label", form); code != http.StatusConflict || !strings.Contains(body, "already answered") {
		t.Errorf("the same pair posted twice: %d %s", code, body)
	}
	prefs, err := e.store.Preferences(t.Context(), decodeUserID(t, e, tok), storePrefQuery())
	if err != nil || len(prefs) != 1 || !strings.HasPrefix(prefs[0].Chosen, "B: ") || !strings.HasPrefix(prefs[0].Rejected, "A: ") || prefs[0].Source != "pair:"+form.Get("pair") {
		t.Fatalf("stored preferences %+v, %v: want B chosen over A from the page's pair", prefs, err)
	}

	if code, body := b.post("/ask", url.Values{"question": {"a question"}, "personalize": {"1"}}); code != 200 ||
		!strings.Contains(body, "personalized with 1 shots") || !strings.Contains(body, "What the model thinks you like") {
		t.Errorf("ask: %d %s", code, body)
	}
	if _, body := b.post("/ask", url.Values{"question": {"a question"}}); !strings.Contains(body, "base answer") {
		t.Errorf("ask without personalization: %s", body)
	}

	_, page = b.get("/prefs")
	if !strings.Contains(page, "B: a bold answer") {
		t.Errorf("prefs page misses the preference")
	}
	checkWebDeleteOwnOnly(t, e, b, prefs[0].ID)
}

// checkWebDeleteOwnOnly checks deleting alice's preference id on the web:
// another user cannot (nor with alice's form token, nor cross-origin with
// the right one), alice is asked first and then it is gone; signed out, the
// pages lead to the sign-in form.
func checkWebDeleteOwnOnly(t *testing.T, e *env, b *browser, id int64) {
	t.Helper()
	// Another user cannot delete it.
	_, bobTok := e.user("bob")
	bob := newBrowser(t, e)
	bob.signin(bobTok)
	if code, _ := bob.post(fmt.Sprintf("/prefs/%d/delete", id), url.Values{"confirm": {"1"}}); code != 404 {
		t.Errorf("bob deleting alice's preference on the web = %d, want 404", code)
	}
	// Alice's form token does not work in bob's session.
	if code, body := bob.post(fmt.Sprintf("/prefs/%d/delete", id), url.Values{"csrf": {b.csrf}, "confirm": {"1"}}); code != 403 || !strings.Contains(body, "<h1>Form expired</h1>") {
		t.Errorf("bob posting with alice's form token = %d %s, want 403 as an HTML page", code, body)
	}
	// A cross-origin post is refused even with the right token.
	req, _ := http.NewRequest("POST", e.srv.URL+fmt.Sprintf("/prefs/%d/delete", id), strings.NewReader("csrf="+b.csrf))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := b.c.Do(req); err != nil || resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("cross-origin delete: %v %v, want 403", resp.StatusCode, err)
	}
	// Delete asks first, showing the preference; nothing is removed until confirmed.
	code, body := b.post(fmt.Sprintf("/prefs/%d/delete", id), url.Values{})
	if code != 200 || !strings.Contains(body, "Delete this preference?") || !strings.Contains(body, `id="confirm-delete"`) || !strings.Contains(body, "B: a bold answer") {
		t.Errorf("delete own, first step: %d %s, want a confirmation page showing the preference", code, body)
	}
	if _, page := b.get("/prefs"); !strings.Contains(page, "B: a bold answer") {
		t.Errorf("the preference is gone before the deletion was confirmed")
	}
	if code, body := b.post(fmt.Sprintf("/prefs/%d/delete", id), url.Values{"confirm": {"1"}}); code != 200 || !strings.Contains(body, "No preferences yet") {
		t.Errorf("delete own, confirmed: %d %s", code, body)
	}
	// Signed out, the pages send you to sign in.
	b.post("/signout", url.Values{})
	if _, body := b.get("/prefs"); !strings.Contains(body, `id="signin"`) {
		t.Errorf("after sign-out /prefs does not lead to the sign-in form")
	}
}

// TestWebStudyFlow: the admin creates a study, a participant labels the
// pairs, then picks the personalized answer each time wherever it is shown;
// the results must count every pick for system A ("fspo").
func TestWebStudyFlow(t *testing.T) {
	e := newEnv(t, nil)
	questions := []string{"q one", "q two", "q three", "q four"}
	id := createWebStudy(t, e, questions)

	_, tok := e.user("participant")
	b := newBrowser(t, e)
	b.signin(tok)
	if code, _ := b.post("/study/"+id+"/vote", url.Values{"q": {"0"}, "side": {"left"}}); code != 409 {
		t.Errorf("voting before labelling = %d, want 409", code)
	}
	labelStudyPairs(t, b, id)
	sides := voteForPersonalized(t, b, id, len(questions))
	if _, page := b.get("/study/" + id); !strings.Contains(page, "Thank you") {
		t.Errorf("after all questions: not the thank-you page")
	}
	if _, page := b.get("/studies"); !strings.Contains(page, `class="done"`) || strings.Contains(page, "Take part") {
		t.Errorf("the studies list still offers a finished study:\n%s", page)
	}
	t.Logf("personalized answer shown on the left %d times, right %d times", sides["left"], sides["right"])
	checkStudyResultsAPI(t, e, id)
	if code, _, _ := e.do("GET", "/api/studies/"+id+"/results", tok, nil); code != 401 {
		t.Errorf("participant reading results = %d, want 401", code)
	}
	if code, _ := b.get("/study/" + id + "/results"); code != 403 {
		t.Errorf("participant opening the results page = %d, want 403", code)
	}
	checkStudyResultsPages(t, e, id)
}

// createWebStudy creates the study of questions (one labelling question, 2
// pairs, fspo against base) as the admin and checks that creating one
// needs the admin token and known systems; it returns the study's id.
func createWebStudy(t *testing.T, e *env, questions []string) string {
	t.Helper()
	code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "pilot", "questions": questions,
		"label_questions": []string{"label me"}, "pairs": 2, "systems": []string{"fspo", "base"}})
	if code != 201 {
		t.Fatalf("create study: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	if code, _, _ := e.do("POST", "/api/studies", "", map[string]any{"name": "x"}); code != 401 {
		t.Errorf("create study without the admin token = %d", code)
	}
	if code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "x", "questions": []string{"q"}, "systems": []string{"fspo", "gpt"}}); code != 400 || !strings.Contains(decode[struct{ Error struct{ Message string } }](t, body).Error.Message, `unknown system "gpt"`) {
		t.Errorf("study with an unknown system = %d %s", code, body)
	}
	return id
}

// labelStudyPairs labels the study's 2 pairs in the browser b, checking
// each step is the labelling page.
func labelStudyPairs(t *testing.T, b *browser, id string) {
	t.Helper()
	for step := 1; step <= 2; step++ {
		_, page := b.get("/study/" + id)
		if !strings.Contains(page, fmt.Sprintf("label pair %d of 2", step)) || !strings.Contains(page, "label me") {
			t.Fatalf("step %d: not the labelling page:\n%s", step, page)
		}
		form := hidden(page)
		form.Set("pick", "a")
		b.post("/label", form)
	}
}

// voteForPersonalized votes on each of the study's n comparison pages for
// the personalized answer (the side saying "personalized with 2 shots"),
// sending the last vote with the first question's sealed shot counts and
// each vote twice; it checks the forms carry only the sealed counts besides
// the question and token, all of one length. It returns the votes by side.
func voteForPersonalized(t *testing.T, b *browser, id string, n int) map[string]int {
	t.Helper()
	sides := map[string]int{}
	sealedLen, firstSealed := map[int]bool{}, ""
	for i := range n {
		_, page := b.get("/study/" + id)
		left := regexp.MustCompile(`id="answer-left">([^<]*)<`).FindStringSubmatch(page)
		if left == nil {
			t.Fatalf("not a comparison page:\n%s", page)
		}
		h := hidden(page)
		// the shot counts travel sealed: nothing on the page tells the sides apart
		if len(h) != 3 || h.Get("q") == "" || h.Get("csrf") == "" || h.Get("shots") == "" {
			t.Errorf("the comparison form carries more than the question, form token and sealed shot counts: %v", h)
		}
		sealedLen[len(h.Get("shots"))] = true
		side := "right"
		if strings.Contains(left[1], "personalized with 2 shots") {
			side = "left"
		}
		sides[side]++
		q, sealed := h.Get("q"), h.Get("shots")
		if i == 0 {
			firstSealed = sealed
		}
		if i == n-1 {
			sealed = firstSealed // another question's counts: recorded as unknown
		}
		b.post("/study/"+id+"/vote", url.Values{"q": {q}, "side": {side}, "shots": {sealed}})
		// A double click does not count twice.
		b.post("/study/"+id+"/vote", url.Values{"q": {q}, "side": {"left"}})
	}
	if len(sealedLen) != 1 {
		t.Errorf("sealed shot counts of different lengths %v: they could tell the sides apart", sealedLen)
	}
	return sides
}

// checkStudyResultsAPI checks the study's results through the API: 4 of 4
// votes for fspo, the one-sided p-value 1/16, and the shot counts of the 3
// answers whose counts were recorded.
func checkStudyResultsAPI(t *testing.T, e *env, id string) {
	t.Helper()
	code, body, _ := e.do("GET", "/api/studies/"+id+"/results", adminToken, nil)
	res := decode[map[string]any](t, body)
	if code != 200 || res["votes"] != 4.0 || res["wins_a"] != 4.0 || res["win_rate"] != 1.0 || res["participants"] != 1.0 {
		t.Errorf("results = %d %s, want 4 of 4 for fspo", code, body)
	}
	if p := res["p_value_one_sided"].(float64); p != 1.0/16 {
		t.Errorf("p-value = %v, want 1/16", p)
	}
	// the prompts actually used: fspo's answers had the 2 labels, base's none
	// (the last vote carried another question's counts: not recorded)
	wantShots := map[string]map[string]any{"shots_a": {"answers": 3.0, "mean_shots": 2.0, "mean_left_out": 0.0}, "shots_b": {"answers": 3.0, "mean_shots": 0.0, "mean_left_out": 0.0}}
	for k, want := range wantShots {
		if got, _ := res[k].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("results %s = %v, want %v", k, got, want)
		}
	}
}

// checkStudyResultsPages checks the admin's results page (win rate, shot
// counts) and CSV (a row per vote, shot counts on the 3 recorded ones).
func checkStudyResultsPages(t *testing.T, e *env, id string) {
	t.Helper()
	admin := newBrowser(t, e)
	admin.signin(adminToken)
	if _, page := admin.get("/study/" + id + "/results"); !strings.Contains(page, "100.0%") || !strings.Contains(page, `id="shots-a">2.0 on average (0.0 more left out for length), over 3 answers`) {
		t.Errorf("results page misses the win rate or the shot counts:\n%s", page)
	}
	code, csvText := admin.get("/study/" + id + "/results.csv")
	rows, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if code != 200 || err != nil || len(rows) != 5 || rows[0][0] != "study" || rows[1][6] != "fspo" || rows[1][7] != "true" || rows[0][9] != "left_shots" {
		t.Errorf("CSV = %d %q %v", code, rows, err)
	}
	shotCells := 0
	for _, row := range rows[1:] {
		if row[9] != "" {
			shotCells++
		}
	}
	if shotCells != 3 {
		t.Errorf("CSV rows with shot counts: %d, want 3 (the fourth vote's were not recorded)", shotCells)
	}
}

func decodeUserID(t *testing.T, e *env, token string) string {
	u, err := e.store.UserByToken(t.Context(), serve.HashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func storePrefQuery() store.PrefQuery { return store.PrefQuery{} }

func TestStudySystems(t *testing.T) {
	e := newEnv(t, func(c *serve.Config) { c.Engines = map[string]serve.Engine{"other": servetest.New("other")} })
	for _, tc := range []struct {
		systems []string
		want    int
		msg     string
	}{
		{[]string{"fspo", "base"}, 201, ""},
		{[]string{"other", "fake:base"}, 201, ""},
		{[]string{"other:fspo", "other:base"}, 201, ""},
		{[]string{"other:xyz", "base"}, 400, `mode "xyz"`},
		{[]string{"base", "base"}, 400, "both systems"},
		{[]string{"fspo", ""}, 400, `unknown system ""`},
	} {
		code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "s", "questions": []string{"q"}, "pairs": 1, "systems": tc.systems})
		if code != tc.want || (tc.msg != "" && !strings.Contains(decode[struct{ Error struct{ Message string } }](t, body).Error.Message, tc.msg)) {
			t.Errorf("systems %q: %d %s, want %d %q", tc.systems, code, body, tc.want, tc.msg)
		}
	}
	for _, body := range []map[string]any{
		{"name": "", "questions": []string{"q"}, "systems": []string{"fspo", "base"}},
		{"name": "s", "questions": []string{" ", ""}, "systems": []string{"fspo", "base"}},
		{"name": "s", "questions": []string{"q"}, "pairs": 51, "systems": []string{"fspo", "base"}},
	} {
		if code, out, _ := e.do("POST", "/api/studies", adminToken, body); code != 400 {
			t.Errorf("study %v: %d %s, want 400", body, code, out)
		}
	}
	if code, _, _ := e.do("GET", "/api/studies/s_missing/results", adminToken, nil); code != 404 {
		t.Errorf("results of an unknown study = %d, want 404", code)
	}
}

// TestStudyLabelsOnlyIssuedPairs: a study's "label N pairs first" step
// accepts only the pair the server showed that participant at that step:
// made-up texts, another participant's pair, a replay of a pair already
// saved and labels past the step are refused (400), and nothing is stored.
func TestStudyLabelsOnlyIssuedPairs(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "pilot", "questions": []string{"q one"},
		"label_questions": []string{"label me"}, "pairs": 2, "systems": []string{"fspo", "base"}})
	if code != 201 {
		t.Fatalf("create study: %d %s", code, body)
	}
	id := decode[map[string]any](t, body)["id"].(string)
	aliceID, alice := e.user("alice")
	_, bob := e.user("bob")
	a, b := newBrowser(t, e), newBrowser(t, e)
	a.signin(alice)
	b.signin(bob)
	count := func() int {
		n, err := e.store.CountPreferences(context.Background(), aliceID, "study:"+id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	refused := func(what string, form url.Values) {
		t.Helper()
		before := count()
		if code, page := a.post("/label", form); code != http.StatusBadRequest || !strings.Contains(page, "not the pair the study showed you") {
			t.Errorf("%s: %d, want 400 with the reason\n%s", what, code, page)
		}
		if count() != before {
			t.Errorf("%s: a preference was stored", what)
		}
	}
	_, page := a.get("/study/" + id)
	form := hidden(page)
	form.Set("pick", "a")
	if form.Get("sig") == "" {
		t.Fatalf("the study's labelling form has no signature:\n%s", page)
	}
	madeUp := url.Values{}
	for k, v := range form {
		madeUp[k] = v
	}
	madeUp.Set("a", "a text I wrote myself")
	refused("made-up answer", madeUp)
	noSig := url.Values{}
	for k, v := range form {
		noSig[k] = v
	}
	noSig.Del("sig")
	refused("no signature", noSig)
	_, bobPage := b.get("/study/" + id)
	bobForm := hidden(bobPage)
	bobForm.Set("pick", "a")
	bobForm.Set("csrf", a.csrf)
	refused("bob's pair", bobForm)

	if code, _ := a.post("/label", form); code != 200 || count() != 1 {
		t.Fatalf("the issued pair: %d, %d stored; want saved", code, count())
	}
	refused("the same pair again", form)
	_, page = a.get("/study/" + id)
	second := hidden(page)
	second.Set("pick", "b")
	if code, _ := a.post("/label", second); code != 200 || count() != 2 {
		t.Fatalf("the second issued pair: %d, %d stored", code, count())
	}
	refused("a label past the step", second)
}

// TestWebAccountDeletion: "Delete my account" asks first; confirmed, it
// removes the account and its preferences, signs out, and the token stops
// working.
func TestWebAccountDeletion(t *testing.T) {
	e := newEnv(t, nil)
	id, tok := e.user("alice")
	e.pref(tok, "q", "a", "b")
	b := newBrowser(t, e)
	b.signin(tok)
	if _, page := b.get("/prefs"); !strings.Contains(page, `id="delete-account"`) {
		t.Fatal("the preferences page has no account deletion")
	}
	if code, page := b.post("/account/delete", url.Values{}); code != 200 || !strings.Contains(page, `id="confirm-delete-account"`) {
		t.Fatalf("first step: %d, want the confirmation page\n%s", code, page)
	}
	if code, _, _ := e.do("GET", "/api/preferences", tok, nil); code != 200 {
		t.Fatalf("the account is gone before the deletion was confirmed: %d", code)
	}
	if code, page := b.post("/account/delete", url.Values{"confirm": {"1"}}); code != 200 || !strings.Contains(page, "Account deleted") {
		t.Fatalf("confirmed: %d\n%s", code, page)
	}
	if code, _, _ := e.do("GET", "/api/preferences", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("token after account deletion: %d, want 401", code)
	}
	if n, _ := e.store.CountPreferences(context.Background(), id, ""); n != 0 {
		t.Errorf("%d preferences left after account deletion", n)
	}
	if _, page := b.get("/"); !strings.Contains(page, `id="signin"`) {
		t.Error("still signed in after deleting the account")
	}
}
