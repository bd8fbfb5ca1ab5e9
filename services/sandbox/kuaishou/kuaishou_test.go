package kuaishou_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
	"github.com/omnibus-dev/omnibus/services/sandbox/kuaishou"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const secret = "sandbox-test-app-secret"

// TestEventsSignedAndRetriedUntilAcknowledged: every attempt carries kwaisign over the same
// body; an answer other than 2xx {"result":1} is retried, four attempts in all.
func TestEventsSignedAndRetriedUntilAcknowledged(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies []string
	answer := `{"result":1}`
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !wire.Verify(secret, body, r.Header.Get(wire.SignHeader)) || r.URL.Path != "/hooks/kuaishou/webhook" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(body))
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(hooks.Close)
	env := sim.NewEnv(http.NewServeMux(), hooks.URL+"/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s, err := kuaishou.New(env, kuaishou.Config{AppKey: "ks_app", AppSecret: secret, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Test(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := sim.Population(1, 3)[0]
	if err := s.Write(context.Background(), c, "你好"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	answer = `{"result":0}` // not acknowledged: retried
	mu.Unlock()
	if err := s.Write(context.Background(), c, "在吗"); err == nil {
		t.Error("an event answered {\"result\":0} reported delivered")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 6 || bodies[2] != bodies[5] {
		t.Fatalf("%d requests, want TEST, one message, and 4 attempts of the same body", len(bodies))
	}
	e, err := wire.ParseEnvelope([]byte(bodies[1]))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := e.DataJSON()
	if e.Event != kuaishou.DefaultMessageEvent || e.AppKey != "ks_app" || e.ID() == "" ||
		!jsonHas(data, `"from_user_id":"`+kuaishou.OpenID(c)+`"`) || !jsonHas(data, `"text":"你好"`) {
		t.Errorf("message event %s", bodies[1])
	}
}

func jsonHas(b []byte, s string) bool { return strings.Contains(string(b), s) }
