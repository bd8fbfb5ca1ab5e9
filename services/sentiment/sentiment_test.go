package sentiment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/sandbox/alinlp"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencentnlp"
	"github.com/omnibus-dev/omnibus/services/sentiment"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	convID  = "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	custID  = "3f6c1b8e-2d4a-5e7f-9a1b-6c2d8e4f0a13"
	tcID    = "AKIDsentimentTest000000000000000000"
	tcKey   = "sentiment-test-tencent-key"
	aliID   = "LTAI5tSentimentTest01"
	aliKey  = "sentiment-test-aliyun-secret"
	timeout = 20 * time.Second
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type testBundle struct {
	bus *bustest.Bundle
	env *sim.Env
	cfg map[string]string
}

// sandbox starts both simulated vendors on loopback and returns the connector's environment
// for provider.
func sandbox(t testing.TB, provider string) (*sim.Env, map[string]string) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, quiet())
	if _, err := tencentnlp.New(env, tencentnlp.Config{SecretID: tcID, SecretKey: tcKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := alinlp.New(env, alinlp.Config{AccessKeyID: aliID, AccessKeySecret: aliKey}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := map[string]string{"SENTIMENT_PROVIDER": provider,
		"SENTIMENT_TENCENT_SECRET_ID": tcID, "SENTIMENT_TENCENT_SECRET_KEY": tcKey,
		"SENTIMENT_ALIYUN_ACCESS_KEY_ID": aliID, "SENTIMENT_ALIYUN_ACCESS_KEY_SECRET": aliKey,
		"SENTIMENT_BUDGET": "2s", "RESILIENCE_TENCENT_SENTIMENT_TIMEOUT": "1s", "RESILIENCE_ALIYUN_SENTIMENT_TIMEOUT": "1s"}
	switch provider {
	case "tencent":
		cfg["SENTIMENT_API_BASE"] = srv.URL + "/sandbox/" + tencentnlp.Vendor
	case "aliyun":
		cfg["SENTIMENT_API_BASE"] = srv.URL + "/sandbox/" + alinlp.Vendor
	}
	return env, cfg
}

func setup(t testing.TB, provider string, extra map[string]string) testBundle {
	t.Helper()
	b := bustest.New(t, bus.WithLogger(quiet()))
	env, cfg := sandbox(t, provider)
	for k, v := range extra {
		cfg[k] = v
	}
	servicetest.Run(t, sentiment.Service(), b.Client, nil, cfg)
	return testBundle{bus: b, env: env, cfg: cfg}
}

// messageAdded is an omni.desk.message.added of an inbound text, as the unifier publishes it.
func messageAdded(t testing.TB, msgID, channel, text string) event.Event {
	t.Helper()
	at := time.Date(2026, 12, 7, 10, 15, 0, 0, time.UTC).Format(time.RFC3339Nano)
	data := map[string]any{
		"message": map[string]any{"event_id": msgID, "conversation_id": convID, "customer_id": custID, "channel": channel,
			"direction": "inbound", "from": map[string]any{"kind": "phone", "masked": "+86 138****8000", "source": channel},
			"body": map[string]any{"type": "text", "text": text}, "sent_at": at},
		"conversation": map[string]any{"id": convID, "customer_id": custID, "status": "open", "channels": []string{channel},
			"opened_at": at, "last_event_at": at},
		"customer": map[string]any{"id": custID, "display_name": "王芳"},
	}
	e, err := event.New(sentiment.TypeMessageAdded, "/unifier", data, event.WithID("desk:msg:"+msgID), event.WithSubject(convID),
		event.WithPartitionKey(convID))
	if err != nil {
		t.Fatal(err)
	}
	if _, bench := t.(*testing.B); !bench {
		if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (tb testBundle) publish(t testing.TB, e event.Event) {
	t.Helper()
	if err := tb.bus.Client.Publish(context.Background(), sentiment.SubjectMessageAdded, e); err != nil {
		t.Fatal(err)
	}
}

// say publishes an inbound text message and waits for its score.
func (tb testBundle) say(t testing.TB, msgID, text string) scored {
	t.Helper()
	tb.publish(t, messageAdded(t, msgID, "wechatkf", text))
	return tb.scoreOf(t, msgID)
}

func (tb testBundle) scoreOf(t testing.TB, msgID string) scored {
	t.Helper()
	var got event.Event
	bustest.WaitFor(t, timeout, "the score of "+msgID, func() bool {
		for _, e := range tb.bus.Events(t, bus.StreamTool, sentiment.SubjectScored) {
			if e.ID() == "sentiment:scored:"+msgID {
				got = e
				return true
			}
		}
		return false
	})
	if err := schema.Default().Validate(got.Type(), got.Data()); err != nil {
		t.Fatalf("scored event not schema-valid: %v\n%s", err, got.Data())
	}
	if got.Subject() != convID || event.CorrelationID(got) != "desk:msg:"+msgID {
		t.Fatalf("subject %s correlation %s", got.Subject(), event.CorrelationID(got))
	}
	var s scored
	if err := json.Unmarshal(got.Data(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

type scored struct {
	sentiment.Scored
}

// alerts returns the alert events published so far, raised and cleared, in order.
func (tb testBundle) alerts(t testing.TB) []event.Event {
	t.Helper()
	return tb.bus.Events(t, bus.StreamTool, "omni.tool.ai.sentiment.alert.>")
}

// TestConformance runs the tool connectors' conformance suite: every message answered with
// declared, schema-valid events correlated to it, a redelivered message answered no second
// time, a clean shutdown.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.RunTool(t, connectortest.ToolHarness{
		Spec: sentiment.Spec, Service: sentiment.Service(),
		Setup: func(t *testing.T) map[string]string { _, cfg := sandbox(t, "tencent"); return cfg },
		Request: func(t *testing.T, n int) (string, event.Event) {
			return sentiment.SubjectMessageAdded, messageAdded(t, fmt.Sprintf("wechatkf:msg-%d", n), "wechatkf", "快递三天都没更新，我要投诉！！")
		},
	})
}

// TestVendors: each vendor scores through the sandbox on its real protocol, and the provenance
// names it and its API version.
func TestVendors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ provider, model, version, vendor string }{
		{"tencent", "nlp/AnalyzeSentiment", "2019-04-08", tencentnlp.Vendor},
		{"aliyun", "alinlp/GetSaChGeneral", "2020-06-29", alinlp.Vendor},
	} {
		t.Run(tt.provider, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tt.provider, nil)
			s := tb.say(t, "m1", "你们这服务太差了，再不解决我就要投诉！！我的手机 13800138000")
			p := s.Provenance
			if s.Label != "negative" || s.Score >= 0 || s.Confidence <= 0.5 || !s.Escalation || p.Provider != tt.provider ||
				p.Model != tt.model || p.Version != tt.version || p.FallbackFrom != "" || p.VendorRequestID == "" ||
				len(p.InputEventIDs) != 2 || p.InputEventIDs[0] != "desk:msg:m1" || p.InputEventIDs[1] != "m1" {
				t.Fatalf("%+v", s)
			}
			if recs := tb.env.Records(sim.Filter{Vendor: tt.vendor}); len(recs) != 1 || recs[0].Error != "" ||
				strings.Contains(string(recs[0].Data), "13800138000") {
				t.Fatalf("vendor records %+v (no raw phone number may reach the vendor)", recs)
			}
			// One masked audit record of the call.
			bustest.WaitFor(t, timeout, "the audit record", func() bool {
				return len(tb.bus.Events(t, bus.StreamAudit, "omni.audit.sentiment")) == 1
			})
		})
	}
}

