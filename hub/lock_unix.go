//go:build unix

package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockBlob takes the lock huggingface_hub takes before downloading a blob
// (flock on <cache>/.locks/<repo folder>/<hash>.lock), so that two
// downloads of one blob, by fspo or by huggingface_hub, never write the same
// partial file at once. It waits for the lock until ctx ends.
func (c Cache) lockBlob(ctx context.Context, repo, hash string) (unlock func(), err error) {
	path := filepath.Join(c.Dir, ".locks", filepath.Base(c.repoDir(repo)), hash+".lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (another download of this file is running): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
