package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/omnibus-dev/omnibus/pkg/telemetry"
)

// newFlags is a bench command's flag set: usage (the command's description, then its flags)
// and errors on stderr.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, refusing arguments that are not flags.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// output is what a bench command's flags say about its output: the report as JSON or as a
// table, progress lines on stderr or none, and the services' log level.
type output struct {
	asJSON, quiet bool
	logLevel      string
}

// register adds --json, --quiet and, for a command that runs services, --log-level to fs.
func (o *output) register(fs *flag.FlagSet, services bool) {
	if services {
		fs.StringVar(&o.logLevel, "log-level", "error", "the services' log level on stderr: debug, info, warn, error")
	}
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON instead of a table")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
}

// progress is where the run's progress lines go: stderr, or nowhere with --quiet.
func (o output) progress(stderr io.Writer) io.Writer {
	if o.quiet {
		return nil
	}
	return stderr
}

// logger is the services' logger: text on stderr at --log-level.
func (o output) logger(stderr io.Writer) *slog.Logger {
	return telemetry.NewLogger(stderr, "text", o.logLevel)
}

// print writes rep to stdout: indented JSON with --json, else its table.
func (o output) print(stdout io.Writer, rep interface{ WriteTable(io.Writer) }) {
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	rep.WriteTable(stdout)
}

// interruptible returns a context that Ctrl-C or SIGTERM cancels (the run stops and reports
// what it has); a second Ctrl-C kills the process.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	return ctx, stop
}
