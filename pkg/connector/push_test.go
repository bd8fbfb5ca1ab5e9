package connector_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
)

func TestEventTime(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	beijing := time.FixedZone("CST", 8*3600)
	for _, tc := range []struct {
		name    string
		vendor  time.Time
		want    time.Time
		clamped bool
	}{
		{"a second ago", received.Add(-time.Second), received.Add(-time.Second), false},
		{"Beijing time, an hour ago", received.Add(-time.Hour).In(beijing), received.Add(-time.Hour), false},
		{"5 min ahead: skew", received.Add(5 * time.Minute), received.Add(5 * time.Minute), false},
		{"just past 5 min ahead", received.Add(5*time.Minute + time.Second), received, true},
		{"2099", time.Date(2099, 1, 1, 0, 0, 0, 0, beijing), received, true},
		{"7 days behind: a late retry", received.Add(-7 * 24 * time.Hour), received.Add(-7 * 24 * time.Hour), false},
		{"just past 7 days behind", received.Add(-7*24*time.Hour - time.Second), received, true},
		{"2001", time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC), received, true},
		{"Unix epoch 1", time.Unix(1, 0), received, true},
		{"year 1 (no overflow)", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), received, true},
		{"no vendor time", time.Time{}, received, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, orig := connector.EventTime(tc.vendor, received.In(beijing))
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("time %s, want %s in UTC", got, tc.want)
			}
			if (orig != nil) != tc.clamped {
				t.Fatalf("original %v, want clamped %v", orig, tc.clamped)
			}
			if orig != nil && (!orig.Equal(tc.vendor) || orig.Location() != time.UTC) {
				t.Errorf("original %s, want %s in UTC", orig, tc.vendor)
			}
		})
	}
	w := connector.TimeWindow{Ahead: 0, Behind: time.Minute}
	if _, orig := w.EventTime(received.Add(time.Nanosecond), received); orig == nil {
		t.Error("a window without skew took a time after receipt")
	}
}

func TestRuntimeEventTimeWarnsAndCounts(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	reader := sdkmetric.NewManualReader()
	rt := &connector.Runtime{Spec: connector.Spec{Name: "t"}, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}
	now := time.Now()
	ctx := context.Background()
	if got, orig := rt.EventTime(ctx, now.Add(-time.Minute), now, "event", "e0"); orig != nil || !got.Equal(now.Add(-time.Minute)) {
		t.Fatalf("an ordinary time: %s, %v", got, orig)
	}
	if logs.Len() != 0 {
		t.Fatalf("an ordinary time logged %s", logs.String())
	}
	for i, v := range []time.Time{time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2001, 1, 2, 0, 0, 0, 0, time.UTC)} {
		if got, orig := rt.EventTime(ctx, v, now, "event", fmt.Sprint("e", i+1)); orig == nil || !got.Equal(now) {
			t.Fatalf("%s: %s, %v", v, got, orig)
		}
	}
	out := logs.String()
	for _, want := range []string{"level=WARN", "vendor_time=2099-01-01T00:00:00.000Z", "direction=ahead", "direction=behind", "event=e1", "event=e3"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != connector.MetricVendorTimeClamped {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				c, _ := dp.Attributes.Value("connector")
				d, _ := dp.Attributes.Value("direction")
				counts[c.AsString()+"/"+d.AsString()] += dp.Value
			}
		}
	}
	if counts["t/ahead"] != 1 || counts["t/behind"] != 2 || len(counts) != 2 {
		t.Fatalf("%s = %v", connector.MetricVendorTimeClamped, counts)
	}
}

// ---- large pushes ----

// runPush starts a test connector whose push webhook turns a body "n" into n events (ids
// "<prefix><i>"; the event at index bad, if any, is schema-invalid) on subject, and records what
// Respond was given.
func runPush(t *testing.T, subject string) (*bustest.Bundle, *httptest.Server, *[]int) {
	t.Helper()
	b := bustest.New(t)
	mux := http.NewServeMux()
	var responded []int
	svc := connector.Define(spec, func(ctx context.Context, rt *connector.Runtime, c *cfg) error {
		return rt.Webhook(connector.Webhook{
			Path: "/push", MaxBody: 64,
			Verify: c.verify,
			Decode: func(r *http.Request, body []byte) ([]bus.Outgoing, error) {
				var n, bad int
				if _, err := fmt.Sscanf(string(body), "%d %d", &n, &bad); err != nil {
					if string(body) == "busy" {
						return nil, fmt.Errorf("%w: try later", webhook.ErrUnavailable)
					}
					return nil, fmt.Errorf("%w: want a count", webhook.ErrMalformed)
				}
				out := make([]bus.Outgoing, n)
				for i := range out {
					d := data(fmt.Sprint(i))
					if i == bad-1 {
						delete(d, "from")
					}
					e, err := rt.NewEvent("omni.channel.message.received", d, event.WithID(fmt.Sprint(r.URL.Query().Get("p"), i)))
					if err != nil {
						return nil, err
					}
					out[i] = bus.Outgoing{Subject: subject, Event: e}
				}
				return out, nil
			},
			Respond: func(w http.ResponseWriter, _ *http.Request, published []bus.Outgoing) {
				responded = append(responded, len(published))
				_, _ = w.Write([]byte("success"))
			},
		})
	})
	return b, serve(t, b, svc, mux, "/hooks/t/push"), &responded
}

