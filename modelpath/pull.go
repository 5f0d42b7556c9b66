package modelpath

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultBaseURL is the public origin of the known models: the Hugging Face
// repository karpathy/tinyllamas that publishes llama2.c's checkpoints.
const DefaultBaseURL = "https://huggingface.co/karpathy/tinyllamas/resolve/main"

// RemoteFile is one file of a downloadable model, with its expected size
// and sha256 (hex).
type RemoteFile struct {
	Name   string
	Size   int64
	SHA256 string
}

// Known lists the models Pull can fetch; files live at BASE/NAME/FILE.
// Sizes and hashes are those in models/stories260K/README.md.
var Known = map[string][]RemoteFile{
	"stories260K": {
		{"stories260K.bin", 1056540, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696"},
		{"tok512.bin", 6227, "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312"},
	},
}

// PullOptions adjusts Pull; the zero value downloads from DefaultBaseURL with
// http.DefaultClient and reports nothing.
type PullOptions struct {
	BaseURL  string       // default DefaultBaseURL
	Client   *http.Client // default http.DefaultClient
	Progress io.Writer    // progress lines; nil for none
}

// Pull downloads the files of the known model name into destDir/name,
// checking each file's size and sha256 and writing it atomically (a temporary
// file renamed into place). Files already present with the right hash are
// kept. destDir is a folder of model folders, such as $FSPO_MODELS.
func Pull(ctx context.Context, name, destDir string, opt PullOptions) error {
	files, ok := Known[name]
	if !ok {
		names := make([]string, 0, len(Known))
		for n := range Known {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("pull %s: unknown model (known: %s)", name, strings.Join(names, ", "))
	}
	if opt.BaseURL == "" {
		opt.BaseURL = DefaultBaseURL
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	dir := filepath.Join(destDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pull %s: %w", name, err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if sum, err := fileSHA256(path); err == nil && sum == f.SHA256 {
			fmt.Fprintf(opt.Progress, "%s: present, sha256 ok\n", path)
			continue
		} else if err == nil {
			fmt.Fprintf(opt.Progress, "%s: present with sha256 %s, want %s; downloading again\n", path, sum, f.SHA256)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pull %s: %w", name, err)
		}
		url := strings.TrimRight(opt.BaseURL, "/") + "/" + name + "/" + f.Name
		if err := download(ctx, opt, url, path, f); err != nil {
			return fmt.Errorf("pull %s: %w", name, err)
		}
	}
	return nil
}

// download fetches url into path through a temporary file in the same folder.
func download(ctx context.Context, opt PullOptions, url, path string, f RemoteFile) (err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	fmt.Fprintf(opt.Progress, "%s: downloading %s (%d bytes)\n", f.Name, url, f.Size)
	resp, err := opt.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("cannot reach %s: %w; copy the files by hand into %s (sizes and sha256 in the model's README)", url, err, filepath.Dir(path))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s; copy the files by hand into %s", url, resp.Status, filepath.Dir(path))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+f.Name+".*.part")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	pw := &progressWriter{w: opt.Progress, name: f.Name, total: f.Size}
	// Read one byte more than expected so an oversized body is detected.
	n, err := io.Copy(io.MultiWriter(tmp, h, pw), io.LimitReader(resp.Body, f.Size+1))
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if n != f.Size {
		return fmt.Errorf("download %s: got %d bytes, want %d", url, n, f.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
		return fmt.Errorf("download %s: sha256 %s, want %s", url, sum, f.SHA256)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	fmt.Fprintf(opt.Progress, "%s: saved %s, sha256 ok\n", f.Name, path)
	return nil
}

// progressWriter prints a line at every further tenth of the expected size.
type progressWriter struct {
	w     io.Writer
	name  string
	total int64
	done  int64
	tenth int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if p.total > 0 {
		if t := min(p.done*10/p.total, 10); t > p.tenth {
			p.tenth = t
			fmt.Fprintf(p.w, "%s: %d%% (%d of %d bytes)\n", p.name, t*10, p.done, p.total)
		}
	}
	return len(b), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
