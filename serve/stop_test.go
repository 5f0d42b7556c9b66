package serve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"fspo/episode"
	"fspo/serve"
)

// TestStopScanner: stop texts split across pieces are found, the earliest
// of several wins, held-back text that does not become a stop is released,
// and the stop text is never emitted.
func TestStopScanner(t *testing.T) {
	for _, tc := range []struct {
		stops  []string
		pieces []string
		want   string
		hit    bool
	}{
		{[]string{"END"}, []string{"abc E", "N", "D rest"}, "abc ", true},
		{[]string{"END"}, []string{"abc E", "NX", " EN"}, "abc ENX EN", false},
		{[]string{"two", "one"}, []string{"zero one two"}, "zero ", true},
		{[]string{"\n\n"}, []string{"line\n", "\n", "next"}, "line", true},
		{[]string{"é"}, []string{"caf", "é au lait"}, "caf", true},
		{nil, []string{"no ", "stops"}, "no stops", false},
	} {
		sc := serve.NewStopScanner(tc.stops)
		var emitted strings.Builder
		for _, p := range tc.pieces {
			e, hit := sc.Push(p)
			emitted.WriteString(e)
			if hit {
				break
			}
		}
		emitted.WriteString(sc.Flush())
		if emitted.String() != tc.want || sc.Text() != tc.want || sc.Hit() != tc.hit {
			t.Errorf("stops %q over %q: emitted %q, text %q, hit %v; want %q, hit %v", tc.stops, tc.pieces, emitted.String(), sc.Text(), sc.Hit(), tc.want, tc.hit)
		}
	}
}

// sseText concatenates a stream's text pieces and returns the finish reason.
func sseText(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var text strings.Builder
	finish := ""
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Text         string
				Delta        struct{ Content string }
				FinishReason *string `json:"finish_reason"`
			}
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("chunk %s: %v", line, err)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text + ch.Delta.Content)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return text.String(), finish
}