func postPush(t *testing.T, url, body, sig string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Sig", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestWebhookLargePush(t *testing.T) {
	t.Parallel()
	t.Run("stored in chunks, then answered", func(t *testing.T) {
		t.Parallel()
		b, srv, responded := runPush(t, "omni.in.t.message")
		// 2,500 events: three chunks.
		if status, _, body := postPush(t, srv.URL+"/hooks/t/push?p=a", "2500 0", "s"); status != http.StatusOK || body != "success" {
			t.Fatalf("answered %d %s", status, body)
		}
		if n := b.StoredCount(t, bus.StreamIn, "omni.in.t.message.>"); n != 2500 {
			t.Fatalf("%d stored", n)
		}
		if len(*responded) != 1 || (*responded)[0] != 2500 {
			t.Fatalf("Respond got %v", *responded)
		}
		// The same push again: stored once.
		if status, _, _ := postPush(t, srv.URL+"/hooks/t/push?p=a", "2500 0", "s"); status != http.StatusOK {
			t.Fatalf("re-push answered %d", status)
		}
		if n := b.StoredCount(t, bus.StreamIn, "omni.in.t.message.>"); n != 2500 {
			t.Fatalf("%d stored after a re-push", n)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		b, srv, responded := runPush(t, "omni.in.t.message")
		for _, tc := range []struct {
			name, body, sig string
			status          int
			reason          string
			retry           bool
		}{
			{"forged", "1 0", "wrong", http.StatusUnauthorized, "signature", false},
			{"malformed", "many", "s", http.StatusBadRequest, "want a count", false},
			{"too big", strings.Repeat("1", 65), "s", http.StatusRequestEntityTooLarge, "larger than 64", false},
			{"decoder unavailable", "busy", "s", http.StatusServiceUnavailable, "try later", true},
			// Event 1500 (of the second chunk) is invalid: the first chunk and the rest of the
			// second are stored, the third not attempted, the vendor told to retry.
			{"an invalid event", "2500 1501", "s", http.StatusServiceUnavailable, "[1500]", true},
		} {
			status, h, body := postPush(t, srv.URL+"/hooks/t/push?p=r", tc.body, tc.sig)
			if status != tc.status || !strings.Contains(body, tc.reason) || (h.Get("Retry-After") != "") != tc.retry {
				t.Errorf("%s: answered %d (Retry-After %q) %.300s; want %d with %q", tc.name, status, h.Get("Retry-After"), body, tc.status, tc.reason)
			}
		}
		if n := b.StoredCount(t, bus.StreamIn, "omni.in.t.message.>"); n != 1999 {
			t.Fatalf("%d stored, want the first two chunks but the invalid event", n)
		}
		if len(*responded) != 0 {
			t.Fatalf("Respond ran for refused pushes: %v", *responded)
		}
	})
	t.Run("undeclared subject: nothing published", func(t *testing.T) {
		t.Parallel()
		b, srv, _ := runPush(t, "omni.in.other.message")
		if status, _, body := postPush(t, srv.URL+"/hooks/t/push", "1500 0", "s"); status != http.StatusInternalServerError {
			t.Fatalf("answered %d %s", status, body)
		}
		if n := b.StoredCount(t, bus.StreamIn, ">"); n != 0 {
			t.Fatalf("%d undeclared events published", n)
		}
	})
	t.Run("no stream: retry", func(t *testing.T) {
		t.Parallel()
		b, srv, responded := runPush(t, "omni.in.t.message")
		if err := b.Client.JetStream().DeleteStream(context.Background(), bus.StreamIn); err != nil {
			t.Fatal(err)
		}
		status, h, body := postPush(t, srv.URL+"/hooks/t/push", "1500 0", "s")
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "not stored, retry") {
			t.Fatalf("answered %d %s", status, body)
		}
		if len(*responded) != 0 {
			t.Fatalf("Respond ran: %v", *responded)
		}
	})
}

// ---- batched KV access ----

type kvBundle struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

