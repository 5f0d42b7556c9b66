package hub

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
)

// The weight files of a Hugging Face folder.
const (
	singleWeights = "model.safetensors"
	indexWeights  = "model.safetensors.index.json"
)

// metaFiles are fetched whenever the repository has them.
var metaFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}

// File is one file of a repository at a commit.
type File struct {
	Name string // path in the repository, '/'-separated
	Size int64
	// Hash names the blob: the LFS sha256 for LFS files, else the git blob
	// sha1; the downloaded bytes are checked against it.
	Hash string
	LFS  bool
	// Fetched is how many bytes this pull downloaded (0 when cached).
	Fetched int64
}

// repoInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true
// that a pull reads.
type repoInfo struct {
	SHA      string `json:"sha"`
	Siblings []struct {
		Name   string `json:"rfilename"`
		Size   *int64 `json:"size"`
		BlobID string `json:"blobId"`
		LFS    *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// parseInfo decodes and checks the Hub's answer: a commit hash, and for every
// file a safe relative name, a size and a hash.
func parseInfo(data []byte) (commit string, files map[string]File, err error) {
	var info repoInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return "", nil, fmt.Errorf("decode: %w", err)
	}
	if !commitHash.MatchString(info.SHA) {
		return "", nil, fmt.Errorf("field sha: want a 40-hex commit, got %q", info.SHA)
	}
	files = make(map[string]File, len(info.Siblings))
	for i, s := range info.Siblings {
		if !safeName(s.Name) {
			return "", nil, fmt.Errorf("siblings[%d].rfilename %q: not a safe relative path", i, s.Name)
		}
		f := File{Name: s.Name}
		switch {
		case s.LFS != nil:
			f.LFS, f.Hash, f.Size = true, s.LFS.SHA256, s.LFS.Size
			if !sha256Hex.MatchString(f.Hash) {
				return "", nil, fmt.Errorf("siblings[%d] %s: lfs.sha256 %q is not 64 hex digits", i, s.Name, f.Hash)
			}
		case s.Size != nil:
			f.Hash, f.Size = s.BlobID, *s.Size
			if !commitHash.MatchString(f.Hash) {
				return "", nil, fmt.Errorf("siblings[%d] %s: blobId %q is not 40 hex digits (does the server support ?blobs=true?)", i, s.Name, f.Hash)
			}
		default:
			return "", nil, fmt.Errorf("siblings[%d] %s: no size (does the server support ?blobs=true?)", i, s.Name)
		}
		if f.Size < 0 {
			return "", nil, fmt.Errorf("siblings[%d] %s: negative size %d", i, s.Name, f.Size)
		}
		files[s.Name] = f
	}
	return info.SHA, files, nil
}

// safeName accepts a '/'-separated relative path without '.', '..' or empty
// parts, so that it stays inside the snapshot folder.
func safeName(name string) bool { return relativePath(name, 1024) }

// parseIndex returns the shard files a model.safetensors.index.json lists, in
// order of first appearance.
func parseIndex(data []byte) ([]string, error) {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("field weight_map: empty or missing")
	}
	keys := make([]string, 0, len(idx.WeightMap))
	for k := range idx.WeightMap {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var shards []string
	for _, k := range keys {
		s := idx.WeightMap[k]
		if !safeName(s) {
			return nil, fmt.Errorf("weight_map[%q]: shard %q is not a safe relative path", k, s)
		}
		if !slices.Contains(shards, s) {
			shards = append(shards, s)
		}
	}
	slices.Sort(shards)
	return shards, nil
}

// selectFiles picks what to download besides the shards an index lists: the
// metadata files present, and either the files matching patterns or the
// safetensors weights (model.safetensors, else its index).
func selectFiles(files map[string]File, patterns []string) ([]File, error) {
	var out []File
	for _, n := range metaFiles {
		if f, ok := files[n]; ok {
			out = append(out, f)
		}
	}
	if len(patterns) > 0 {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, p := range patterns {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("--file %q: %w", p, err)
			}
			matched := false
			for _, n := range names {
				if ok, _ := path.Match(p, n); ok {
					matched = true
					if !slices.ContainsFunc(out, func(f File) bool { return f.Name == n }) {
						out = append(out, files[n])
					}
				}
			}
			if !matched {
				return nil, fmt.Errorf("--file %q matches no file of the repository", p)
			}
		}
		return out, nil
	}
	if _, ok := files["config.json"]; !ok {
		return nil, fmt.Errorf("file config.json not found: not a Hugging Face model folder (for GGUF files pass --file '*.gguf')")
	}
	if f, ok := files[singleWeights]; ok {
		return append(out, f), nil
	}
	if f, ok := files[indexWeights]; ok {
		return append(out, f), nil
	}
	return nil, fmt.Errorf("file %s not found, nor %s (for GGUF files pass --file '*.gguf')", singleWeights, indexWeights)
}
