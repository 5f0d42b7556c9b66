// Command fspo personalizes language models to users from a few of their
// preferences (Few-Shot Preference Optimization). Each subcommand lives in its
// own file and registers itself; main only maps errors to exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/vbauerster/mpb/v8"
)

// command is one subcommand: `fspo NAME args...`.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// Env is what a subcommand may touch of the outside world; tests replace it.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Getenv         func(string) string
	// bars, when set, is the display that progress bars join (commands
	// running at once on one terminal); Stderr then prints above it.
	bars *mpb.Progress
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("fspo: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error whose message already says how to call the command.
var errUsage = errors.New("usage")

// Run executes `fspo args...` and returns the error to report.
func Run(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return fmt.Errorf("%w: no command given", errUsage)
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(env.Stderr)
		return fmt.Errorf("%w: unknown command %q (see the list above)", errUsage, args[0])
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fspo: few-shot preference optimization — personalize a language model to each user.")
	fmt.Fprintln(w, "\nUsage: fspo COMMAND [flags]   (fspo COMMAND -h for its flags)\n\nCommands:")
	names := slices.Sorted(maps.Keys(commands))
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(env *Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: fspo %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := flagError(fs, fs.Parse(args)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: fspo %s: unexpected argument %q (flags go before values: --flag value)", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// flagError is the error of parsing fs's flags as a command returns it:
// nil, flag.ErrHelp (-h: the usage is printed), or a usage error naming
// the command.
func flagError(fs *flag.FlagSet, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: fspo %s: %v", errUsage, fs.Name(), err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv}
	err := Run(ctx, env, os.Args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "fspo:", err)
		os.Exit(2)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "fspo: interrupted; rerun the same command to resume")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "fspo:", err)
		os.Exit(1)
	}
}
