package serve_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"fspo/internal/testenv"
	"fspo/serve"
)

// chromium finds the browser: FSPO_TEST_CHROMIUM (set by .ci/services.sh)
// or chromium on PATH; without one the test skips, or fails under CI.
func chromium(t *testing.T) string {
	return testenv.Chromium(t)
}

// screenshotPath is where the browser test saves its pictures of the
// pages: $FSPO_SCREENSHOT_DIR, or the system temp folder.
func screenshotPath(page string) string {
	dir := os.Getenv("FSPO_SCREENSHOT_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "fspo-serve-"+page+".png")
}

// chrome is a headless Chromium for a test, with its helpers.
type chrome struct {
	t   *testing.T
	ctx context.Context
}

// newChrome starts Chromium (closed at the end of the test); its actions
// share a 90 s budget.
func newChrome(t *testing.T, bin string) *chrome {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// The first Run starts the browser; it must not carry a timeout (chromedp.Run docs).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancel(); cancelAlloc() })
	return &chrome{t: t, ctx: ctx}
}

// screenshot saves the page (screenshotPath).
func (b *chrome) screenshot(page string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath(page), shot, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot of the %s page: %s", page, screenshotPath(page))
}

// text is the text of the element sel.
func (b *chrome) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// do runs steps, failing the test with what on an error.
func (b *chrome) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// TestBrowser drives headless Chromium through sign-in, labelling, asking,
// a study (labelling then blind comparisons) and the admin's results page.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	e := newEnv(t, nil)
	_, tok := e.user("Robin")
	code, body, _ := e.do("POST", "/api/studies", adminToken, map[string]any{"name": "Bedtime stories",
		"questions": []string{"Tell me a story about a fox.", "Tell me a story about the moon."}, "pairs": 1, "systems": []string{"fspo", "base"}})
	if code != 201 {
		t.Fatalf("create study: %d %s", code, body)
	}

	b := newChrome(t, bin)
	browseSignIn(t, b, e.srv.URL, tok)
	browseLabelAndAsk(t, b, e.srv.URL)
	browseDeletePreference(t, b, e.srv.URL)
	browseStudy(t, b, e.srv.URL)
	browseAdminResults(t, b, e.srv.URL)
}

