package llm

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fspo/llm/llmtest"
)

// TestCacheKillHelper is the child of TestCacheSurvivesKill: it makes
// cached calls one after another and prints "ack i" after each returns.
func TestCacheKillHelper(t *testing.T) {
	if os.Getenv("FSPO_LLM_KILL_HELPER") != "1" {
		t.Skip("helper process only")
	}
	srv, path := os.Getenv("FSPO_LLM_URL"), os.Getenv("FSPO_LLM_CACHE")
	e, err := New(Config{Endpoints: []Endpoint{{BaseURL: srv, Model: "m"}}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	c, err := NewCache(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	cl := Cached(e, c)
	for i := 0; ; i++ {
		if _, err := cl.Complete(context.Background(), userReq("t", fmt.Sprintf("q%d", i))); err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Printf("ack %d\n", i)
	}
}

// TestCacheSurvivesKill kills a process with SIGKILL while it makes cached
// calls and checks that every response it acknowledged is in the cache.
func TestCacheSurvivesKill(t *testing.T) {
	srv := llmtest.New(nil)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "calls.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCacheKillHelper$")
	cmd.Env = append(os.Environ(), "FSPO_LLM_KILL_HELPER=1", "FSPO_LLM_URL="+srv.BaseURL, "FSPO_LLM_CACHE="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	acked := -1
	deadline := time.Now().Add(20 * time.Second)
	for acked < 30 && sc.Scan() && time.Now().Before(deadline) {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			t.Fatalf("child: %s", line)
		}
		if _, err := fmt.Sscanf(line, "ack %d", &acked); err != nil {
			continue // test framework chatter
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	// Acknowledgements printed before the kill landed also count.
	for sc.Scan() {
		fmt.Sscanf(sc.Text(), "ack %d", &acked)
	}
	cmd.Wait()
	if acked < 30 {
		t.Fatalf("child acknowledged only %d calls", acked+1)
	}
	c := openCache(t, path)
	ctx := context.Background()
	e := mustNew(t, Config{Endpoints: []Endpoint{{BaseURL: srv.BaseURL, Model: "m"}}}) // the child's config
	for i := 0; i <= acked; i++ {
		if _, ok, err := c.Get(ctx, Key(e.Route(userReq("t", fmt.Sprintf("q%d", i))))); err != nil || !ok {
			t.Fatalf("acknowledged call %d of %d is not in the cache after SIGKILL (%v)", i, acked+1, err)
		}
	}
}
