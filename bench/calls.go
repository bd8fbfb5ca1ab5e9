package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/omnibus-dev/omnibus/bench/internal/callload"
)

// benchCallsFlags parses the flags of `go run ./bench calls`.
func benchCallsFlags(args []string, stderr io.Writer) (cfg callload.Config, out output, err error) {
	cfg = callload.Defaults()
	fs := newFlags("bench calls", `bench calls — the phone channel's load generator: embedded NATS JetStream, the sandbox's
simulated ASR vendors and the voice connector in-process; --calls concurrent SIP calls (sipgo,
paced G.711 RTP of catalogue speech) for --duration each. Reports RTP loss as the connector
counted it, frame→transcript-segment latencies (measured from the send of the RTP packet carrying
an utterance's last speech sample to its final segment on the bus, and from its first speech
packet to its first partial), INVITE→call.started latency, and CPU per call against
a raw ceiling measured in the same run (the same RTP streams received and written to disk by
plain sockets); with --desk, through the unifier and the desk too, with the screen pop. Exits
non-zero when a call failed or lost packets.

Usage: go run ./bench calls [flags]

`, stderr)
	fs.IntVar(&cfg.Calls, "calls", cfg.Calls, "concurrent calls")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "each call's length")
	fs.DurationVar(&cfg.Ramp, "ramp", cfg.Ramp, "calls start spread over this")
	fs.StringVar(&cfg.ASR, "asr", cfg.ASR, "ASR vendor of the calls: iflytek, aliyun or none")
	fs.BoolVar(&cfg.Desk, "desk", cfg.Desk, "run the unifier, the CRM and the desk beside the connector (embedded Postgres) and measure the screen pop: INVITE → ringing on the desk's event stream → the caller's 360° panel")
	out.register(fs, true)
	if err = parse(fs, args); err != nil {
		return cfg, out, err
	}
	return cfg, out, cfg.Validate()
}

// benchCalls is `go run ./bench calls`.
func benchCalls(args []string, stdout, stderr io.Writer) error {
	cfg, out, err := benchCallsFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg.Progress, cfg.Log = out.progress(stderr), out.logger(stderr)
	ctx, stop := interruptible()
	defer stop()
	rep, err := callload.Run(ctx, cfg)
	if err != nil {
		return err
	}
	out.print(stdout, rep)
	if rep.Omnibus.Failed > 0 || rep.Omnibus.Lost > 0 {
		return fmt.Errorf("bench calls: %d calls failed, %d RTP packets lost", rep.Omnibus.Failed, rep.Omnibus.Lost)
	}
	return nil
}
