package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// rebuild is the hook of `omnibus replay --rebuild`, set by the store rebuild (in another file of
// this package, from an init func). It gets the connected client and every argument given after
// "replay" (--rebuild included); newReplayFlags/replayFlags.options turn the shared selection
// flags into bus.ReplayOptions. While it is nil, --rebuild fails with
// "replay --rebuild: not available in this build".
var rebuild func(ctx context.Context, client *bus.Client, args []string) error

// replayStreamNames maps the short names --stream accepts to stream names.
var replayStreamNames = map[string]string{
	"in": bus.StreamIn, "out": bus.StreamOut, "tool": bus.StreamTool,
	"desk": bus.StreamDesk, "audit": bus.StreamAudit, "dlq": bus.StreamDLQ,
}

// replayStream resolves --stream: a short name (in, tool, ...) or a stream name (OMNI_IN), in
// any case.
func replayStream(s string) (string, error) {
	s = strings.TrimSpace(s)
	if name, ok := replayStreamNames[strings.ToLower(s)]; ok {
		return name, nil
	}
	for _, name := range replayStreamNames {
		if strings.EqualFold(s, name) {
			return name, nil
		}
	}
	return "", fmt.Errorf("--stream: unknown stream %q (in, out, tool, desk, audit, dlq or %s, %s, ...)", s, bus.StreamIn, bus.StreamTool)
}

// replayTime parses --since/--until: RFC 3339 (with or without fractional seconds), a date
// (2006-01-02, UTC midnight), or a duration back from now ("90m", "2h", "7d").
func replayTime(name, v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok && err != nil {
		if n, perr := strconv.ParseFloat(days, 64); perr == nil {
			d, err = time.Duration(n*float64(24*time.Hour)), nil
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--%s: %q is neither an RFC 3339 time (2026-11-27T08:00:00Z), a date nor a duration (2h, 7d)", name, v)
	}
	return now.Add(-d), nil
}

// replayFlags holds the selection flags shared by replay and replay --rebuild.
type replayFlags struct {
	stream       string
	subjects     []string
	fromSeq      uint64
	toSeq        uint64
	since, until string
	limit        int
}

// newReplayFlags registers --stream, --subject, --from-seq, --to-seq, --since, --until and
// --limit on fs.
func newReplayFlags(fs *flag.FlagSet) *replayFlags {
	f := &replayFlags{}
	fs.StringVar(&f.stream, "stream", bus.StreamIn, "stream to read: in, out, tool, desk, audit, dlq (or OMNI_IN, ...)")
	fs.Var(config.List(&f.subjects), "subject", "subject filter, wildcards allowed; repeat or comma-separate for several")
	fs.Uint64Var(&f.fromSeq, "from-seq", 0, "first stream sequence (inclusive)")
	fs.Uint64Var(&f.toSeq, "to-seq", 0, "last stream sequence (inclusive; default the last stored now)")
	fs.StringVar(&f.since, "since", "", "stored at or after: RFC 3339 time, date, or duration ago (2h, 7d)")
	fs.StringVar(&f.until, "until", "", "stored at or before: RFC 3339 time, date, or duration ago")
	fs.IntVar(&f.limit, "limit", 0, "at most this many messages (0: all)")
	return f
}

// options turns the parsed flags into bus.ReplayOptions; durations count back from now.
func (f *replayFlags) options(now time.Time) (bus.ReplayOptions, error) {
	var o bus.ReplayOptions
	var err error
	if o.Stream, err = replayStream(f.stream); err != nil {
		return o, err
	}
	if o.StartTime, err = replayTime("since", f.since, now); err != nil {
		return o, err
	}
	if o.EndTime, err = replayTime("until", f.until, now); err != nil {
		return o, err
	}
	o.Subjects, o.StartSeq, o.EndSeq, o.Limit = f.subjects, f.fromSeq, f.toSeq, f.limit
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// serverArg is the --server value in args (before any "--"), else defaultServer.
func serverArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "server" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return defaultServer()
}

// replayWantsRebuild reports whether args ask for --rebuild (before any "--").
func replayWantsRebuild(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "rebuild" {
			continue
		}
		if !hasVal {
			return true
		}
		b, err := strconv.ParseBool(val)
		return err != nil || b // a malformed value is refused rather than ignored
	}
	return false
}

// replay implements `omnibus replay`: the selected events, oldest first, as NDJSON in the
// CloudEvents JSON format on stdout; undecodable messages and a summary on stderr.
func replay(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if replayWantsRebuild(args) {
		if rebuild == nil {
			return errors.New("replay --rebuild: not available in this build")
		}
		nc, client, err := connectCLI("omnibus-replay", serverArg(args))
		if err != nil {
			return err
		}
		defer nc.Close()
		return rebuild(ctx, client, args)
	}

	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := newReplayFlags(fs)
	fs.Bool("rebuild", false, "rebuild the unifier's store from the log into the empty --database-url (the selection flags do not apply)")
	fs.String("database-url", os.Getenv("DATABASE_URL"), "with --rebuild: the EMPTY Postgres database to rebuild into (default $DATABASE_URL)")
	server := fs.String("server", defaultServer(), serverFlagHelp)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("replay: unexpected argument %q", fs.Arg(0))
	}
	o, err := f.options(time.Now())
	if err != nil {
		return err
	}
	nc, client, err := connectCLI("omnibus-replay", *server)
	if err != nil {
		return err
	}
	defer nc.Close()

	w := bufio.NewWriterSize(stdout, 256<<10)
	var events, bad int
	var first, last uint64
	err = client.Replay(ctx, o, func(d bus.Delivery, decErr error) error {
		if first == 0 {
			first = d.StreamSeq
		}
		last = d.StreamSeq
		var body []byte
		if decErr == nil {
			_, body, decErr = event.EncodeStructured(d.Event)
		}
		if decErr != nil {
			bad++
			// Flushed first so that stdout and stderr, when they are the same terminal, stay in order.
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "omnibus replay: %s seq %d on %s: not a CloudEvent: %v\n", d.Stream, d.StreamSeq, d.Subject, decErr)
			return nil
		}
		events++
		if _, err := w.Write(body); err != nil {
			return err // stdout is gone (a closed pipe): stop here
		}
		return w.WriteByte('\n')
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	summary := fmt.Sprintf("replayed %d events from %s", events, o.Stream)
	if first != 0 {
		summary += fmt.Sprintf(" seq %d..%d", first, last)
	}
	if bad > 0 {
		summary += fmt.Sprintf(" (%d undecodable message(s) reported above)", bad)
	}
	if err != nil {
		summary += " before stopping"
	}
	fmt.Fprintln(stderr, summary)
	return err
}
