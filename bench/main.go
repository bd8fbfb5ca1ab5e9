// Command bench holds omnibus's load generators, kept out of the product binary:
//
//	go run ./bench [flags]         the unifier under load: embedded NATS JetStream, a throwaway
//	                               Postgres, the unifier in-process, a realistic omnichannel workload
//	go run ./bench tools [flags]   the tool connectors under load against the vendor sandbox
//	go run ./bench calls [flags]   concurrent phone calls through the voice connector, live ASR
//	go run ./bench suggest [flags] concurrent streamed AI suggestions, from the AI button to the
//	                               agent's page, against direct streams to the same model
//
// Each prints a report table (or --json) and exits non-zero when the run broke a guarantee: an
// event not applied exactly once, a tool request left without an answer. docs/performance.md has
// the current figures and how to reproduce them.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the command without its process: `tools` picks the tool connectors' generator, anything
// else is the unifier's flags.
func run(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "tools":
		err = benchTools(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "calls":
		err = benchCalls(args[1:], stdout, stderr)
	case len(args) > 0 && args[0] == "suggest":
		err = benchSuggest(args[1:], stdout, stderr)
	default:
		err = benchUnifier(args, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}
