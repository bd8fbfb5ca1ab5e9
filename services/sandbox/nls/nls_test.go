package nls_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const keyID, secret, appKey = "LTAI5tSandboxNls", "nls-secret", "sandboxAppKey01"

func setup(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, nil)
	if _, err := nls.New(env, nls.Config{AccessKeyID: keyID, AccessKeySecret: secret, AppKey: appKey}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func token(t *testing.T, base, sec string) (int, aliyun.TokenResponse) {
	t.Helper()
	q := aliyun.CreateTokenParams(keyID, sec, time.Now(), "b924c8c3-6d03-4c5d-ad36-d984d3116788")
	resp, err := http.Get(base + "/sandbox/nls/meta/?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tr aliyun.TokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return resp.StatusCode, tr
}

// TestCreateToken: the V1 signature is checked.
func TestCreateToken(t *testing.T) {
	t.Parallel()
	base := setup(t)
	if st, tr := token(t, base, "wrong"); st != http.StatusBadRequest || tr.Code != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %d %+v", st, tr)
	}
	if st, tr := token(t, base, secret); st != http.StatusOK || tr.Token == nil || tr.Token.ID == "" || tr.Token.ExpireTime <= time.Now().Unix() {
		t.Fatalf("good request: %d %+v", st, tr)
	}
}

// TestTranscriber: a bad token and a wrong appkey get TaskFailed with the vendor's status; a
// good session starts and completes.
func TestTranscriber(t *testing.T) {
	t.Parallel()
	base := setup(t)
	_, tr := token(t, base, secret)
	ws := "ws" + strings.TrimPrefix(base, "http") + "/sandbox/nls/ws/v1"
	for _, tc := range []struct {
		name, token, appKey string
		want                []string
		status              int
	}{
		{"bad token", "nope", appKey, []string{aliyun.NLSTaskFailed}, aliyun.NLSStatusBadToken},
		{"wrong appkey", tr.Token.ID, "other", []string{aliyun.NLSTaskFailed}, 40020105},
		{"good", tr.Token.ID, appKey, []string{aliyun.NLSStarted, aliyun.NLSCompleted}, aliyun.NLSStatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{aliyun.NLSTokenHeader: {tc.token}}}) //nolint:bodyclose // coder/websocket owns the handshake response: its docs say never to close resp.Body
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.CloseNow() }()
			cmd := func(name string, payload any) {
				m := aliyun.NLSMessage{Header: aliyun.NLSHeader{AppKey: tc.appKey, MessageID: "m", TaskID: "t", Namespace: aliyun.NLSNamespace, Name: name}}
				if payload != nil {
					m.Payload, _ = json.Marshal(payload)
				}
				b, _ := json.Marshal(m)
				_ = c.Write(ctx, websocket.MessageText, b)
			}
			cmd(aliyun.NLSStart, aliyun.NLSStartPayload{Format: "pcm", SampleRate: 8000})
			for i, name := range tc.want {
				_, b, err := c.Read(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var m aliyun.NLSMessage
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if m.Header.Name != name || m.Header.Status != tc.status {
					t.Fatalf("event %d: %s", i, b)
				}
				if name == aliyun.NLSStarted {
					_ = c.Write(ctx, websocket.MessageBinary, make([]byte, 3200))
					cmd(aliyun.NLSStop, nil)
				}
			}
		})
	}
}
