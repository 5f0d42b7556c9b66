package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"fspo/modelpath"
)

// pullBaseURL is where pull downloads from; tests point it at a local server.
var pullBaseURL = modelpath.DefaultBaseURL

func init() {
	register(&command{name: "pull", summary: "download a known model (stories260K) or a Hugging Face model ORG/NAME, checking hashes", run: runPull})
}

// runPull implements `fspo pull [--dir DIR] NAME` and
// `fspo pull [--dir CACHE] [--file GLOB]... [--verify] ORG/NAME[@REVISION]`.
func runPull(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pull", "[--dir DIR] NAME | [--dir CACHE] [--file GLOB]... [--verify] ORG/NAME[@REVISION]   (NAME: "+knownModels()+"; ORG/NAME: a Hugging Face model)")
	dir := fs.String("dir", "", "folder of model folders to download into; the files go to DIR/NAME (default: $"+modelpath.EnvModels+", else the user cache folder); for ORG/NAME the Hugging Face cache folder (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)")
	verify := fs.Bool("verify", false, "for ORG/NAME: re-hash files already in the cache and download again those that do not match")
	var files []string
	fs.Func("file", "for ORG/NAME: also download the repository files matching this glob, instead of the safetensors weights (e.g. '*Q8_0.gguf'; repeatable)", func(s string) error {
		files = append(files, s)
		return nil
	})
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 1 { // flags may follow the name too
		first := fs.Arg(0)
		if err = fs.Parse(fs.Args()[1:]); err == nil && fs.NArg() == 0 {
			err = fs.Parse([]string{first})
		} else if err == nil {
			return fmt.Errorf("%w: fspo pull: one model name expected, got %q", errUsage, append([]string{first}, fs.Args()...))
		}
	}
	if err = flagError(fs, err); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return fmt.Errorf("%w: fspo pull: give a model name, e.g. fspo pull %s (known: %s) or a Hugging Face model id ORG/NAME[@REVISION]", errUsage, modelpath.DefaultModel, knownModels())
	case fs.NArg() > 1:
		return fmt.Errorf("%w: fspo pull: one model name expected, got %q", errUsage, fs.Args())
	}
	if strings.Contains(fs.Arg(0), "/") { // ORG/NAME: a Hugging Face model
		return runHubPull(ctx, env, fs.Arg(0), *dir, files, *verify)
	}
	if len(files) > 0 || *verify {
		return fmt.Errorf("%w: fspo pull: --file and --verify are for Hugging Face model ids ORG/NAME", errUsage)
	}
	name := fs.Arg(0)
	if _, ok := modelpath.Known[name]; !ok {
		return fmt.Errorf("%w: fspo pull: unknown model %q (known: %s; or a Hugging Face model id ORG/NAME[@REVISION])", errUsage, name, knownModels())
	}
	dest := *dir
	if dest == "" {
		d, err := modelpath.DefaultDir(env.Getenv)
		if err != nil {
			return fmt.Errorf("fspo pull: %w (or pass --dir)", err)
		}
		dest = d
	}
	opt := modelpath.PullOptions{BaseURL: pullBaseURL, Progress: env.Stderr}
	if err := modelpath.Pull(ctx, name, dest, opt); err != nil {
		return err
	}
	folder := filepath.Join(dest, name)
	fmt.Fprintf(env.Stdout, "%s is ready in %s\n", name, folder)
	if def, err := modelpath.DefaultDir(env.Getenv); err != nil || filepath.Clean(def) != filepath.Clean(dest) {
		fmt.Fprintf(env.Stdout, "use it with --model %s, or set %s=%s\n", folder, modelpath.EnvModels, dest)
	}
	return nil
}

func knownModels() string {
	names := make([]string, 0, len(modelpath.Known))
	for n := range modelpath.Known {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
