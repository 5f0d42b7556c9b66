// Package hub downloads model repositories from the Hugging Face Hub (or a
// mirror) into the cache layout that huggingface_hub uses, so that models
// already downloaded by transformers, vLLM or llama.cpp are found without
// copying, and models pulled here are found by them.
//
// Layout (https://huggingface.co/docs/hub/local-cache), under the cache folder
// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
//
//	models--ORG--NAME/
//	  blobs/<sha256 of LFS files | git blob sha1 of the others>
//	  blobs/<hash>.incomplete        a download in progress (resumable)
//	  snapshots/<commit>/<file>      relative symlink to ../../blobs/<hash>
//	  refs/<revision>                the commit the revision pointed to
//
// A blob is renamed into place only after its size and hash were checked, and
// a snapshot entry is linked only to a finished blob, so nothing half-written
// ever looks complete.
package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// DefaultEndpoint is the public Hub; $HF_ENDPOINT overrides it.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch pulled when none is named.
const DefaultRevision = "main"

// Ref names a model repository and a revision (branch, tag or commit).
type Ref struct {
	Repo     string // ORG/NAME
	Revision string // default DefaultRevision
}

func (r Ref) String() string { return r.Repo + "@" + r.Revision }

var (
	repoPart   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// IsRef reports whether s has the shape ORG/NAME[@REVISION] of a Hub model
// id, as opposed to a file path or a bare model name. A path that exists on
// disk should be preferred by the caller.
func IsRef(s string) bool {
	_, err := ParseRef(s)
	return err == nil
}

// ParseRef parses ORG/NAME[@REVISION].
func ParseRef(s string) (Ref, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	org, name, ok := strings.Cut(repo, "/")
	switch {
	case !ok || strings.Contains(name, "/"):
		return Ref{}, fmt.Errorf("model id %q: want ORG/NAME[@REVISION]", s)
	case !validPart(org) || !validPart(name):
		return Ref{}, fmt.Errorf("model id %q: ORG and NAME may hold letters, digits, '.', '_' and '-' only", s)
	case hasRev && !validRevision(rev):
		return Ref{}, fmt.Errorf("model id %q: bad revision %q", s, rev)
	}
	if !hasRev {
		rev = DefaultRevision
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

func validPart(s string) bool {
	return len(s) <= 96 && repoPart.MatchString(s) && !strings.Contains(s, "..") && !strings.HasSuffix(s, ".")
}

// validRevision accepts branch and tag names (refs/pr/1 included) that are
// safe to use as a path under refs/.
func validRevision(rev string) bool {
	return !strings.Contains(rev, " ") && relativePath(rev, 255)
}

// relativePath accepts a '/'-separated path of at most maxLen bytes without
// backslashes, NULs, or '.', '..' or empty parts.
func relativePath(p string, maxLen int) bool {
	if p == "" || len(p) > maxLen || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

// Env is what the Hub client reads from the environment, resolved once.
type Env struct {
	Endpoint string // $HF_ENDPOINT, else DefaultEndpoint
	Token    string // $HF_TOKEN, else the token file huggingface-cli login writes
	CacheDir string // see CacheDir
}

// EnvFrom resolves Env with getenv. A missing token file is not an error.
func EnvFrom(getenv func(string) string) (Env, error) {
	e := Env{Endpoint: strings.TrimRight(getenv("HF_ENDPOINT"), "/"), Token: strings.TrimSpace(getenv("HF_TOKEN"))}
	if e.Endpoint == "" {
		e.Endpoint = DefaultEndpoint
	}
	home, err := hfHome(getenv)
	if err != nil {
		return e, err
	}
	if e.Token == "" {
		path := getenv("HF_TOKEN_PATH")
		if path == "" {
			path = filepath.Join(home, "token")
		}
		if b, err := os.ReadFile(path); err == nil {
			e.Token = strings.TrimSpace(string(b))
		} else if !errors.Is(err, os.ErrNotExist) {
			return e, fmt.Errorf("hub token %s: %w", path, err)
		}
	}
	e.CacheDir, err = CacheDir(getenv)
	return e, err
}

// CacheDir is huggingface_hub's cache folder: $HF_HUB_CACHE, else
// $HF_HOME/hub, where HF_HOME defaults to $XDG_CACHE_HOME/huggingface, else
// ~/.cache/huggingface.
func CacheDir(getenv func(string) string) (string, error) {
	if d := getenv("HF_HUB_CACHE"); d != "" {
		return d, nil
	}
	home, err := hfHome(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

func hfHome(getenv func(string) string) (string, error) {
	if h := getenv("HF_HOME"); h != "" {
		return h, nil
	}
	if x := getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "huggingface"), nil
	}
	h := getenv("HOME")
	if h == "" {
		return "", errors.New("hub cache folder: none of $HF_HUB_CACHE, $HF_HOME, $XDG_CACHE_HOME, $HOME is set")
	}
	return filepath.Join(h, ".cache", "huggingface"), nil
}
