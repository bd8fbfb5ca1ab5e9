package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// replayFixture stores, on OMNI_IN (Publish may append a partition token to the subjects, hence
// the ".>" filters below): seq 1-3 example, 4 sms, 5 an undecodable message, 6 sms,
// 7 example. It returns the ids of the events by sequence (none for 5).
func replayFixture(t *testing.T) (*bustest.Bundle, map[uint64]string) {
	t.Helper()
	b := bustest.New(t)
	t.Setenv("NATS_URL", b.Server.ClientURL())
	ctx := context.Background()
	ids := map[uint64]string{}
	for seq := uint64(1); seq <= 7; seq++ {
		subj := "omni.in.example.message"
		if seq == 4 || seq == 6 {
			subj = "omni.in.sms.message"
		}
		if seq == 5 {
			if _, err := b.Client.JetStream().PublishMsg(ctx, &nats.Msg{Subject: subj, Data: []byte("garbage")}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		e, err := event.New("omni.channel.message.received", "/test", map[string]any{
			"channel": "example", "channel_message_id": fmt.Sprintf("m%d", seq),
			"from":    map[string]string{"kind": "phone", "value": "+8613800138000"},
			"message": map[string]any{"type": "text", "text": fmt.Sprintf("hi %d", seq)}, "sent_at": "2026-11-27T08:00:00Z",
		}, event.WithSubject(fmt.Sprintf("customer/%d", seq)))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Client.Publish(ctx, subj, e); err != nil {
			t.Fatal(err)
		}
		ids[seq] = e.ID()
	}
	return b, ids
}

// runReplay runs `omnibus replay args...`, parses stdout as NDJSON CloudEvents and returns them
// with stderr.
func runReplay(t *testing.T, args ...string) ([]event.Event, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(append([]string{"replay"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("replay %v exited %d: %s", args, code, errOut.String())
	}
	var evs []event.Event
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Bytes()
		var e event.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("replay %v: line %q: %v", args, line, err)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("replay %v: line %q: %v", args, line, err)
		}
		// Structured mode, with JSON data inline rather than base64.
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(line, &raw); err != nil || string(raw["specversion"]) != `"1.0"` || !bytes.HasPrefix(raw["data"], []byte("{")) {
			t.Fatalf("replay %v: line is not a structured CloudEvent with JSON data: %s", args, line)
		}
		evs = append(evs, e)
	}
	return evs, errOut.String()
}

func idsOf(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID()
	}
	return out
}

func wantIDs(ids map[uint64]string, seqs ...uint64) []string {
	out := make([]string, len(seqs))
	for i, s := range seqs {
		out[i] = ids[s]
	}
	return out
}

func TestReplayCommand(t *testing.T) {
	b, ids := replayFixture(t)
	evs, stderr := runReplay(t)
	if got, want := idsOf(evs), wantIDs(ids, 1, 2, 3, 4, 6, 7); !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	for _, e := range evs {
		if e.Type() != "omni.channel.message.received" || e.Source() != "/test" || !strings.HasPrefix(e.Subject(), "customer/") || e.DataSchema() == "" {
			t.Errorf("attributes lost: %s", e)
		}
		var data struct {
			ChannelMessageID string `json:"channel_message_id"`
		}
		if err := event.DecodeData(e, &data); err != nil || data.ChannelMessageID == "" {
			t.Errorf("data lost: %v %s", err, e.Data())
		}
	}
	if !strings.Contains(stderr, "OMNI_IN seq 5 on omni.in.example.message: not a CloudEvent") {
		t.Errorf("undecodable message not reported:\n%s", stderr)
	}
	if !strings.Contains(stderr, "replayed 6 events from OMNI_IN seq 1..7 (1 undecodable") {
		t.Errorf("summary:\n%s", stderr)
	}
	// Replaying is read-only and leaves no consumer behind.
	if n := b.StoredCount(t, bus.StreamIn, ">"); n != 7 {
		t.Errorf("%d messages left in OMNI_IN", n)
	}
	st, err := b.Client.JetStream().Stream(context.Background(), bus.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	for n := range st.ConsumerNames(context.Background()).Name() {
		t.Errorf("consumer %s left behind", n)
	}
}

func TestReplayCommandSelection(t *testing.T) {
	b, ids := replayFixture(t)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		args []string
		want []uint64
	}{
		{[]string{"--stream", "in", "--subject", "omni.in.sms.>"}, []uint64{4, 6}},
		{[]string{"--stream=OMNI_IN", "--subject", "omni.in.sms.>,omni.in.example.>"}, []uint64{1, 2, 3, 4, 6, 7}},
		{[]string{"--subject", "omni.in.sms.>", "--subject", "omni.in.nothing.>"}, []uint64{4, 6}},
		{[]string{"--from-seq", "2", "--to-seq", "4"}, []uint64{2, 3, 4}},
		{[]string{"--from-seq", "6"}, []uint64{6, 7}},
		{[]string{"--to-seq", "6", "--subject", "omni.in.example.>"}, []uint64{1, 2, 3}},
		{[]string{"--limit", "2"}, []uint64{1, 2}},
		{[]string{"--limit", "2", "--from-seq", "3", "--subject", "omni.in.sms.>"}, []uint64{4, 6}},
		{[]string{"--since", "1h"}, []uint64{1, 2, 3, 4, 6, 7}},
		{[]string{"--since", "1d", "--until", "0s", "--stream", "IN"}, []uint64{1, 2, 3, 4, 6, 7}},
		{[]string{"--since", future}, nil},
		{[]string{"--until", "1h"}, nil},
		{[]string{"--until", "2000-01-01"}, nil},
	} {
		evs, _ := runReplay(t, tc.args...)
		if got, want := idsOf(evs), wantIDs(ids, tc.want...); !slices.Equal(got, want) {
			t.Errorf("replay %v: ids %v, want %v (seqs %v)", tc.args, got, want, tc.want)
		}
	}
	evs, stderr := runReplay(t, "--stream", "tool")
	if len(evs) != 0 || !strings.Contains(stderr, "replayed 0 events from OMNI_TOOL\n") {
		t.Errorf("empty stream: %d events, stderr %q", len(evs), stderr)
	}
	// OMNI_OUT is a work queue: read message by message, left as it was.
	if _, err := b.Client.JetStream().PublishMsg(context.Background(), &nats.Msg{Subject: "omni.out.example.send",
		Header: nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"out-1"}, "ce-source": {"/t"}, "ce-type": {"omni.t"},
			"content-type": {"application/json"}}, Data: []byte(`{"to":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	evs, stderr = runReplay(t, "--stream", "out")
	if got := idsOf(evs); !slices.Equal(got, []string{"out-1"}) || !strings.Contains(stderr, "replayed 1 events from OMNI_OUT seq 1..1\n") {
		t.Errorf("work queue: %v, stderr %q", got, stderr)
	}
	if n := b.StoredCount(t, bus.StreamOut, ">"); n != 1 {
		t.Errorf("OMNI_OUT holds %d messages after the replay", n)
	}
	_, stderr = runReplay(t, "--subject", "omni.in.sms.>")
	if !strings.Contains(stderr, "replayed 2 events from OMNI_IN seq 4..6\n") {
		t.Errorf("summary: %q", stderr)
	}
}

func TestReplayCommandRejects(t *testing.T) {
	_, _ = replayFixture(t)
	for _, args := range [][]string{
		{"--stream", "nope"},
		{"--since", "yesterday"},
		{"--until", "-2h"},
		{"--from-seq", "5", "--to-seq", "2"},
		{"--limit", "-1"},
		{"--bogus"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"replay"}, args...), &out, &errOut); code == 0 || out.Len() != 0 {
			t.Errorf("replay %v: exit %d, stdout %q", args, code, out.String())
		}
	}
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	var errOut bytes.Buffer
	if code := run([]string{"replay"}, &bytes.Buffer{}, &errOut); code == 0 || !strings.Contains(errOut.String(), "NATS_URL") {
		t.Errorf("unreachable NATS: exit %d, %s", code, errOut.String())
	}
}

func TestReplayRebuildHook(t *testing.T) {
	_, _ = replayFixture(t)
	prev := rebuild // set by the store rebuild when it is built in
	t.Cleanup(func() { rebuild = prev })
	rebuild = nil
	var out, errOut bytes.Buffer
	if code := run([]string{"replay", "--rebuild"}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "replay --rebuild: not available in this build") {
		t.Fatalf("without the hook: exit %d, %s", code, errOut.String())
	}
	var gotArgs []string
	var gotOpts bus.ReplayOptions
	rebuild = func(ctx context.Context, client *bus.Client, args []string) error {
		gotArgs = args
		// What a rebuild does: the shared selection flags, its own flags, then Replay.
		fs := flag.NewFlagSet("replay --rebuild", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := newReplayFlags(fs)
		fs.Bool("rebuild", false, "")
		dsn := fs.String("database", "", "")
		if err := fs.Parse(args); err != nil {
			return err
		}
		o, err := f.options(time.Now())
		if err != nil {
			return err
		}
		gotOpts = o
		if *dsn != "postgres://x" {
			return errors.New("own flag lost")
		}
		return client.Replay(ctx, o, func(bus.Delivery, error) error { return nil })
	}
	args := []string{"--stream", "in", "--rebuild", "--database", "postgres://x", "--from-seq", "3"}
	if code := run(append([]string{"replay"}, args...), &out, &errOut); code != 0 {
		t.Fatalf("with the hook: exit %d, %s", code, errOut.String())
	}
	if !slices.Equal(gotArgs, args) || gotOpts.Stream != bus.StreamIn || gotOpts.StartSeq != 3 {
		t.Fatalf("hook got %v / %+v", gotArgs, gotOpts)
	}
	// --rebuild=false is an ordinary replay.
	gotArgs = nil
	if evs, _ := runReplay(t, "--rebuild=false", "--limit", "1"); len(evs) != 1 || gotArgs != nil {
		t.Fatalf("--rebuild=false: %d events, hook args %v", len(evs), gotArgs)
	}
}

func TestReplayFlagParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2026-11-27T08:00:00Z":      time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
		"2026-11-27T08:00:00.5Z":    time.Date(2026, 11, 27, 8, 0, 0, 5e8, time.UTC),
		"2026-11-27T16:00:00+08:00": time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC),
		"2026-11-26":                time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		"2h":                        now.Add(-2 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"1.5d":                      now.Add(-36 * time.Hour),
	} {
		got, err := replayTime("since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("replayTime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "d", "2026-13-01", "7days"} {
		if _, err := replayTime("since", in, now); err == nil {
			t.Errorf("replayTime(%q): no error", in)
		}
	}
	for in, want := range map[string]string{"in": bus.StreamIn, "TOOL": bus.StreamTool, "desk": bus.StreamDesk,
		"audit": bus.StreamAudit, "dlq": bus.StreamDLQ, "out": bus.StreamOut, "OMNI_IN": bus.StreamIn, "omni_dlq": bus.StreamDLQ} {
		if got, err := replayStream(in); err != nil || got != want {
			t.Errorf("replayStream(%q) = %q, %v", in, got, err)
		}
	}
	for args, want := range map[string]bool{
		"--rebuild": true, "-rebuild": true, "--rebuild=true": true, "--rebuild=1": true, "--rebuild=nope": true,
		"--rebuild=false": false, "--limit 3": false, "-- --rebuild": false, "--rebuilds": false, "rebuild": false,
	} {
		if got := replayWantsRebuild(strings.Fields(args)); got != want {
			t.Errorf("replayWantsRebuild(%q) = %v", args, got)
		}
	}
}
