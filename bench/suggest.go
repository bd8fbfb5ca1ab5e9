package main

import (
	"errors"
	"flag"
	"io"
	"os"

	"github.com/omnibus-dev/omnibus/bench/internal/suggestload"
	"github.com/omnibus-dev/omnibus/pkg/config"
)

// benchSuggestFlags parses the flags of `go run ./bench suggest`.
func benchSuggestFlags(args []string, stderr io.Writer) (cfg suggestload.Config, out output, err error) {
	cfg = suggestload.Defaults()
	cfg.Set = map[string]string{}
	fs := newFlags("bench suggest", `bench suggest — concurrent streamed AI suggestions, button to page: embedded NATS JetStream, a
throwaway Postgres, the vendor sandbox, the unifier, the desk, the assist connector and the audit
service in-process. One web-chat customer per agent writes; each agent opens the desk's event
stream; all press the AI button at once. It reports, per request, whether every streamed piece
reached the agent's page (pieces numbered without a gap, their text the completed suggestion's),
button → first piece on the page against the same number of direct streams to the same sandbox
model (the baseline, same run), and exits non-zero when a request went unanswered, a stream lost a
piece or a page's stream was cut off.

Usage: go run ./bench suggest [flags]

`, stderr)
	fs.IntVar(&cfg.Streams, "streams", cfg.Streams, "agents pressing the AI button at once (one conversation each)")
	fs.DurationVar(&cfg.ChunkDelay, "chunk-delay", cfg.ChunkDelay, "the sandbox model's pause before each streamed piece (SANDBOX_OPENAI_CHUNK_DELAY)")
	fs.BoolVar(&cfg.Baseline, "baseline", cfg.Baseline, "measure the same number of direct streams to the sandbox model first")
	fs.DurationVar(&cfg.Wait, "wait", cfg.Wait, "how long the answers are awaited after the buttons")
	fs.StringVar(&cfg.NATSSync, "nats-sync", cfg.NATSSync, `embedded JetStream fsync: "always" (the all-in-one's) or a duration such as 2m`)
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres instead of a throwaway one (default $DATABASE_URL)")
	fs.Var(config.KeyValues(cfg.Set), "set", "NAME=value service variable for this run, e.g. ASSIST_CONCURRENCY=16 (repeatable; wins over everything)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "give up after this long")
	out.register(fs, true)
	if err = parse(fs, args); err != nil {
		return cfg, out, err
	}
	return cfg, out, cfg.Validate()
}

// benchSuggest is `go run ./bench suggest`.
func benchSuggest(args []string, stdout, stderr io.Writer) error {
	cfg, out, err := benchSuggestFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Progress, cfg.Log = out.progress(stderr), out.logger(stderr)
	ctx, stop := interruptible()
	defer stop()
	rep, err := suggestload.Run(ctx, cfg)
	if rep != nil && rep.Accepted > 0 {
		out.print(stdout, rep)
	}
	if err == nil && rep != nil && !rep.OK() {
		err = errors.New("bench suggest: a request went unanswered, a stream lost a piece, or a page's stream was cut off")
	}
	return err
}
