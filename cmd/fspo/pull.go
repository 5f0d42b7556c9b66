package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"fspo/modelpath"
)

// pullBaseURL is where pull downloads from; tests point it at a local server.
var pullBaseURL = modelpath.DefaultBaseURL

func init() {
	register(&command{name: "pull", summary: "download a known public model (stories260K) and check its sha256", run: runPull})
}

// runPull implements `fspo pull [--dir DIR] NAME`.
func runPull(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(env, "pull", "[--dir DIR] NAME   (NAME: "+knownModels()+")")
	dir := fs.String("dir", "", "folder of model folders to download into; the files go to DIR/NAME (default: $"+modelpath.EnvModels+", else the user cache folder)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: fspo pull: %v", errUsage, err)
	}
	switch {
	case fs.NArg() == 0:
		return fmt.Errorf("%w: fspo pull: give a model name, e.g. fspo pull %s (known: %s)", errUsage, modelpath.DefaultModel, knownModels())
	case fs.NArg() > 1:
		return fmt.Errorf("%w: fspo pull: one model name expected, got %q (flags go before the name)", errUsage, fs.Args())
	}
	name := fs.Arg(0)
	if _, ok := modelpath.Known[name]; !ok {
		return fmt.Errorf("%w: fspo pull: unknown model %q (known: %s)", errUsage, name, knownModels())
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
