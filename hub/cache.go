package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Cache is a huggingface_hub cache folder.
type Cache struct{ Dir string }

// repoDir is models--ORG--NAME.
func (c Cache) repoDir(repo string) string {
	return filepath.Join(c.Dir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

func (c Cache) blobPath(repo, hash string) string {
	return filepath.Join(c.repoDir(repo), "blobs", hash)
}

// SnapshotDir is the folder of one commit's files.
func (c Cache) SnapshotDir(repo, commit string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit)
}

func (c Cache) refPath(repo, rev string) string {
	return filepath.Join(c.repoDir(repo), "refs", filepath.FromSlash(rev))
}

// Commit resolves rev to a commit through refs/<rev>; a commit hash is
// returned as is.
func (c Cache) Commit(repo, rev string) (string, error) {
	if commitHash.MatchString(rev) {
		return rev, nil
	}
	path := c.refPath(repo, rev)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("revision %s of %s is not in the cache %s: %w", rev, repo, c.Dir, err)
	}
	commit := strings.TrimSpace(string(b))
	if !commitHash.MatchString(commit) {
		return "", fmt.Errorf("cache ref %s: want a 40-hex commit, got %q", path, commit)
	}
	return commit, nil
}

// writeRef records that rev points to commit (nothing for a commit itself).
func (c Cache) writeRef(repo, rev, commit string) error {
	if rev == commit {
		return nil
	}
	path := c.refPath(repo, rev)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write ref %s: %w", path, err)
	}
	return replaceFile(path, func(tmp string) error { return os.WriteFile(tmp, []byte(commit), 0o644) })
}

// link makes snapshots/<commit>/<name> a relative symlink to the blob,
// replacing whatever was there.
func (c Cache) link(repo, commit, name, hash string) error {
	path := filepath.Join(c.SnapshotDir(repo, commit), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	target, err := filepath.Rel(filepath.Dir(path), c.blobPath(repo, hash))
	if err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	return replaceFile(path, func(tmp string) error { return os.Symlink(target, tmp) })
}

// replaceFile creates a temporary entry beside path with make and renames it
// over path, so path is never missing or partial.
func replaceFile(path string, make func(tmp string) error) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	os.Remove(tmp)
	if err := make(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// cachedSize is the size of snapshots/<commit>/<name> (following the
// symlink), or -1 when it is absent or dangling.
func (c Cache) cachedSize(repo, commit, name string) int64 {
	st, err := os.Stat(filepath.Join(c.SnapshotDir(repo, commit), filepath.FromSlash(name)))
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	return st.Size()
}

// FindCached returns the snapshot folder of repo at revision in the cache
// that the environment names (see CacheDir): `--model ORG/NAME[@REV]`
// resolves through it. The snapshot must hold a complete model: config.json
// with model.safetensors or every shard its index lists, or a *.gguf file.
func FindCached(repo, revision string) (string, error) {
	dir, err := CacheDir(os.Getenv)
	if err != nil {
		return "", err
	}
	return Cache{dir}.Find(repo, revision)
}

// Find is FindCached in this cache.
func (c Cache) Find(repo, revision string) (string, error) {
	if revision == "" {
		revision = DefaultRevision
	}
	ref := repo + "@" + revision
	commit, err := c.Commit(repo, revision)
	if err != nil {
		return "", fmt.Errorf("%w; run `fspo pull %s`", err, ref)
	}
	dir := c.SnapshotDir(repo, commit)
	if err := checkComplete(dir); err != nil {
		return "", fmt.Errorf("cached %s in %s: %w; run `fspo pull %s`", ref, dir, err, ref)
	}
	return dir, nil
}

// checkComplete reports what a snapshot folder lacks to be loadable.
func checkComplete(dir string) error {
	ggufs, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	for _, g := range ggufs {
		if st, err := os.Stat(g); err == nil && st.Mode().IsRegular() {
			return nil
		}
	}
	if !isFile(filepath.Join(dir, "config.json")) {
		return errors.New("no config.json and no *.gguf")
	}
	if isFile(filepath.Join(dir, singleWeights)) {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, indexWeights))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s and no %s", singleWeights, indexWeights)
	} else if err != nil {
		return err
	}
	shards, err := parseIndex(data)
	if err != nil {
		return fmt.Errorf("%s: %w", indexWeights, err)
	}
	for _, s := range shards {
		if !isFile(filepath.Join(dir, filepath.FromSlash(s))) {
			return fmt.Errorf("shard %s missing", s)
		}
	}
	return nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
