package iflytek_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const appID, apiKey = "595f23df", "d9f4aa7ea6d94faca62cd88a28fd5234"

func setup(t *testing.T) (*sim.Env, string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, nil)
	if _, err := iflytek.New(env, iflytek.Config{AppID: appID, APIKey: apiKey}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return env, "ws" + strings.TrimPrefix(srv.URL, "http") + "/sandbox/iflytek/v1/ws"
}

// first dials with q and returns the server's first frame.
func first(t *testing.T, base string, q url.Values) (wire.Message, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, base+"?"+q.Encode(), nil) //nolint:bodyclose // coder/websocket owns the handshake response: its docs say never to close resp.Body
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m wire.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m, c
}

func query(ts time.Time, key, lang string) url.Values {
	s := strconv.FormatInt(ts.Unix(), 10)
	q := url.Values{"appid": {appID}, "ts": {s}, "signa": {wire.Signa(appID, s, key)}}
	if lang != "" {
		q.Set("lang", lang)
	}
	return q
}

// TestHandshake: the signa, ts window and licensed langs are checked with the vendor's codes.
func TestHandshake(t *testing.T) {
	t.Parallel()
	_, base := setup(t)
	now := time.Now()
	for _, tc := range []struct {
		name string
		q    url.Values
		want string
	}{
		{"good", query(now, apiKey, "cn"), ""},
		{"bad signa", query(now, "not-the-key", ""), wire.CodeNoLicense},
		{"stale ts", query(now.Add(-time.Hour), apiKey, ""), wire.CodeIllegalAccess},
		{"unlicensed dialect", query(now, apiKey, "cn_xinan"), wire.CodeNoLicense},
		{"missing signa", url.Values{"appid": {appID}, "ts": {"1"}}, wire.CodeInvalidParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, c := first(t, base, tc.q)
			if tc.want == "" {
				if m.Action != wire.ActionStarted || m.Code != "0" {
					t.Fatalf("got %+v", m)
				}
				// The end marker with no audio: the server closes normally.
				if err := c.Write(context.Background(), websocket.MessageText, []byte(wire.EndMarker)); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.Read(context.Background()); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
					t.Fatalf("after the end: %v", err)
				}
				return
			}
			if m.Action != wire.ActionError || m.Code != tc.want {
				t.Fatalf("got %+v, want error %s", m, tc.want)
			}
		})
	}
}

// TestDown: the "down" fault refuses the upgrade with 503.
func TestDown(t *testing.T) {
	t.Parallel()
	env, base := setup(t)
	if err := env.SetFault("iflytek rtasr", sim.Fault{ErrorRatio: 1, Code: "down"}); err != nil {
		t.Fatal(err)
	}
	_, resp, err := websocket.Dial(context.Background(), base+"?"+query(time.Now(), apiKey, "").Encode(), nil) //nolint:bodyclose // coder/websocket owns the handshake response: its docs say never to close resp.Body
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("err %v, resp %+v", err, resp)
	}
}
