package nls_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// TestTTS: the RESTful synthesis takes the token (in the body, or the query's parameter) and the project's appkey,
// by POST JSON or GET query; its audio is the deterministic tone of the text, 16-bit PCM at the
// asked rate; refusals are the JSON error with the NLS status.
func TestTTS(t *testing.T) {
	t.Parallel()
	base := setup(t)
	_, tr := token(t, base, secret)
	tok := tr.Token.ID
	// The token goes in the body here (the voice connector's client sends it in X-NLS-Token).
	post := func(tok string, body map[string]any) (int, http.Header, []byte) {
		t.Helper()
		body["token"] = tok
		return simtest.Do(t, http.MethodPost, base+"/sandbox/nls/stream/v1/tts", "", body)
	}
	const text = "您好，请稍候"
	status, hdr, pcm := post(tok, map[string]any{"appkey": appKey, "text": text, "format": "pcm", "sample_rate": 8000})
	want := utf8.RuneCountInString(text) * nls.TTSMSPerRune * 8
	if status != 200 || hdr.Get("task_id") == "" || len(pcm) != 2*want || len(nls.TTSTone(text, 8000)) != want {
		t.Fatalf("POST: %d task %q, %d bytes, want %d samples", status, hdr.Get("task_id"), len(pcm), want)
	}
	q := url.Values{"appkey": {appKey}, "text": {text}, "token": {tok}, "format": {"pcm"}}
	g, err := http.Get(base + "/sandbox/nls/stream/v1/tts?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := io.ReadAll(g.Body)
	g.Body.Close()
	if g.StatusCode != 200 || len(gb) != 4*want { // default 16000 Hz
		t.Fatalf("GET: %d, %d bytes, want %d", g.StatusCode, len(gb), 4*want)
	}
	for name, tc := range map[string]struct {
		token  string
		body   map[string]any
		http   int
		status int
	}{
		"bad token":    {"nope", map[string]any{"appkey": appKey, "text": text}, 401, 40000001},
		"wrong appkey": {tok, map[string]any{"appkey": "other", "text": text}, 400, 40020105},
		"no text":      {tok, map[string]any{"appkey": appKey, "text": " "}, 400, 40000002},
		"mp3":          {tok, map[string]any{"appkey": appKey, "text": text, "format": "mp3"}, 400, 40000002},
	} {
		status, _, b := post(tc.token, tc.body)
		var e struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &e); err != nil || status != tc.http || e.Status != tc.status || e.Message == "" {
			t.Errorf("%s: %d %s", name, status, b)
		}
	}
}
