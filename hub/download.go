package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// newHash returns the hash that names f's blob: sha256 of the content for
// LFS files, else git's blob sha1 (sha1 of "blob <size>\x00" + content).
func newHash(f File) hash.Hash {
	if f.LFS {
		return sha256.New()
	}
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", f.Size)
	return h
}

func hashKind(f File) string {
	if f.LFS {
		return "sha256"
	}
	return "git sha1"
}

// fetchBlob downloads f (from commit) into its blob, resuming from
// blobs/<hash>.incomplete when an earlier download was interrupted. It
// returns the bytes transferred. On a network error or cancellation the
// partial file stays for the next run; on a size or hash mismatch it is
// deleted.
func (c *Client) fetchBlob(ctx context.Context, cache Cache, ref Ref, commit string, f File) (n int64, err error) {
	blob := cache.blobPath(ref.Repo, f.Hash)
	partial := blob + ".incomplete"
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return 0, fmt.Errorf("download %s: %w", f.Name, err)
	}
	out, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", f.Name, err)
	}
	defer func() {
		if out != nil {
			out.Close()
		}
		if st, serr := os.Stat(partial); err != nil && serr == nil && st.Size() == 0 {
			os.Remove(partial) // nothing to resume
		}
	}()
	h, have, err := resumeState(out, f)
	if err != nil {
		return 0, fmt.Errorf("download %s: %s: %w", f.Name, partial, err)
	}
	if c.Progress != nil {
		c.Progress.Start(f.Name, f.Size, have)
		defer func() { c.Progress.Done(f.Name, err) }()
	}
	if have < f.Size {
		if n, err = c.transfer(ctx, ref, commit, f, out, h, have); err != nil {
			return n, err
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.Hash {
		out.Close()
		out = nil
		os.Remove(partial)
		return n, fmt.Errorf("download %s of %s: %s mismatch: expected %s, got %s (the partial file was deleted; run again)", f.Name, ref.Repo, hashKind(f), f.Hash, got)
	}
	if err := out.Sync(); err != nil {
		return n, fmt.Errorf("download %s: %w", f.Name, err)
	}
	err = out.Close()
	out = nil
	if err != nil {
		return n, fmt.Errorf("download %s: %w", f.Name, err)
	}
	if err := os.Rename(partial, blob); err != nil {
		return n, fmt.Errorf("download %s: %w", f.Name, err)
	}
	return n, nil
}

// resumeState hashes what an interrupted download left in out and positions
// out after it; a partial file longer than the blob is discarded.
func resumeState(out *os.File, f File) (hash.Hash, int64, error) {
	h := newHash(f)
	st, err := out.Stat()
	if err != nil {
		return nil, 0, err
	}
	have := st.Size()
	if have > f.Size {
		if err := out.Truncate(0); err != nil {
			return nil, 0, err
		}
		have = 0
	}
	if _, err := io.Copy(h, io.NewSectionReader(out, 0, have)); err != nil {
		return nil, 0, err
	}
	_, err = out.Seek(have, io.SeekStart)
	return h, have, err
}

// transfer appends the bytes from offset have on to out (and h), restarting
// from zero when the server ignores the range.
func (c *Client) transfer(ctx context.Context, ref Ref, commit string, f File, out *os.File, h hash.Hash, have int64) (int64, error) {
	resp, first, err := c.get(ctx, c.fileURL(ref.Repo, commit, f.Name), have)
	if err != nil {
		return 0, fmt.Errorf("download %s of %s: %w", f.Name, ref.Repo, err)
	}
	defer resp.Body.Close()
	if rc := first.Get("X-Repo-Commit"); rc != "" && rc != commit {
		return 0, fmt.Errorf("download %s of %s: served from commit %s, asked for %s", f.Name, ref.Repo, rc, commit)
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, err := rangeStart(resp.Header.Get("Content-Range")); err != nil || start != have {
			return 0, fmt.Errorf("download %s of %s: asked for bytes %d-, got Content-Range %q", f.Name, ref.Repo, have, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // the range was ignored: start again
			if err := out.Truncate(0); err != nil {
				return 0, fmt.Errorf("download %s: %w", f.Name, err)
			}
			if _, err := out.Seek(0, io.SeekStart); err != nil {
				return 0, fmt.Errorf("download %s: %w", f.Name, err)
			}
			h.Reset()
			if !f.LFS {
				fmt.Fprintf(h, "blob %d\x00", f.Size)
			}
			if c.Progress != nil {
				c.Progress.Add(f.Name, -have)
			}
			have = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		out.Truncate(0) // the partial file does not fit the server's: start over next time
		return 0, fmt.Errorf("download %s of %s: the server refused to resume at byte %d; the partial file was discarded, run again", f.Name, ref.Repo, have)
	default:
		return 0, c.statusError(resp, ref, f.Name)
	}
	want := f.Size - have
	// ctxWriter first: once the context ends, not one more byte is kept,
	// even when the response is already buffered (the transport notices the
	// cancellation only on its next read from the connection)
	var w io.Writer = io.MultiWriter(ctxWriter{ctx}, out, h)
	if c.Progress != nil {
		w = io.MultiWriter(w, progressWriter{c.Progress, f.Name})
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, want+1))
	switch {
	case err != nil && ctx.Err() != nil:
		return n, fmt.Errorf("download %s of %s: %w (%d of %d bytes kept in %s.incomplete; run again to resume)", f.Name, ref.Repo, ctx.Err(), have+n, f.Size, f.Hash)
	case err != nil:
		return n, fmt.Errorf("download %s of %s: %w (%d of %d bytes kept; run again to resume)", f.Name, ref.Repo, err, have+n, f.Size)
	case n < want:
		return n, fmt.Errorf("download %s of %s: connection closed after %d of %d bytes (kept; run again to resume)", f.Name, ref.Repo, have+n, f.Size)
	case n > want:
		out.Truncate(0)
		return n, fmt.Errorf("download %s of %s: server sent more than the %d bytes the Hub lists", f.Name, ref.Repo, f.Size)
	}
	return n, nil
}

// rangeStart reads the first byte offset of "bytes START-END/TOTAL".
func rangeStart(cr string) (int64, error) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, errors.New("not a byte range")
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, errors.New("no '-'")
	}
	return strconv.ParseInt(start, 10, 64)
}

// ctxWriter fails every write once its context is done.
type ctxWriter struct{ ctx context.Context }

func (w ctxWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return len(b), nil
}

type progressWriter struct {
	p    Progress
	name string
}

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Add(w.name, int64(len(b)))
	return len(b), nil
}
