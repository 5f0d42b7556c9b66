package llmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url, body string) (*http.Response, []byte, error) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestFaultsOnTheWire(t *testing.T) {
	tests := []struct {
		name       string
		reply      Reply
		wantStatus int
		wantHeader [2]string
		wantReadOK bool
		wantJSON   bool
	}{
		{"ok", Reply{Text: "hi"}, 200, [2]string{}, true, true},
		{"429 whole seconds", Reply{Fault: RateLimit, RetryAfter: 2 * time.Second}, 429, [2]string{"Retry-After", "2"}, true, true},
		{"429 milliseconds", Reply{Fault: RateLimit, RetryAfter: 1500 * time.Millisecond}, 429, [2]string{"Retry-After-Ms", "1500"}, true, true},
		{"500", Reply{Fault: ServerError}, 500, [2]string{}, true, true},
		{"truncated", Reply{Fault: Truncated}, 200, [2]string{}, false, false},
		{"invalid json", Reply{Fault: InvalidJSON}, 200, [2]string{}, true, false},
		{"empty choices", Reply{Fault: EmptyChoices}, 200, [2]string{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := New(func(ChatRequest) Reply { return tt.reply })
			defer srv.Close()
			resp, body, err := post(t, srv.BaseURL+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}]}`)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
				t.Errorf("%s = %q, want %q", h[0], resp.Header.Get(h[0]), h[1])
			}
			if (err == nil) != tt.wantReadOK {
				t.Errorf("read error %v, want ok=%v", err, tt.wantReadOK)
			}
			if json.Valid(body) != tt.wantJSON {
				t.Errorf("body valid JSON = %v, want %v: %s", json.Valid(body), tt.wantJSON, body)
			}
		})
	}
}

func TestAttemptCounting(t *testing.T) {
	srv := New(FailFirst(1, ServerError, 0, Echo))
	defer srv.Close()
	body := `{"model":"m","messages":[{"role":"user","content":"x"}]}`
	for i, want := range []int{500, 200, 200} {
		if resp, _, _ := post(t, srv.BaseURL+"/chat/completions", body); resp.StatusCode != want {
			t.Errorf("attempt %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Attempt != 1 || reqs[2].Attempt != 3 || reqs[0].Last() != "x" {
		t.Errorf("requests %+v", reqs)
	}
}

func TestEmbeddings(t *testing.T) {
	srv := New(nil)
	defer srv.Close()
	_, body, err := post(t, srv.BaseURL+"/embeddings", `{"model":"e","input":"one text"}`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want, _ := HashEmbed([]string{"one text"})
	if len(got.Data) != 1 || len(got.Data[0].Embedding) != 8 || got.Data[0].Embedding[3] != want[0][3] {
		t.Errorf("got %+v", got)
	}
	if srv.EmbedRequests() != 1 {
		t.Errorf("embed requests %d", srv.EmbedRequests())
	}
}