// TestFallback: a vendor that fails, hangs past the budget or is not configured leaves the
// message to the built-in analyser, and the provenance says builtin, from which vendor and why.
func TestFallback(t *testing.T) {
	t.Parallel()
	t.Run("vendor errors", func(t *testing.T) {
		t.Parallel()
		b := bustest.New(t, bus.WithLogger(quiet()))
		env, cfg := sandbox(t, "tencent")
		if err := env.SetFault(tencentnlp.Vendor+" *", sim.Fault{ErrorRatio: 1, Code: "FailedOperation.ResourceBusy"}); err != nil {
			t.Fatal(err)
		}
		cfg["RESILIENCE_TENCENT_SENTIMENT_BACKOFF"] = "1ms"
		servicetest.Run(t, sentiment.Service(), b.Client, nil, cfg)
		s := testBundle{bus: b, env: env}.say(t, "m1", "客服一直不回复，太失望了")
		p := s.Provenance
		if s.Label != "negative" || p.Provider != "builtin" || p.Model != "pkg/sentiment" || !strings.HasPrefix(p.Version, "lexicon-") ||
			p.FallbackFrom != "tencent" || !strings.Contains(p.FallbackReason, "FailedOperation.ResourceBusy") {
			t.Fatalf("%+v", s)
		}
		if n := len(env.Records(sim.Filter{Vendor: tencentnlp.Vendor})); n != 3 {
			t.Fatalf("%d vendor calls, want 3 attempts", n)
		}
	})
	t.Run("vendor hangs", func(t *testing.T) {
		t.Parallel()
		b := bustest.New(t, bus.WithLogger(quiet()))
		env, cfg := sandbox(t, "aliyun")
		if err := env.SetFault(alinlp.Vendor+" *", sim.Fault{TimeoutRatio: 1}); err != nil {
			t.Fatal(err)
		}
		cfg["SENTIMENT_BUDGET"] = "300ms"
		delete(cfg, "RESILIENCE_ALIYUN_SENTIMENT_TIMEOUT")
		servicetest.Run(t, sentiment.Service(), b.Client, nil, cfg)
		s := testBundle{bus: b, env: env}.say(t, "m1", "Worst service ever. Cancel my account.")
		if p := s.Provenance; s.Label != "negative" || p.Provider != "builtin" || p.FallbackFrom != "aliyun" || p.FallbackReason != "timeout" {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, "tencent", map[string]string{"SENTIMENT_TENCENT_SECRET_KEY": ""})
		s := tb.say(t, "m1", "谢谢，问题解决了")
		if p := s.Provenance; s.Label != "positive" || p.Provider != "builtin" || p.FallbackFrom != "tencent" || !strings.Contains(p.FallbackReason, "not configured") {
			t.Fatalf("%+v", s)
		}
		if n := len(tb.env.Records(sim.Filter{})); n != 0 {
			t.Fatalf("%d vendor calls without credentials", n)
		}
	})
	t.Run("builtin", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, "builtin", nil)
		if p := tb.say(t, "m1", "好的").Provenance; p.Provider != "builtin" || p.FallbackFrom != "" || p.FallbackReason != "" {
			t.Fatalf("%+v", p)
		}
	})
}