func kvSetup(t *testing.T, cfg jetstream.KeyValueConfig) *kvBundle {
	t.Helper()
	b := bustest.New(t)
	js := b.Client.JetStream()
	if cfg.Bucket == "" {
		cfg.Bucket = "push_test"
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &kvBundle{js: js, kv: kv}
}

func keys(prefix string, n int) []connector.KVPut {
	out := make([]connector.KVPut, n)
	for i := range out {
		out[i] = connector.KVPut{Key: fmt.Sprintf("%s.%05d", prefix, i), Value: []byte(fmt.Sprint(i))}
	}
	return out
}

// checkMany reads want's keys and absent keys back with GetMany and compares.
func (kb *kvBundle) checkMany(t *testing.T, want []connector.KVPut, absent []string) {
	t.Helper()
	var ks []string
	for _, p := range want {
		ks = append(ks, p.Key)
	}
	ks = append(ks, absent...)
	entries, err := connector.GetMany(context.Background(), kb.js, kb.kv, ks)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range want {
		if entries[i] == nil || string(entries[i].Value()) != string(p.Value) || entries[i].Key() != p.Key || entries[i].Revision() == 0 {
			t.Fatalf("key %s: entry %v, want %q", p.Key, entries[i], p.Value)
		}
	}
	for i := range absent {
		if e := entries[len(want)+i]; e != nil {
			t.Fatalf("absent key %s has entry %q", absent[i], e.Value())
		}
	}
}

func TestPutManyGetMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cfg    jetstream.KeyValueConfig
		atomic bool
	}{
		{"async puts, batched gets", jetstream.KeyValueConfig{TTL: time.Hour}, false},
		{"atomic puts, batched gets", jetstream.KeyValueConfig{TTL: time.Hour}, true},
		{"no direct gets: one get per key", jetstream.KeyValueConfig{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kb := kvSetup(t, tc.cfg)
			if tc.atomic {
				if err := connector.AllowAtomicPuts(ctx, kb.js, kb.kv); err != nil {
					t.Fatal(err)
				}
				if s, err := kb.js.Stream(ctx, "KV_push_test"); err != nil || !s.CachedInfo().Config.AllowAtomicPublish {
					t.Fatalf("atomic publish not on: %v", err)
				}
			}
			if tc.name == "no direct gets: one get per key" {
				s, err := kb.js.Stream(ctx, "KV_push_test")
				if err != nil {
					t.Fatal(err)
				}
				cfg := s.CachedInfo().Config
				cfg.AllowDirect = false
				if _, err := kb.js.UpdateStream(ctx, cfg); err != nil {
					t.Fatal(err)
				}
			}
			// 2,500 keys: two full chunks and a partial one.
			puts := keys("in", 2500)
			if err := connector.PutMany(ctx, kb.js, kb.kv, puts); err != nil {
				t.Fatal(err)
			}
			if st, _ := kb.kv.Status(ctx); st.Values() != 2500 {
				t.Fatalf("bucket holds %d values", st.Values())
			}
			kb.checkMany(t, puts, []string{"in.99999", "other.1"})
			// A put wins over the earlier value, the later of two in one call too; a deleted key
			// reads as absent.
			if err := connector.PutMany(ctx, kb.js, kb.kv, []connector.KVPut{{Key: "in.00007", Value: []byte("older")},
				{Key: "in.00008", Value: []byte("x")}, {Key: "in.00007", Value: []byte("new")}}); err != nil {
				t.Fatal(err)
			}
			if err := kb.kv.Delete(ctx, "in.00009"); err != nil {
				t.Fatal(err)
			}
			entries, err := connector.GetMany(ctx, kb.js, kb.kv, []string{"in.00007", "in.00009", "in.00010"})
			if err != nil || string(entries[0].Value()) != "new" || entries[1] != nil || string(entries[2].Value()) != "10" {
				t.Fatalf("after update and delete: %v, %v", entries, err)
			}
			// None of the keys exists.
			entries, err = connector.GetMany(ctx, kb.js, kb.kv, []string{"none.1", "none.2"})
			if err != nil || entries[0] != nil || entries[1] != nil {
				t.Fatalf("absent keys: %v, %v", entries, err)
			}
		})
	}
}

func TestManyInvalidKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kb := kvSetup(t, jetstream.KeyValueConfig{})
	err := connector.PutMany(ctx, kb.js, kb.kv, []connector.KVPut{{Key: "ok.1", Value: []byte("1")}, {Key: "in.>", Value: []byte("2")},
		{Key: "a..b", Value: []byte("3")}, {Key: "ok.2", Value: []byte("4")}})
	var ke *connector.KeysError
	if !errors.As(err, &ke) || !errors.Is(err, connector.ErrInvalidKey) || len(ke.Failed) != 2 || ke.Failed[1] == nil || ke.Failed[2] == nil {
		t.Fatalf("PutMany: %v", err)
	}
	// A wildcard must not read other keys.
	entries, err := connector.GetMany(ctx, kb.js, kb.kv, []string{"ok.*", "ok.1", ">"})
	if !errors.As(err, &ke) || ke.Op != "get" || len(ke.Failed) != 2 || entries[0] != nil || entries[2] != nil || string(entries[1].Value()) != "1" {
		t.Fatalf("GetMany: %v, %v", entries, err)
	}
	if entries, err := connector.GetMany(ctx, kb.js, kb.kv, nil); err != nil || len(entries) != 0 {
		t.Fatalf("no keys: %v, %v", entries, err)
	}
}

func TestManyCancelled(t *testing.T) {
	t.Parallel()
	kb := kvSetup(t, jetstream.KeyValueConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := connector.PutMany(ctx, kb.js, kb.kv, keys("in", 10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutMany on a cancelled context: %v", err)
	}
	if _, err := connector.GetMany(ctx, kb.js, kb.kv, []string{"in.00001"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetMany on a cancelled context: %v", err)
	}
}
