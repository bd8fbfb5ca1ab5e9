package voice_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/service"
	speechsim "github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// The environment of a connector run in a child process (TestVoiceProcess): the NATS URL and
// the connector's variables as JSON.
const (
	envChildNATS = "VOICE_TEST_CHILD_NATS"
	envChildVars = "VOICE_TEST_CHILD_VARS"
)

// TestVoiceProcess is not a test: it is the voice connector as a process of its own, run by
// TestCrashMidCallUnderASR (the test binary started again with -test.run=^TestVoiceProcess$),
// which kills it. It prints "ready" once the connector serves.
func TestVoiceProcess(t *testing.T) {
	url := os.Getenv(envChildNATS)
	if url == "" {
		t.Skip("run as a child process by TestCrashMidCallUnderASR")
	}
	var vars map[string]string
	if err := json.Unmarshal([]byte(os.Getenv(envChildVars)), &vars); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bus.Connect(nc, bus.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	err = voice.Service().Run(context.Background(), service.Deps{Bus: c, Mux: http.NewServeMux(), Log: quiet(),
		Health: service.NewHealth(), Started: func() { _, _ = os.Stdout.WriteString("ready\n") },
		Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	t.Fatalf("the connector returned (%v): it should have been killed", err)
}

// TestCrashMidCallUnderASR: the voice connector runs as a process of its own; a call streams to
// the sandbox's iFlytek RTASR; once a sentence's final segment is published and every packet
// sent is in the spool, the process is killed (SIGKILL: no hang-up, no finalised header, no
// ended event). A connector started again on the same spool directory and the same bus
// recovers the call: the audio received before the kill is stored whole, the ended event says
// reason recovered and transcript partial, and the stream holds the call's started, answered,
// the sentence's segments and one ended — nothing published before the crash is lost.
func TestCrashMidCallUnderASR(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the connector as a child process")
	}
	t.Parallel()
	pcm := utterances(t, "en-order-number")
	_, vars := asrSandbox(t)
	b := bustest.New(t, bus.WithLogger(quiet()))
	dir := t.TempDir()
	tb := &testBundle{bus: b, sipAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)), spool: filepath.Join(dir, "spool"),
		records: filepath.Join(dir, "recordings")}
	vars["VOICE_SIP_LISTEN"], vars["VOICE_RTP_PORTS"] = tb.sipAddr, rtpRange(t)
	vars["VOICE_SPOOL_DIR"], vars["VOICE_RECORDING_BUCKET"], vars["VOICE_MEDIA_TIMEOUT"] = tb.spool, "file://"+tb.records, "10s"
	raw, err := json.Marshal(vars)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestVoiceProcess$")
	child.Env = append(os.Environ(), envChildNATS+"="+b.Server.URL(), envChildVars+"="+string(raw))
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	if ok := <-ready; !ok {
		t.Fatal("the connector process exited before it served")
	}

	_, c := dial(t, tb)
	c.sendPCM(t, pcm)
	var finals []segment
	bustest.WaitFor(t, 15*time.Second, "the sentence's final segment", func() bool {
		_, finals = tb.segments(t)
		return len(finals) == 1
	})
	sent := int64(len(pcm) / 320 * 320)
	waitSpooled(t, tb, sent)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if evs := tb.events(t); len(evs[voice.TypeCallEnded]) != 0 {
		t.Fatal("the killed connector published an ended event")
	}

	re := start(t, b, map[string]string{"VOICE_SPOOL_DIR": tb.spool, "VOICE_RECORDING_BUCKET": "file://" + tb.records})
	d := ended(t, re.waitEnded(t, 1, 15*time.Second)[voice.TypeCallEnded][0])
	if d.Reason != "recovered" || d.HangupSide != "system" || d.AnsweredAt == "" || d.Recording == nil || d.Transcript != "partial" {
		t.Fatalf("ended = %+v, want recovered with transcript partial", d)
	}
	re.checkRecovered(t, d, sent)
	u, _ := speechsim.Find("en-order-number")
	if _, after := re.segments(t); len(after) != 1 || after[0].Text != u.Text || after[0].SegmentID != finals[0].SegmentID {
		t.Errorf("final segments after the restart %+v, want the one published before the kill (%q)", after, u.Text)
	}
	if left, _ := os.ReadDir(tb.spool); len(left) != 0 {
		t.Errorf("spool not emptied after recovery: %d files", len(left))
	}
}
