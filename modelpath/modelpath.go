// Package modelpath finds model files (a checkpoint and its tokenizer) on
// disk and downloads the known public ones.
//
// A --model value that names an existing file or folder is used as it is.
// Otherwise it is a model name, looked up in order: $FSPO_MODELS/NAME, then
// ../shared/models/NAME relative to the working directory or any of its
// parents, then the user cache folder (os.UserCacheDir()/fspo/models/NAME).
// The first folder found wins. The default model, stories260K, is also built
// into the binary (package models/stories260k): when no folder of that name
// is found, the built-in copy is installed into the cache folder, as `fspo
// pull` would, and used from there.
// A Hugging Face model id ORG/NAME[@REVISION] that is not a path on disk
// resolves to its snapshot folder in the huggingface_hub cache (see hub.FindCached).
package modelpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"fspo/hub"
)

// DefaultModel is the model used when none is named.
const DefaultModel = "stories260K"

// EnvModels names the environment variable holding a folder of model folders.
const EnvModels = "FSPO_MODELS"

// CheckpointFile is the name of checkpoints written by fspo itself.
const CheckpointFile = "model.fspo"

// tokenizerNames are the tokenizer file names looked for beside a checkpoint,
// in order of preference.
var tokenizerNames = []string{"tok512.bin", "tokenizer.bin"}

// Paths locates one model.
type Paths struct {
	Checkpoint string // llama2.c .bin or model.fspo
	Tokenizer  string // llama2.c tokenizer file
}

// FindDefault resolves the default model with the process environment.
func FindDefault() (Paths, error) {
	return Resolve("", os.Getenv)
}

// Resolve finds a model from a --model flag value: a checkpoint file (the
// tokenizer is taken from beside it), a folder holding a checkpoint and a
// tokenizer, or a bare model name looked up in the search path; empty means
// DefaultModel.
func Resolve(flag string, getenv func(string) string) (Paths, error) {
	wd, err := os.Getwd()
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model: working directory: %w", err)
	}
	return resolve(flag, getenv, wd)
}

func resolve(flag string, getenv func(string) string, wd string) (Paths, error) {
	if flag != "" {
		st, err := os.Stat(flag)
		switch {
		case err == nil && st.IsDir():
			return fromDir(flag)
		case err == nil:
			return fromFile(flag)
		case !errors.Is(err, fs.ErrNotExist):
			return Paths{}, fmt.Errorf("resolve model %s: %w", flag, err)
		case strings.Contains(flag, "/") && hub.IsRef(flag):
			return fromHub(flag, getenv)
		case !isName(flag):
			return Paths{}, fmt.Errorf("resolve model %s: no such file or folder", flag)
		}
	}
	name := flag
	if name == "" {
		name = DefaultModel
	}
	dirs, cacheErr := SearchPath(getenv, wd)
	for _, root := range dirs {
		dir := filepath.Join(root, name)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		return fromDir(dir)
	}
	where := strings.Join(dirs, ", ")
	if name == DefaultModel {
		if cacheErr != nil {
			return Paths{}, fmt.Errorf("model %q not found in %s, and its built-in copy needs a cache folder: %w; pass --model or set %s to a folder holding %s/",
				name, where, cacheErr, EnvModels, name)
		}
		return installBuiltin(dirs[len(dirs)-1])
	}
	if cacheErr != nil {
		where += " (no cache folder: " + cacheErr.Error() + ")"
	}
	return Paths{}, fmt.Errorf("model %q not found; looked in %s; run `fspo pull %s` to download it, or pass --model with a checkpoint file or folder",
		name, where, name)
}

// fromHub resolves a Hugging Face model id ORG/NAME[@REVISION] to its
// snapshot folder in the huggingface_hub cache (filled by `fspo pull`).
func fromHub(id string, getenv func(string) string) (Paths, error) {
	ref, err := hub.ParseRef(id)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", id, err)
	}
	cache, err := hub.CacheDir(getenv)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", id, err)
	}
	dir, err := hub.Cache{Dir: cache}.Find(ref.Repo, ref.Revision)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", id, err)
	}
	return fromDir(dir)
}

