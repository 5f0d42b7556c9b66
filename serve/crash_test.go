package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"fspo/serve"
	"fspo/serve/servetest"
	"fspo/store"
	"fspo/store/postgres"
	"fspo/store/sqlite"
)

// crashChildEnv names the SQLite file (or PostgreSQL URL) a re-executed test binary serves.
const crashChildEnv = "FSPO_SERVE_CRASH_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild serves on a loopback port until killed, announcing "ADDR host:port".
func crashChild(path string) error {
	ctx := context.Background()
	var st store.Store
	var err error
	if strings.HasPrefix(path, "postgres://") {
		st, err = postgres.Open(ctx, path)
	} else {
		st, err = sqlite.Open(ctx, path)
	}
	if err != nil {
		return err
	}
	s, err := serve.New(serve.Config{Store: st, Engine: servetest.New("fake"), AdminToken: adminToken, RateLimit: rate.Inf})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	return s.Serve(ctx, ln, time.Second)
}

func startChild(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	if err != nil || !ok {
		cmd.Process.Kill()
		t.Fatalf("child did not announce its address: %q %v", line, err)
	}
	return cmd, "http://" + addr
}

// postJSON posts body as JSON to url with a bearer token and, when key is
// not "", an Idempotency-Key; it returns the status, headers and body.
func postJSON(client *http.Client, url, token, key string, body any) (int, http.Header, []byte, error) {
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(js))
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, buf.Bytes(), err
}

// killWhilePosting has 8 clients each send prompts "w<client>-<i>" with
// send until it returns false (the server is gone), and kills the server
// child with SIGKILL after 400ms; it returns once every client stopped.
func killWhilePosting(t *testing.T, child *exec.Cmd, send func(prompt string) bool) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if !send(fmt.Sprintf("w%d-%d", w, i)) {
					return
				}
			}
		})
	}
	time.Sleep(400 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	wg.Wait()
}

// TestCrashKeepsAcknowledgedPreferences kills a server with SIGKILL while
// clients are posting preferences, restarts it on the same SQLite file and
// checks that every preference answered with 2xx survived.
func TestCrashKeepsAcknowledgedPreferences(t *testing.T) {
	db := filepath.Join(t.TempDir(), "crash.db")
	child, base := startChild(t, db)
	client := &http.Client{Timeout: 10 * time.Second}

	code, _, body, err := postJSON(client, base+"/api/users", adminToken, "", map[string]string{"name": "crash"})
	if err != nil || code != 201 {
		t.Fatalf("create user: %d %s %v", code, body, err)
	}
	var u struct{ Token string }
	json.Unmarshal(body, &u)

	var mu sync.Mutex
	acked := map[string]bool{}
	killWhilePosting(t, child, func(prompt string) bool {
		code, _, _, err := postJSON(client, base+"/api/preferences", u.Token, "", map[string]string{"prompt": prompt, "chosen": "a", "rejected": "b"})
		if err != nil {
			return false // the server is gone
		}
		if code/100 == 2 {
			mu.Lock()
			acked[prompt] = true
			mu.Unlock()
		}
		return true
	})
	if len(acked) < 10 {
		t.Fatalf("only %d preferences acknowledged before the kill; the test proves nothing", len(acked))
	}

	child2, base2 := startChild(t, db)
	defer func() { child2.Process.Kill(); child2.Wait() }()
	stored := countStoredPrompts(t, client, base2, u.Token)
	lost := 0
	for p := range acked {
		if stored[p] == 0 {
			lost++
			t.Errorf("acknowledged preference %s is gone after the crash", p)
		}
	}
	t.Logf("%d acknowledged before SIGKILL, %d stored after restart (%d unacknowledged but committed), %d lost",
		len(acked), len(stored), len(stored)-len(acked)+lost, lost)
}
