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
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first Run starts the browser; it must not carry a timeout (chromedp.Run docs).
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/")); err != nil {
		t.Fatalf("start chromium %s: %v", bin, err)
	}
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	screenshot := func(page string) {
		t.Helper()
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotPath(page), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the %s page: %s", page, screenshotPath(page))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	do("sign-in page", chromedp.WaitVisible(chromedp.ID("token-help")))
	screenshot("signin")
	if h := text("#token-help"); !strings.Contains(h, "fspo_") || !strings.Contains(h, "gives it to you") {
		t.Errorf("sign-in help = %q", h)
	}
	do("sign in",
		chromedp.SendKeys(chromedp.ID("token"), tok),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")))

	do("label a pair",
		chromedp.Navigate(e.srv.URL+"/label"),
		chromedp.SendKeys(chromedp.ID("own-question"), "A story about a brave mouse"),
		chromedp.Click(chromedp.ID("get-pair")),
		chromedp.WaitVisible(chromedp.ID("answer-b")))
	if q := text("#question"); q != "A story about a brave mouse" {
		t.Errorf("label page question = %q", q)
	}
	screenshot("label")
	do("pick b", chromedp.Click(chromedp.ID("pick-b")), chromedp.WaitVisible(chromedp.ID("flash")))

	do("ask",
		chromedp.Navigate(e.srv.URL+"/ask"),
		chromedp.SendKeys(chromedp.ID("ask-question"), "What should I read tonight?"),
		chromedp.Click(chromedp.ID("ask")),
		chromedp.WaitVisible(chromedp.ID("answer")))
	if a := text("#answer"); !strings.Contains(a, "personalized with 1 shots (last: B: a bold answer") {
		t.Errorf("personalized answer = %q", a)
	}

	do("preferences", chromedp.Navigate(e.srv.URL+"/prefs"), chromedp.WaitVisible(chromedp.ID("prefs")))
	if p := text("#prefs"); !strings.Contains(p, "A story about a brave mouse") {
		t.Errorf("preferences table = %q", p)
	}
	do("delete asks first", chromedp.Click(chromedp.CSS("button.delete")), chromedp.WaitVisible(chromedp.ID("confirm-delete")))
	screenshot("confirm-delete")
	do("cancel keeps it", chromedp.Click(chromedp.ID("cancel-delete")), chromedp.WaitVisible(chromedp.ID("prefs")))
	do("delete confirmed", chromedp.Click(chromedp.CSS("button.delete")), chromedp.WaitVisible(chromedp.ID("confirm-delete")),
		chromedp.Click(chromedp.ID("confirm-delete")), chromedp.WaitVisible(chromedp.ID("no-prefs")))

	do("join the study",
		chromedp.Navigate(e.srv.URL+"/studies"),
		chromedp.Click(chromedp.CSS("a.join")),
		chromedp.WaitVisible(chromedp.ID("pick-a")))
	do("study label pair", chromedp.Click(chromedp.ID("pick-a")), chromedp.WaitVisible(chromedp.ID("step-1")))
	for i := range 2 {
		left := text("#answer-left")
		if i == 0 {
			screenshot("study")
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
		do("compare", chromedp.Click(chromedp.ID(pick)), chromedp.WaitVisible(chromedp.ID(next)))
	}

	do("admin results",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("signout")),
		chromedp.Navigate(e.srv.URL+"/studies"),
		chromedp.Click(chromedp.CSS("a.results")),
		chromedp.WaitVisible(chromedp.ID("winrate")))
	screenshot("results")
	if w := text("#winrate"); w != "100.0%" {
		t.Errorf("win rate on the results page = %q, want 100.0%%", w)
	}
	if w := text("#wins"); w != "2" {
		t.Errorf("wins = %q, want 2", w)
	}
}
