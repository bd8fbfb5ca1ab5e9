package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/omnibus-dev/omnibus/bench/internal/callload"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
)

// benchCallsFlags parses the flags of `go run ./bench calls`.
func benchCallsFlags(args []string, stderr io.Writer) (cfg callload.Config, asJSON, quiet bool, logLevel string, err error) {
	cfg = callload.Defaults()
	fs := flag.NewFlagSet("bench calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `bench calls — the phone channel's load generator: embedded NATS JetStream, the sandbox's
simulated ASR vendors and the voice connector in-process; --calls concurrent SIP calls (sipgo,
paced G.711 RTP of catalogue speech) for --duration each. Reports RTP loss as the connector
counted it, frame→transcript-segment and INVITE→call.started latencies, and CPU per call against
a raw ceiling measured in the same run (the same RTP streams received and written to disk by
plain sockets). Exits non-zero when a call failed or lost packets.

Usage: go run ./bench calls [flags]

`)
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Calls, "calls", cfg.Calls, "concurrent calls")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "each call's length")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "calls start spread over this")
	fs.StringVar(&cfg.ASR, "asr", cfg.ASR, "ASR vendor of the calls: iflytek, aliyun or none")
	fs.StringVar(&logLevel, "log-level", "error", "the services' log level on stderr")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON instead of a table")
	fs.BoolVar(&quiet, "quiet", false, "no progress lines on stderr")
	if err = fs.Parse(args); err != nil {
		return cfg, false, false, "", err
	}
	if fs.NArg() > 0 {
		return cfg, false, false, "", fmt.Errorf("bench calls: unexpected argument %q", fs.Arg(0))
	}
	return cfg, asJSON, quiet, logLevel, cfg.Validate()
}

// benchCalls is `go run ./bench calls`.
func benchCalls(args []string, stdout, stderr io.Writer) error {
	cfg, asJSON, quiet, logLevel, err := benchCallsFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if !quiet {
		cfg.Progress = stderr
	}
	cfg.Log = telemetry.NewLogger(stderr, "text", logLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := callload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.WriteTable(stdout)
	}
	if rep.Omnibus.Failed > 0 || rep.Omnibus.Lost > 0 {
		return fmt.Errorf("bench calls: %d calls failed, %d RTP packets lost", rep.Omnibus.Failed, rep.Omnibus.Lost)
	}
	return nil
}