// TestEpisode: a customer who turns negative raises one alert however many angry messages
// follow, and it is cleared once when they recover; a restarted connector raises no alert
// already raised; outbound and non-text messages are not scored.
func TestEpisode(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	_, cfg := sandbox(t, "tencent")
	stop := servicetest.Run(t, sentiment.Service(), b.Client, nil, cfg)
	tb := testBundle{bus: b}
	tb.say(t, "m1", "你好，我想查一下订单")
	if n := len(tb.alerts(t)); n != 0 {
		t.Fatalf("%d alerts after a neutral message", n)
	}
	if s := tb.say(t, "m2", "都说了三天到，现在还是没有物流更新，太慢了！"); !s.NegativeEpisode {
		t.Fatalf("%+v", s)
	}
	tb.say(t, "m3", "你们这服务太差了，再不解决我就要投诉！！")
	got := tb.alerts(t)
	if len(got) != 1 || got[0].Type() != sentiment.TypeAlertRaised || got[0].ID() != "sentiment:raised:m2" {
		t.Fatalf("alerts %v", ids(got))
	}
	var a sentiment.Alert
	if err := json.Unmarshal(got[0].Data(), &a); err != nil || a.Episode != 1 || a.MessageID != "m2" || a.MeanScore >= -0.4 ||
		a.ConversationID != convID || len(a.InputEventIDs) != 2 || a.InputEventIDs[0] != "sentiment:scored:m2" {
		t.Fatalf("%+v %v", a, err)
	}
	if err := schema.Default().Validate(got[0].Type(), got[0].Data()); err != nil {
		t.Fatal(err)
	}

	// A restart in the middle of the episode: the new connector carries on from the stored state.
	stop()
	servicetest.Run(t, sentiment.Service(), b.Client, nil, cfg)
	tb.say(t, "m4", "客服一直不回复，太失望了")
	if n := len(tb.alerts(t)); n != 1 {
		t.Fatalf("restart raised again: %v", ids(tb.alerts(t)))
	}
	if s := tb.say(t, "m5", "好的，谢谢，问题解决了！"); !s.NegativeEpisode {
		t.Fatalf("one kind word is not recovery (hysteresis): %+v", s)
	}
	if s := tb.say(t, "m6", "退款收到了，谢谢你们，非常满意"); s.NegativeEpisode {
		t.Fatalf("still negative: %+v", s)
	}
	tb.say(t, "m7", "谢谢你们，非常满意")
	got = tb.alerts(t)
	if len(got) != 2 || got[1].Type() != sentiment.TypeAlertCleared || got[1].ID() != "sentiment:cleared:m6" {
		t.Fatalf("alerts %v", ids(got))
	}
	if err := schema.Default().Validate(got[1].Type(), got[1].Data()); err != nil {
		t.Fatal(err)
	}

	// Outbound and non-text messages: nothing.
	out := messageAdded(t, "o1", "wechatkf", "非常抱歉给您带来不便")
	var data map[string]any
	_ = json.Unmarshal(out.Data(), &data)
	msg := data["message"].(map[string]any)
	msg["direction"], msg["to"], msg["status"] = "outbound", msg["from"], "sent"
	delete(msg, "from")
	_ = out.SetData("application/json", data)
	tb.publish(t, out)
	tb.say(t, "m8", "好")
	if n := b.StoredCount(t, bus.StreamTool, sentiment.SubjectScored); n != 8 {
		t.Fatalf("%d scores, want 8 (the outbound message is not scored)", n)
	}
}