// isName reports whether s is a bare model name rather than a path.
func isName(s string) bool {
	return !strings.ContainsAny(s, `/\`) && s != "." && s != ".." && !strings.HasSuffix(s, ".bin") && !strings.HasSuffix(s, ".fspo")
}

// SearchPath lists the folders of model folders, in search order: $FSPO_MODELS
// (when set), every existing ../shared/models from wd upwards, the cache. When
// the cache folder cannot be determined the others are still returned, with
// the reason.
func SearchPath(getenv func(string) string, wd string) ([]string, error) {
	var dirs []string
	if d := getenv(EnvModels); d != "" {
		dirs = append(dirs, d)
	}
	for d := wd; ; {
		cand := filepath.Join(d, "..", "shared", "models")
		if st, err := os.Stat(cand); err == nil && st.IsDir() && !slices.Contains(dirs, cand) {
			dirs = append(dirs, cand)
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	cache, err := CacheDir(getenv)
	if err != nil {
		return dirs, err
	}
	return append(dirs, cache), nil
}

// fromFile takes path as the checkpoint and finds the tokenizer beside it.
func fromFile(path string) (Paths, error) {
	base := filepath.Base(path)
	if slices.Contains(tokenizerNames, base) {
		return Paths{}, fmt.Errorf("resolve model %s: this is a tokenizer file; pass the checkpoint or its folder", path)
	}
	dir := filepath.Dir(path)
	tok, err := findTokenizer(dir)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", path, err)
	}
	return Paths{Checkpoint: path, Tokenizer: tok}, nil
}

// fromDir finds the one checkpoint and the tokenizer in dir.
func fromDir(dir string) (Paths, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", dir, err)
	}
	var ckpts []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || slices.Contains(tokenizerNames, n) {
			continue
		}
		if n == CheckpointFile || strings.HasSuffix(n, ".bin") {
			ckpts = append(ckpts, n)
		}
	}
	switch len(ckpts) {
	case 0:
		return Paths{}, fmt.Errorf("resolve model %s: no checkpoint in the folder (want %s or a llama2.c *.bin)", dir, CheckpointFile)
	case 1:
	default:
		return Paths{}, fmt.Errorf("resolve model %s: several checkpoints (%s); pass the file itself", dir, strings.Join(ckpts, ", "))
	}
	tok, err := findTokenizer(dir)
	if err != nil {
		return Paths{}, fmt.Errorf("resolve model %s: %w", dir, err)
	}
	return Paths{Checkpoint: filepath.Join(dir, ckpts[0]), Tokenizer: tok}, nil
}

func findTokenizer(dir string) (string, error) {
	for _, n := range tokenizerNames {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no tokenizer (%s) in %s", strings.Join(tokenizerNames, " or "), dir)
}

// CacheDir is the model cache folder, os.UserCacheDir()/fspo/models, computed
// with getenv the way os.UserCacheDir reads the environment.
func CacheDir(getenv func(string) string) (string, error) {
	var base string
	switch runtime.GOOS {
	case "windows":
		base = getenv("LocalAppData")
		if base == "" {
			return "", errors.New("model cache folder: %LocalAppData% is not set; set " + EnvModels)
		}
	case "darwin", "ios":
		h := getenv("HOME")
		if h == "" {
			return "", errors.New("model cache folder: $HOME is not set; set " + EnvModels)
		}
		base = filepath.Join(h, "Library", "Caches")
	case "plan9":
		h := getenv("home")
		if h == "" {
			return "", errors.New("model cache folder: $home is not set; set " + EnvModels)
		}
		base = filepath.Join(h, "lib", "cache")
	default:
		base = getenv("XDG_CACHE_HOME")
		if base != "" && !filepath.IsAbs(base) {
			return "", fmt.Errorf("model cache folder: $XDG_CACHE_HOME %q is not absolute; set %s", base, EnvModels)
		}
		if base == "" {
			h := getenv("HOME")
			if h == "" {
				return "", errors.New("model cache folder: neither $XDG_CACHE_HOME nor $HOME is set; set " + EnvModels)
			}
			base = filepath.Join(h, ".cache")
		}
	}
	return filepath.Join(base, "fspo", "models"), nil
}

// DefaultDir is where downloaded models go: $FSPO_MODELS, else the cache.
func DefaultDir(getenv func(string) string) (string, error) {
	if d := getenv(EnvModels); d != "" {
		return d, nil
	}
	return CacheDir(getenv)
}
