package desk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/desk"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(pgtest.Wrap(m),
		// chromedp's allocator and Chromium's pipes wind down just after the test that used them.
		goleak.IgnoreTopFunction("github.com/chromedp/chromedp.(*Browser).run"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// idp is a test OpenID Connect provider (discovery + JWKS over HTTP) that signs tokens.
type idp struct {
	url string
	key *rsa.PrivateKey
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.url = srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.url, "jwks_uri": p.url + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "test", Algorithm: "RS256", Use: "sig"}}})
	})
	return p
}

// token signs a token for agent with roles; mod may change the claims.
func (p *idp) token(t *testing.T, agent string, roles []string, mod func(map[string]any)) string {
	t.Helper()
	return signWith(t, p.key, map[string]any{"iss": p.url, "aud": "omnibus-desk", "sub": agent, "agent_id": agent, "roles": roles,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}, mod)
}

func signWith(t *testing.T, key *rsa.PrivateKey, c map[string]any, mod func(map[string]any)) string {
	t.Helper()
	if mod != nil {
		mod(c)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// deskBundle is a running desk with its bus, its HTTP server and a token.
type deskBundle struct {
	bus   *bustest.Bundle
	url   string
	idp   *idp
	token string // agent-li, roles agent
	super string // supervisor-wang, roles agent + supervisor
	store *store.Store
	pool  *pgxpool.Pool
}

// startDesk runs the desk on bus b with a fresh database until the test ends.
func startDesk(t *testing.T, b *bustest.Bundle, env map[string]string) *deskBundle {
	t.Helper()
	return startDeskWith(t, b, env, nil)
}

// startDeskWith is startDesk with personal-data keys.
func startDeskWith(t *testing.T, b *bustest.Bundle, env map[string]string, keys *pii.Keys) *deskBundle {
	t.Helper()
	pool := pgtest.NewDB(t, pgtest.WithMigrations("desk", store.Migrate))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	p := newIdP(t)
	e := map[string]string{"DESK_PUBLIC_URL": srv.URL, "DESK_OIDC_ISSUER": p.url, "DESK_AGENTS": "demo", "DESK_ASSIGN_INTERVAL": "1s"}
	if env["DESK_DEV_LOGIN"] == "true" {
		delete(e, "DESK_OIDC_ISSUER")
	}
	for k, v := range env {
		e[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := e[k]; return v, ok }
	var guard *httpguard.Guard // the process's abuse limits, when the test sets them
	if _, ok := e["RATE_API_TOKEN"]; ok {
		var gcfg httpguard.Config
		if err := config.Load(&gcfg, lookup); err != nil {
			t.Fatal(err)
		}
		var err error
		if guard, err = httpguard.New(gcfg, nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- desk.Run(ctx, service.Deps{Bus: b.Client, DB: pool, Mux: mux, Log: quiet(), Health: service.NewHealth(),
			Env: lookup, Guard: guard, PII: keys})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("desk stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("desk did not stop")
		}
		srv.Close()
	})
	d := &deskBundle{bus: b, url: srv.URL, idp: p, store: store.New(pool), pool: pool}
	d.token = p.token(t, "agent-li", []string{"agent"}, nil)
	d.super = p.token(t, "supervisor-wang", []string{"agent", "supervisor"}, nil)
	bustest.WaitFor(t, 20*time.Second, "the desk to serve", func() bool {
		select {
		case err := <-done:
			t.Fatalf("desk stopped: %v", err)
		default:
		}
		resp, err := http.Get(srv.URL + "/api/openapi.json")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return d
}

// call does an API request with token and decodes a JSON answer into out (if non-nil).
func (d *deskBundle) call(t *testing.T, token, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// --- event fixtures (valid against the schemas)

type world struct {
	t    *testing.T
	b    *bustest.Bundle
	cust string
	conv string
	t0   time.Time
}

func newWorld(t *testing.T, b *bustest.Bundle) *world {
	return &world{t: t, b: b, cust: uuid.NewString(), conv: uuid.NewString(), t0: time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond)}
}

func (w *world) publish(subject, typ string, data any, opts ...event.Option) event.Event {
	w.t.Helper()
	e, err := event.New(typ, "/services/unifier", data, opts...)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.b.Client.Publish(context.Background(), subject, e); err != nil {
		w.t.Fatalf("publish %s: %v", typ, err)
	}
	return e
}

func (w *world) convView(id, cust, status string, channels []string, opened, last time.Time) map[string]any {
	v := map[string]any{"id": id, "customer_id": cust, "status": status, "channels": channels, "opened_at": opened, "last_event_at": last}
	if status != "open" {
		v["closed_at"], v["close_reason"] = last, "closed by agent"
	}
	return v
}

func (w *world) customer(name string, profile map[string]any) {
	w.t.Helper()
	if profile == nil {
		profile = map[string]any{}
	}
	c := map[string]any{
		"id": w.cust, "created_at": w.t0, "profile": profile, "profile_sources": map[string]any{},
		"identities": []map[string]string{{"kind": "wechat_openid", "masked": "wmAb…45", "source": "wechatkf"}, {"kind": "phone", "masked": "+86 138****8000", "source": "crm:salesforce"}},
	}
	if name != "" {
		c["display_name"] = name
	}
	w.publish("omni.desk.customer.updated", "omni.desk.customer.updated", map[string]any{"customer": c}, event.WithSubject(w.cust))
}

func (w *world) opened(channels ...string) {
	w.t.Helper()
	w.publish("omni.desk.conversation.opened", "omni.desk.conversation.opened",
		map[string]any{"conversation": w.convView(w.conv, w.cust, "open", channels, w.t0, w.t0)}, event.WithSubject(w.conv))
}

// inbound publishes the channel's inbound message (what the connector sends) and the unifier's
// message.added for it; it returns the message id.
func (w *world) inbound(channel, kind, value, text string, at time.Time, channels ...string) string {
	w.t.Helper()
	id := fmt.Sprintf("%s:%s", channel, uuid.NewString())
	recv, err := event.New("omni.channel.message.received", "/connectors/"+channel, map[string]any{
		"channel": channel, "channel_message_id": id, "from": map[string]string{"kind": kind, "value": value}, "account": "wk_acct",
		"message": map[string]any{"type": "text", "text": text}, "sent_at": at}, event.WithID(id), event.WithPartitionKey(kind+":"+value))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.b.Client.Publish(context.Background(), "omni.in."+channel+".message", recv); err != nil {
		w.t.Fatal(err)
	}
	w.publish("omni.desk.message.added", "omni.desk.message.added", map[string]any{
		"message": map[string]any{"event_id": id, "conversation_id": w.conv, "customer_id": w.cust, "channel": channel, "direction": "inbound",
			"from": map[string]string{"kind": kind, "masked": value[:2] + "…", "source": channel}, "body": map[string]any{"type": "text", "text": text}, "sent_at": at},
		"conversation": w.convView(w.conv, w.cust, "open", channels, w.t0, at),
		"customer":     map[string]any{"id": w.cust, "display_name": "张伟"},
	}, event.WithSubject(w.conv))
	return id
}

func (w *world) toolResult(tool, op, outcome, corr string, result map[string]any, at time.Time) {
	w.t.Helper()
	w.publish("omni.desk.tool.result", "omni.desk.tool.result", map[string]any{
		"event_id": uuid.NewString(), "conversation_id": w.conv, "customer_id": w.cust, "tool": tool, "op": op, "outcome": outcome,
		"correlation_id": corr, "result": result, "at": at}, event.WithSubject(w.conv))
}

func dataOf(t *testing.T, e event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