func ids(es []event.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type() + " " + e.ID()
	}
	return out
}

// TestRedelivery: a message delivered again — under another JetStream message id, as after a
// lost ack, and after more messages of the conversation — publishes nothing twice and moves no
// episode.
func TestRedelivery(t *testing.T) {
	t.Parallel()
	tb := setup(t, "builtin", nil)
	first := messageAdded(t, "m1", "sms", "你们这服务太差了，再不解决我就要投诉！！")
	tb.publish(t, first)
	tb.scoreOf(t, "m1")
	tb.say(t, "m2", "还是没人处理")
	hdr, body, err := event.Encode(first)
	if err != nil {
		t.Fatal(err)
	}
	hdr.Set(jetstream.MsgIDHeader, "redelivery:"+first.ID())
	if _, err := tb.bus.Client.JetStream().PublishMsg(context.Background(), &nats.Msg{Subject: sentiment.SubjectMessageAdded, Header: hdr, Data: body}); err != nil {
		t.Fatal(err)
	}
	tb.say(t, "m3", "好")
	if n := tb.bus.StoredCount(t, bus.StreamTool, sentiment.SubjectScored); n != 3 {
		t.Fatalf("%d scores, want 3", n)
	}
	if got := tb.alerts(t); len(got) != 1 {
		t.Fatalf("alerts %v", ids(got))
	}
}

// TestVoiceTranscript: a call's transcript arrives as a voice inbound text message and is scored
// like any other.
func TestVoiceTranscript(t *testing.T) {
	t.Parallel()
	tb := setup(t, "aliyun", nil)
	tb.publish(t, messageAdded(t, "voice:call-1:seg-3", "voice", "我已经打了三次电话了，还是没人处理，太失望了"))
	s := tb.scoreOf(t, "voice:call-1:seg-3")
	if s.Channel != "voice" || s.Label != "negative" || s.Provenance.Provider != "aliyun" {
		t.Fatalf("%+v", s)
	}
}
