package audit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	mobile   = "13800138000"
	idCard   = "11010519491231002X"
	bankCard = "6222021234567890128"
)

func TestMaskerJSON(t *testing.T) {
	t.Parallel()
	m := audit.NewMasker(map[string]pii.Kind{"waybill_owner": pii.KindName}, 0)
	in := `{"receiverMobile":"` + mobile + `","consignee":"张三丰","idNo":"` + idCard + `","card_no":` + bankCard +
		`,"appSecret":"s3cr3t","remark":"call +86 139 0013 9000","items":[{"email":"alice@example.com"}],"waybill_owner":"李娜","waybill":"SF1234567890","n":42}`
	got, size, trunc := m.Body([]byte(in))
	if size != len(in) || trunc {
		t.Fatalf("size %d trunc %v", size, trunc)
	}
	for _, want := range []string{`"receiverMobile":"138****8000"`, `"consignee":"张**"`, `"idNo":"110***********002X"`,
		`"card_no":"***************0128"`, `"appSecret":"[REDACTED]"`, `"remark":"call +86******9000"`,
		`"email":"a***@example.com"`, `"waybill_owner":"李*"`, `"waybill":"SF1234567890"`, `"n":42`} {
		if !strings.Contains(got, want) {
			t.Errorf("masked body lacks %s:\n%s", want, got)
		}
	}
	if pii.Contains(got) || strings.Contains(got, "s3cr3t") {
		t.Fatalf("leak: %s", got)
	}
}

func TestMaskerFormXMLText(t *testing.T) {
	t.Parallel()
	m := audit.NewMasker(nil, 0)
	form, _, _ := m.Body([]byte("PhoneNumbers=" + mobile + "&SignName=%E9%98%BF%E9%87%8C&Signature=abc%3D&TemplateParam=%7B%22code%22%3A%221234%22%7D"))
	if strings.Contains(form, mobile) || strings.Contains(form, "abc%3D") || !strings.Contains(form, "PhoneNumbers=138%2A%2A%2A%2A8000") {
		t.Fatalf("form: %s", form)
	}
	xml, _, _ := m.Body([]byte("<xml><mobile><![CDATA[" + mobile + "]]></mobile><sign>ABCDEF</sign><note>id " + idCard + "</note></xml>"))
	if pii.Contains(xml) || strings.Contains(xml, "ABCDEF") || !strings.Contains(xml, "<mobile>138****8000</mobile>") {
		t.Fatalf("xml: %s", xml)
	}
	text, _, _ := m.Body([]byte("plain " + bankCard))
	if text != "plain ***************0128" {
		t.Fatalf("text: %s", text)
	}
}

func TestMaskerCapsOnRuneBoundary(t *testing.T) {
	t.Parallel()
	m := audit.NewMasker(nil, 10)
	const full = "顺丰速运顺丰速运"
	got, size, trunc := m.Body([]byte(full))
	if !trunc || size != 24 || len(got) > 10 || !strings.HasPrefix(full, got) {
		t.Fatalf("cap: %q %d %v", got, size, trunc)
	}
}