// TestStopOnTheModel: on stories260K (greedy), "stop" cuts the answer just
// before the first stop text in both routes, streamed and not, with
// finish_reason "stop" and fewer completion tokens; the stop text is not
// sent. Bad "stop" values are refused with 400.
func TestStopOnTheModel(t *testing.T) {
	eng, _ := storiesEngine(t, episode.Plain)
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.MaxTokens = 60 })
	_, tok := e.user("alice")
	req := func(extra map[string]any, chat bool) map[string]any {
		r := map[string]any{"temperature": 0, "max_tokens": 60, "personalize": false}
		if chat {
			r["messages"] = []map[string]string{{"role": "user", "content": "Once upon a time, there was a cat"}}
		} else {
			r["prompt"] = "Once upon a time, there was a cat"
		}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	type out struct {
		Choices []struct {
			Text         string
			Message      struct{ Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	for _, chat := range []bool{false, true} {
		path := "/v1/completions"
		if chat {
			path = "/v1/chat/completions"
		}
		code, body, _ := e.do("POST", path, tok, req(nil, chat))
		full := decode[out](t, body)
		if code != 200 || len(full.Choices) != 1 {
			t.Fatalf("%s without stop: %d %s", path, code, body)
		}
		text := full.Choices[0].Text + full.Choices[0].Message.Content
		// a stop text from the middle of the greedy answer: its second word
		words := strings.Fields(text)
		if len(words) < 6 {
			t.Fatalf("greedy answer too short for the test: %q", text)
		}
		stop := " " + words[3]
		cut := strings.Index(text, stop)
		want := text[:cut]
		for _, stopValue := range []any{stop, []string{"never appears", stop}} {
			code, body, _ = e.do("POST", path, tok, req(map[string]any{"stop": stopValue}, chat))
			got := decode[out](t, body)
			if code != 200 || len(got.Choices) != 1 {
				t.Fatalf("%s with stop %q: %d %s", path, stopValue, code, body)
			}
			c := got.Choices[0]
			if gotText := c.Text + c.Message.Content; gotText != want || c.FinishReason != "stop" ||
				got.Usage.CompletionTokens >= full.Usage.CompletionTokens {
				t.Errorf("%s stop %q: %q finish %q, %d tokens; want %q, stop, fewer than %d",
					path, stopValue, gotText, c.FinishReason, got.Usage.CompletionTokens, want, full.Usage.CompletionTokens)
			}
		}
		code, body, _ = e.do("POST", path, tok, req(map[string]any{"stop": stop, "stream": true}, chat))
		if streamed, finish := sseText(t, body); code != 200 || streamed != want || finish != "stop" {
			t.Errorf("%s streamed with stop %q: %d %q finish %q; want %q, stop", path, stop, code, streamed, finish, want)
		}
	}
	for _, bad := range []struct {
		stop any
		msg  string
	}{
		{[]string{"a", "b", "c", "d", "e"}, "the limit is 4"},
		{3, `"stop" must be a string`},
		{[]string{"ok", ""}, `"stop[1]" is empty`},
		{"nul\x00", `"stop[0]" contains a NUL`},
	} {
		code, body, _ := e.do("POST", "/v1/completions", tok, req(map[string]any{"stop": bad.stop}, false))
		var got struct{ Error struct{ Message string } }
		if code != http.StatusBadRequest || json.Unmarshal(body, &got) != nil || !strings.Contains(got.Error.Message, bad.msg) {
			t.Errorf("stop %#v: %d %s, want 400 with %q", bad.stop, code, body, bad.msg)
		}
	}
}

// TestShotCountIsHonest: with 8 stored preferences of ~430 characters, only
// a few fit stories260K's 512 positions; "fspo.shots" reports the examples
// actually in the prompt and "shots_left_out" the rest, and the Ask page
// says the same.
func TestShotCountIsHonest(t *testing.T) {
	eng, _ := storiesEngine(t, episode.Plain)
	e := newEnv(t, func(c *serve.Config) { c.Engine = eng; c.MaxTokens = 16 })
	_, tok := e.user("alice")
	long := strings.Repeat("The little dog ran to the park and played with a red ball all day. ", 2)
	for i := range 8 {
		e.pref(tok, "Tell me a story about a dog", long+"Happy end "+itoa(int64(i)), long+"Sad end "+itoa(int64(i)))
	}
	var inPrompt []int
	for _, n := range []int{1, 2, 4, 8} {
		code, body, _ := e.do("POST", "/v1/completions", tok, map[string]any{"prompt": "Once upon a time", "shots": n, "max_tokens": 16, "seed": 1})
		var got struct {
			Fspo struct {
				Shots        int `json:"shots"`
				ShotsLeftOut int `json:"shots_left_out"`
			}
		}
		if code != 200 || json.Unmarshal(body, &got) != nil {
			t.Fatalf("shots %d: %d %s", n, code, body)
		}
		if got.Fspo.Shots+got.Fspo.ShotsLeftOut != n || got.Fspo.Shots < 1 {
			t.Errorf("shots %d: reported %d in the prompt + %d left out, want %d in all", n, got.Fspo.Shots, got.Fspo.ShotsLeftOut, n)
		}
		inPrompt = append(inPrompt, got.Fspo.Shots)
	}
	if inPrompt[3] >= 8 {
		t.Fatalf("all 8 long shots fit the 512 positions (%v): the test needs longer ones", inPrompt)
	}
	b := newBrowser(t, e)
	b.signin(tok)
	_, page := b.post("/ask", map[string][]string{"question": {"Once upon a time"}, "personalize": {"1"}})
	want := "Personalized with " + itoa(int64(inPrompt[3])) + " of your preferences (" + itoa(int64(8-inPrompt[3])) + " more left out"
	if !strings.Contains(page, want) {
		t.Errorf("Ask page does not say %q:\n%s", want, page)
	}
}
