package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// A short run of the call load generator: every call is set up, recorded without RTP loss and
// transcribed completely, and the report is complete. No assertion on the CPU or latency figures
// (the machine is shared; the full run reports those).
func TestBenchCallsSmoke(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("places SIP calls through the voice connector; skipped with -short")
	}
	if _, _, err := benchCallsFlags([]string{"--calls", "0"}, io.Discard); err == nil {
		t.Error("--calls 0 accepted")
	}
	var out bytes.Buffer
	if err := benchCalls([]string{"--calls", "3", "--duration", "5s", "--ramp", "300ms", "--quiet"}, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"raw: UDP receive", "omnibus: SIP", "ratio", "frame→final segment", `"complete":3`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
