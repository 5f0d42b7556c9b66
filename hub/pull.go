package hub

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"fspo/fileio"
)

// Snapshot is a pulled revision: its files are in Dir.
type Snapshot struct {
	Ref    Ref
	Commit string
	Dir    string // the cache's snapshots/<commit>
	Files  []File
}

// Fetched is the number of bytes the pull downloaded.
func (s *Snapshot) Fetched() int64 {
	var n int64
	for _, f := range s.Files {
		n += f.Fetched
	}
	return n
}

// Pull downloads what a model needs from ref into the cache: the metadata
// files the repository has (config.json, generation_config.json,
// tokenizer.json, tokenizer_config.json, special_tokens_map.json) and the
// weights — the files matching patterns (path.Match globs such as
// "*Q8_0.gguf") when given, else model.safetensors or
// model.safetensors.index.json with every shard it lists. Files already in
// the cache with the right size are not downloaded again; refs/<revision> is
// written last.
func (c *Client) Pull(ctx context.Context, ref Ref, patterns []string) (*Snapshot, error) {
	commit, files, err := c.info(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	todo, err := selectFiles(files, patterns)
	if err != nil {
		return nil, fmt.Errorf("pull %s (commit %s): %w", ref, commit, err)
	}
	cache := Cache{c.CacheDir}
	snap := &Snapshot{Ref: ref, Commit: commit, Dir: cache.SnapshotDir(ref.Repo, commit)}
	for i := 0; i < len(todo); i++ { // todo grows by the shards an index lists
		f := todo[i]
		if f.Fetched, err = c.ensure(ctx, cache, ref, commit, f); err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref, err)
		}
		snap.Files = append(snap.Files, f)
		if f.Name != indexWeights {
			continue
		}
		shards, err := c.shards(snap.Dir, files)
		if err != nil {
			return nil, fmt.Errorf("pull %s (commit %s): %w", ref, commit, err)
		}
		for _, s := range shards {
			if !slices.ContainsFunc(todo, func(t File) bool { return t.Name == s.Name }) {
				todo = append(todo, s)
			}
		}
	}
	if err := cache.writeRef(ref.Repo, ref.Revision, commit); err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	return snap, nil
}

// shards reads the downloaded index and returns the shard files it lists.
func (c *Client) shards(dir string, files map[string]File) ([]File, error) {
	path := filepath.Join(dir, indexWeights)
	names, err := fileio.Parse(path, parseIndex)
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(names))
	for _, n := range names {
		f, ok := files[n]
		if !ok {
			return nil, fmt.Errorf("%s lists shard %s, which the repository does not have", indexWeights, n)
		}
		out = append(out, f)
	}
	return out, nil
}

// ensure makes snapshots/<commit>/<f.Name> point to a complete blob,
// downloading it only when no blob of the right size (and, with c.Verify,
// the right hash) exists; it returns the bytes downloaded.
func (c *Client) ensure(ctx context.Context, cache Cache, ref Ref, commit string, f File) (int64, error) {
	blob := cache.blobPath(ref.Repo, f.Hash)
	linked := cache.cachedSize(ref.Repo, commit, f.Name) == f.Size
	present := linked
	if st, err := os.Stat(blob); !linked && err == nil && st.Size() == f.Size {
		present = true
	}
	if present && c.Verify {
		path := filepath.Join(cache.SnapshotDir(ref.Repo, commit), filepath.FromSlash(f.Name))
		if !linked {
			path = blob
		}
		ok, err := hashMatches(path, f)
		if err != nil {
			return 0, fmt.Errorf("verify %s: %w", f.Name, err)
		}
		if !ok { // a damaged cache entry: fetch the blob again
			os.Remove(blob)
			linked, present = false, false
		}
	}
	if linked && present {
		return 0, nil
	}
	var n int64
	if !present {
		unlock, err := cache.lockBlob(ctx, ref.Repo, f.Hash)
		if err != nil {
			return 0, fmt.Errorf("download %s: %w", f.Name, err)
		}
		defer unlock()
		// Another process may have finished the blob while we waited.
		if st, err := os.Stat(blob); err != nil || st.Size() != f.Size {
			if n, err = c.fetchBlob(ctx, cache, ref, commit, f); err != nil {
				return n, err
			}
		}
	}
	return n, cache.link(ref.Repo, commit, f.Name, f.Hash)
}

// hashMatches reports whether the file at path has f's hash.
func hashMatches(path string, f File) (bool, error) {
	in, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer in.Close()
	h := newHash(f)
	if _, err := io.Copy(h, in); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == f.Hash, nil
}
