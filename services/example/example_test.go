package example_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/example"
)

const secret = "test-secret"

func inbound(t *testing.T, n int, sign func(ts string, body []byte) string) *http.Request {
	t.Helper()
	sentAt := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	body := []byte(fmt.Sprintf(`{"id":"msg-%d","from":"+86138001380%02d","text":"你好 %d","sent_at":%q}`, n, n%100, n, sentAt))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, "/hooks/example/messages", bytes.NewReader(body))
	req.Header.Set("X-Example-Timestamp", ts)
	req.Header.Set("X-Example-Signature", sign(ts, body))
	return req
}

// vendor is a fake example vendor recording sends, with signature checks.
type vendor struct {
	mu   sync.Mutex
	sent map[string]string // ref → text
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("X-Example-Signature") != example.Sign(secret, r.Header.Get("X-Example-Timestamp"), body) {
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	var m struct{ To, Text, Ref string }
	_ = json.Unmarshal(body, &m)
	v.mu.Lock()
	v.sent[m.Ref] = m.Text
	v.mu.Unlock()
	_, _ = w.Write([]byte(`{"message_id":"v-1"}`))
}

func TestConformance(t *testing.T) {
	t.Parallel()
	v := &vendor{sent: map[string]string{}}
	fake := httptest.NewServer(v)
	t.Cleanup(fake.Close)
	connectortest.Run(t, connectortest.Harness{
		Spec:    example.Spec,
		Service: example.Service(),
		Env:     map[string]string{"EXAMPLE_SECRET": secret, "EXAMPLE_API_BASE": fake.URL},
		Inbound: func(t *testing.T, n int) *http.Request {
			return inbound(t, n, func(ts string, b []byte) string { return example.Sign(secret, ts, b) })
		},
		Forged: func(t *testing.T, n int) *http.Request {
			return inbound(t, n, func(ts string, b []byte) string { return example.Sign("wrong", ts, b) })
		},
		Outbound: func(t *testing.T) (string, event.Event) {
			e, err := event.New(example.TypeSend, "/desk", map[string]any{
				"channel": "example", "to": map[string]string{"kind": "phone", "value": "+8613800138000"},
				"message": map[string]any{"type": "text", "text": "您的包裹已发出"},
			})
			if err != nil {
				t.Fatal(err)
			}
			return example.SubjectOut, e
		},
		Delivered: func(t *testing.T, e event.Event) bool {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.sent[e.ID()] == "您的包裹已发出"
		},
	})
}
