package main

import (
	"bytes"
	"encoding/json"
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
	// Every final segment is matched to the utterance it ends (the latency is measured from its
	// last speech packet's send), and first partials are measured too.
	for _, want := range []string{"raw: UDP receive", "omnibus: SIP", "ratio", "frame → final segment on the bus (ms, measured", " 0 unmatched)",
		"target p99 ≤ 300", "end-of-utterance silence wait (700 ms", "frame → first partial segment on the bus", `"complete":3`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// The same through the unifier and the desk: every call's ringing reaches the desk's event
// stream and its caller's 360° panel is served (the screen pop), reported with its latencies.
func TestBenchCallsScreenPop(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("places SIP calls through the voice connector, the unifier and the desk; skipped with -short")
	}
	var out bytes.Buffer
	if err := benchCalls([]string{"--calls", "3", "--duration", "4s", "--ramp", "300ms", "--desk", "--quiet", "--json"}, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var rep struct {
		Config    struct{ Desk bool }
		ScreenPop *struct{ Samples int } `json:"invite_to_desk_ringing_ms"`
		Panel     *struct{ Samples int } `json:"invite_to_panel_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !rep.Config.Desk || rep.ScreenPop == nil || rep.ScreenPop.Samples != 3 || rep.Panel == nil || rep.Panel.Samples != 3 {
		t.Fatalf("screen pops not reported for every call:\n%s", out.String())
	}
}