func FuzzMaskerBody(f *testing.F) {
	for _, s := range []string{`{"phone":"13800138000"}`, `[{"a":{"idNo":"11010519491231002X"}}]`, "a=1&mobile=13800138000",
		"<xml><tel>13800138000</tel></xml>", "card 6222021234567890128", `{"n":13800138000}`} {
		f.Add([]byte(s))
	}
	m := audit.NewMasker(nil, 1<<20)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _, _ := m.Body(b)
		if pii.Contains(got) {
			t.Fatalf("Body(%q) = %q still holds personal data", b, got)
		}
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func entry(i int) audit.Entry {
	return audit.Entry{
		Record: audit.Record{At: time.Now().UTC(), Service: "logistics", Vendor: "sfexpress", Op: "route_query", Outcome: audit.OutcomeOK,
			Status: 200, LatencyMS: 12.5, Attempts: 1, Idempotent: true, CustomerID: "c-" + string(rune('a'+i%26)),
			Error: ""},
		RequestBody:  []byte(`{"phone":"` + mobile + `"}`),
		ResponseBody: []byte(`{"ok":true,"owner":"` + idCard + `"}`),
		RequestType:  "application/json",
	}
}

func TestPublisherPublishesEveryRecord(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	var logs bytes.Buffer
	p, err := audit.NewPublisher(b.Client, audit.Options{Service: "logistics", Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		p.Emit(context.Background(), entry(i))
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := b.Events(t, bus.StreamAudit, "omni.audit.logistics")
	if len(evs) != n {
		t.Fatalf("stored %d records, want %d (log: %s)", len(evs), n, logs.String())
	}
	for _, e := range evs {
		if e.Type() != audit.TypeCallRecorded || pii.Contains(string(e.Data())) {
			t.Fatalf("record %s: %s", e.Type(), e.Data())
		}
		var r audit.Record
		if err := event.DecodeData(e, &r); err != nil || r.Request == nil || r.Request.Text != `{"phone":"138****8000"}` {
			t.Fatalf("record %+v: %v", r, err)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("unexpected log output: %s", logs.String())
	}
}

// failingBus refuses every publish. It fakes the one method of bus.Publisher the audit trail
// calls; the embedded nil interface panics if another is.
type failingBus struct{ bus.Publisher }

func (failingBus) Publish(context.Context, string, event.Event) error {
	return errors.New("nats: no responders")
}

// blockedBus blocks publishes until released.
// blockedBus holds every publish until release is closed (a bus.Publisher, like failingBus).
type blockedBus struct {
	bus.Publisher
	release chan struct{}
}

func (b blockedBus) Publish(ctx context.Context, _ string, _ event.Event) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestPublisherSpillsWhenFullOrBusDown(t *testing.T) {
	t.Parallel()
	t.Run("buffer full", func(t *testing.T) {
		t.Parallel()
		var logs syncBuffer
		bb := blockedBus{release: make(chan struct{})}
		p, err := audit.NewPublisher(bb, audit.Options{Service: "crm", Buffer: 2, Workers: 1, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		// One record is taken by the worker (blocked), two wait in the buffer, the rest spill — at once.
		for i := range 10 {
			p.Emit(context.Background(), entry(i))
		}
		spilled := strings.Count(logs.String(), "audit record spilled")
		close(bb.release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if spilled < 7 {
			t.Fatalf("spilled %d of 10 with a buffer of 2, want at least 7", spilled)
		}
		if pii.Contains(logs.String()) {
			t.Fatalf("the spilled records leak personal data: %s", logs.String())
		}
	})
	t.Run("bus down", func(t *testing.T) {
		t.Parallel()
		var logs syncBuffer
		p, err := audit.NewPublisher(failingBus{}, audit.Options{Service: "crm", Log: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		p.Emit(context.Background(), entry(0))
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(logs.String(), "audit record spilled"); n != 1 {
			t.Fatalf("spilled %d, want 1: %s", n, logs.String())
		}
		// After Close, Emit spills at once.
		p.Emit(context.Background(), entry(1))
		if n := strings.Count(logs.String(), "audit record spilled"); n != 2 {
			t.Fatalf("emit after close: spilled %d, want 2", n)
		}
	})
}

func TestNewPublisherValidates(t *testing.T) {
	t.Parallel()
	if _, err := audit.NewPublisher(failingBus{}, audit.Options{Service: "Bad Name"}); !errors.Is(err, audit.ErrInvalidOptions) {
		t.Fatalf("err = %v", err)
	}
	if _, err := audit.NewPublisher(nil, audit.Options{Service: "ok"}); !errors.Is(err, audit.ErrInvalidOptions) {
		t.Fatalf("err = %v", err)
	}
}
