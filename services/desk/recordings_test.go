package desk_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// A call's recording plays from the desk through the link the timeline signs for the agent: no
// token needed (an <audio> element can play it), seekable (Range), and nothing else — a tampered
// or foreign link is refused, and a recording URL outside the recordings bucket is not served.
func TestRecordingPlayedThroughSignedLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false", "DESK_RECORDING_BUCKET": "file://" + dir})
	w := newWorld(t, b)

	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 4000)...)
	id, foreign := uuid.NewString(), uuid.NewString()
	key := filepath.Join("2026", "12", "07", id, "caller.wav")
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(key)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, key), wav, 0o644); err != nil {
		t.Fatal(err)
	}
	at := w.t0.Add(time.Minute)
	end := func(call, rec string) {
		w.publish("omni.desk.call.ringing", "omni.desk.call.ringing", map[string]any{
			"call":         w.callView(call, "ringing", at, map[string]any{"started_at": at}),
			"conversation": w.convView(w.conv, w.cust, "open", []string{"sms", "voice"}, w.t0, at),
			"customer": map[string]any{"id": w.cust, "display_name": "张伟", "created_at": w.t0, "profile": map[string]any{},
				"profile_sources": map[string]any{}, "identities": []map[string]string{{"kind": "phone", "masked": "+86 138****8000", "source": "sms"}}},
		}, event.WithSubject(w.conv))
		w.publish("omni.desk.call.updated", "omni.desk.call.updated", map[string]any{"call": w.callView(call, "ended", at.Add(time.Minute),
			map[string]any{"started_at": at, "ended_at": at.Add(time.Minute), "duration_ms": 60000, "talk_ms": 0,
				"hangup_side": "caller", "reason": "cancel", "recording_url": rec})}, event.WithSubject(w.conv))
	}
	end(id, "file://"+filepath.ToSlash(dir)+"/"+filepath.ToSlash(key))
	end(foreign, "file:///etc/passwd")

	var tl struct{ Items []store.TimelineItem }
	bustest.WaitFor(t, 15*time.Second, "both calls on the timeline", func() bool {
		d.call(t, d.token, "GET", "/api/conversations/"+w.conv+"/timeline", nil, &tl)
		return len(tl.Items) == 2 && tl.Items[0].Call.State == "ended" && tl.Items[1].Call.State == "ended"
	})
	links := map[string]string{}
	for _, it := range tl.Items {
		if it.Call == nil || !strings.HasPrefix(it.Call.PlayURL, "/api/recordings/"+it.Call.CallID+"?exp=") {
			t.Fatalf("a call without its signed link: %+v", it.Call)
		}
		links[it.Call.CallID] = it.Call.PlayURL
	}
	get := func(path string, hdr map[string]string) (int, []byte, http.Header) {
		req, _ := http.NewRequest("GET", d.url+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body, resp.Header
	}
	if code, body, h := get(links[id], nil); code != 200 || string(body) != string(wav) || h.Get("Content-Type") != "audio/wav" {
		t.Fatalf("the recording: %d %s, %d bytes", code, h.Get("Content-Type"), len(body))
	}
	if code, body, _ := get(links[id], map[string]string{"Range": "bytes=0-3"}); code != 206 || string(body) != "RIFF" {
		t.Fatalf("a range of the recording: %d %q", code, body)
	}
	tampered := strings.Replace(links[id], "exp=", "exp=9", 1)
	if code, _, _ := get(tampered, nil); code != 403 {
		t.Fatalf("a link with a changed expiry: %d, want 403", code)
	}
	if code, _, _ := get(strings.Replace(links[id], id, foreign, 1), nil); code != 403 {
		t.Fatalf("one call's signature on another call: %d, want 403", code)
	}
	if code, body, _ := get(links[foreign], nil); code != 404 || strings.Contains(string(body), "root:") {
		t.Fatalf("a recording URL outside the bucket: %d %s", code, body)
	}
}