// browseSignIn opens the server at base, checks the sign-in page says what
// a token is, and signs in with tok.
func browseSignIn(t *testing.T, b *chrome, base, tok string) {
	t.Helper()
	b.do("open", chromedp.Navigate(base+"/"))
	b.do("sign-in page", chromedp.WaitVisible(chromedp.ID("token-help")))
	b.screenshot("signin")
	if h := b.text("#token-help"); !strings.Contains(h, "fspo_") || !strings.Contains(h, "gives it to you") {
		t.Errorf("sign-in help = %q", h)
	}
	b.do("sign in",
		chromedp.SendKeys(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")))
}

// browseLabelAndAsk labels a pair for the user's own question and checks
// the personalized answer then uses it as a shot.
func browseLabelAndAsk(t *testing.T, b *chrome, base string) {
	t.Helper()
	b.do("label a pair",
		chromedp.Navigate(base+"/label"),
		chromedp.SendKeys(chromedp.ID("own-question"), "A story about a brave mouse"),
		chromedp.Click(chromedp.ID("get-pair")),
		chromedp.WaitVisible(chromedp.ID("answer-b")))
	if q := b.text("#question"); q != "A story about a brave mouse" {
		t.Errorf("label page question = %q", q)
	}
	b.screenshot("label")
	b.do("pick b", chromedp.Click(chromedp.ID("pick-b")), chromedp.WaitVisible(chromedp.ID("flash")))

	b.do("ask",
		chromedp.Navigate(base+"/ask"),
		chromedp.SendKeys(chromedp.ID("ask-question"), "What should I read tonight?"),
		chromedp.Click(chromedp.ID("ask")),
		chromedp.WaitVisible(chromedp.ID("answer")))
	if a := b.text("#answer"); !strings.Contains(a, "personalized with 1 shots (last: B: a bold answer") {
		t.Errorf("personalized answer = %q", a)
	}
}

// browseDeletePreference checks the preferences table, then deletes the
// preference: asked first, kept on cancel, gone once confirmed.
func browseDeletePreference(t *testing.T, b *chrome, base string) {
	t.Helper()
	b.do("preferences", chromedp.Navigate(base+"/prefs"), chromedp.WaitVisible(chromedp.ID("prefs")))
	if p := b.text("#prefs"); !strings.Contains(p, "A story about a brave mouse") {
		t.Errorf("preferences table = %q", p)
	}
	b.do("delete asks first", chromedp.Click(chromedp.CSS("button.delete")), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	b.screenshot("confirm-delete")
	b.do("cancel keeps it", chromedp.Click(chromedp.ID("cancel-delete")), chromedp.WaitVisible(chromedp.ID("prefs")))
	b.do("delete confirmed", chromedp.Click(chromedp.CSS("button.delete")), chromedp.WaitVisible(chromedp.ID("confirm-delete")),
		chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.ID("no-prefs")))
}

// browseStudy joins the study, labels its pair and picks the personalized
// answer on both comparison pages.
func browseStudy(t *testing.T, b *chrome, base string) {
	t.Helper()
	b.do("join the study",
		chromedp.Navigate(base+"/studies"),
		chromedp.Click(chromedp.CSS("a.join")),
		chromedp.WaitVisible(chromedp.ID("pick-a")))
	b.do("study label pair", chromedp.Click(chromedp.ID("pick-a")), chromedp.WaitVisible(chromedp.ID("step-1")))
	for i := range 2 {
		left := b.text("#answer-left")
		if i == 0 {
			b.screenshot("study")
		}
		pick := "pick-right"
		if strings.Contains(left, "personalized") {
			pick = "pick-left"
		}
		// Wait for an element only the next page has: both comparison pages have the answers.
		next := "step-2"
		if i == 1 {
			next = "study-done"
		}
		b.do("compare", chromedp.Click(chromedp.ID(pick)), chromedp.WaitVisible(chromedp.ID(next)))
	}
}

// browseAdminResults signs in as the admin and checks the study's results
// page counts both picks for fspo.
func browseAdminResults(t *testing.T, b *chrome, base string) {
	t.Helper()
	b.do("admin results",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Navigate(base+"/studies"),
		chromedp.Click(chromedp.CSS("a.results")),
		chromedp.WaitVisible(chromedp.ID("winrate")))
	b.screenshot("results")
	if w := b.text("#winrate"); w != "100.0%" {
		t.Errorf("win rate on the results page = %q, want 100.0%%", w)
	}
	if w := b.text("#wins"); w != "2" {
		t.Errorf("wins = %q, want 2", w)
	}
}

// TestBrowserActiveLabelling: with a ranking model and a committee, the
// labelling page asks the pair chosen to tell the most about the user and
// shows the description the model answers from, with its edit box.
func TestBrowserActiveLabelling(t *testing.T) {
	bin := chromium(t)
	eng := rankingEngine(t)
	eng.Loss = "ipo"
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.Committee = committeeOf; c.MaxTokens = 24 })
	_, tok := e.user("Robin")
	e.pref(tok, "Once upon a time", "a happy dog ran to the pond.", "a sad cat sat.")
	if code, body, _ := e.do("PUT", "/api/me/description", tok, map[string]string{"description": "Loves happy stories about dogs and the pond."}); code != 200 {
		t.Fatalf("set description: %d %s", code, body)
	}
	b := newChrome(t, bin)
	b.do("sign in", chromedp.Navigate(e.srv.URL+"/"), chromedp.SendKeys(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("signout")))
	b.do("ask for a pair", chromedp.Navigate(e.srv.URL+"/label"), chromedp.SendKeys(chromedp.ID("own-question"), "One day, Tom"),
		chromedp.Click(chromedp.ID("get-pair")), chromedp.WaitVisible(chromedp.ID("pair-why")))
	if why := b.text("#pair-why"); !strings.Contains(why, "tells the most about you") {
		t.Errorf("the page does not say the pair was chosen actively: %q", why)
	}
	if d := b.text("#description"); d != "Loves happy stories about dogs and the pond." {
		t.Errorf("description shown = %q", d)
	}
	b.screenshot("label-active")
	b.do("pick a", chromedp.Click(chromedp.ID("pick-a")), chromedp.WaitVisible(chromedp.ID("flash")))
	n, err := e.store.CountPreferences(t.Context(), decodeUserID(t, e, tok), "")
	if err != nil || n != 2 {
		t.Errorf("%d preferences stored (%v), want 2", n, err)
	}
}
