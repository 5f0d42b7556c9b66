package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"fspo/hub"
)

// hubHTTP is the client Hugging Face downloads use: no overall timeout, as
// weights take long, but a server that does not answer at all is given up.
var hubHTTP = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}()

// runHubPull downloads a Hugging Face model into the huggingface_hub cache
// (cacheDir when set) and prints the snapshot folder.
func runHubPull(ctx context.Context, env *Env, id, cacheDir string, files []string, verify bool) error {
	ref, err := hub.ParseRef(id)
	if err != nil {
		return fmt.Errorf("%w: fspo pull: %v", errUsage, err)
	}
	e, err := hub.EnvFrom(env.Getenv)
	if cacheDir != "" {
		e.CacheDir, err = cacheDir, nil
	}
	if err != nil {
		return fmt.Errorf("fspo pull: %w (or pass --dir)", err)
	}
	c := &hub.Client{Env: e, HTTP: hubHTTP, Progress: &pullProgress{env: env}, Verify: verify}
	snap, err := c.Pull(ctx, ref, files)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s (commit %s) is ready in %s\n", id, snap.Commit, snap.Dir)
	fmt.Fprintf(env.Stdout, "%d files, %d bytes downloaded; use it with --model %s\n", len(snap.Files), snap.Fetched(), snap.Dir)
	return nil
}

// pullProgress shows one progress display per downloaded file.
type pullProgress struct {
	env  *Env
	cur  *progress
	have int64
}

func (p *pullProgress) Start(name string, size, have int64) {
	p.cur, p.have = newProgress(p.env, name, size), have
	p.cur.set(have, "bytes")
}

func (p *pullProgress) Add(_ string, n int64) {
	p.have += n
	p.cur.set(p.have, "bytes")
}

func (p *pullProgress) Done(name string, err error) {
	p.cur.done()
	if err != nil {
		fmt.Fprintf(p.env.Stderr, "%s: stopped after %d bytes\n", name, p.have)
	}
}
