package alert_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/alert"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// memStore is an alert.Store in memory. Its next failLoads loads fail.
type memStore struct {
	mu        sync.Mutex
	values    map[string][]byte
	failLoads int
}

func (s *memStore) Load(_ context.Context, prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failLoads > 0 {
		s.failLoads--
		return nil, errors.New("store unreachable")
	}
	out := map[string][]byte{}
	for k, v := range s.values {
		if strings.HasPrefix(k, prefix+".") {
			out[k] = v
		}
	}
	return out, nil
}

func (s *memStore) Save(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string][]byte{}
	}
	s.values[key] = value
	return nil
}

func (s *memStore) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range maps.Keys(s.values) {
		out = append(out, k)
	}
	return out
}

func TestRestartRestoresTheWindowAndTheAlert(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	m, b := setup(t, func(o *alert.Options) { o.Store = store })
	outage(t, m, b)
	m.Close() // the process stops; its state is saved
	if k := store.keys(); len(k) != 1 || k[0] != "vendor_failure_ratio.logistics.0.salesforce.lookup" {
		t.Fatalf("saved keys %v", k)
	}

	m = b.start(t)
	if st := m.Status("salesforce", "lookup"); !st.Raised || st.Calls != 90 || st.Failures != 22 {
		t.Fatalf("restored %+v, want the raised alert and its window (90 calls, 22 failures)", st)
	}
	// Another replica (another Instance) restores nothing of it.
	other := b.opts
	other.Instance = "logistics-1"
	m2, err := alert.NewMonitor(b.rec, other)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if st := m2.Status("salesforce", "lookup"); st.Raised || st.Calls != 0 {
		t.Fatalf("instance logistics-1 restored %+v, want nothing", st)
	}
	// The vendor recovers: the restored alert resolves with its own id.
	calls(m, b, 20*time.Second, "ok", "ok", "ok", "ok")
	m.Close()
	got := b.rec.types()
	if len(got) != 2 || got[0] != alert.TypeRaised || got[1] != alert.TypeResolved {
		t.Fatalf("events %v, want raised (first process) then resolved (second)", got)
	}
	if raised, resolved := decode(t, b.rec.events[0]), decode(t, b.rec.events[1]); raised.AlertID != resolved.AlertID {
		t.Fatalf("resolved %s, want the alert raised before the restart, %s", resolved.AlertID, raised.AlertID)
	}
}

func TestRestartAfterALongStopResolvesAtOnce(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	m, b := setup(t, func(o *alert.Options) { o.Store = store })
	outage(t, m, b)
	m.Close()
	b.clock.Advance(time.Hour)
	m = b.start(t)
	if m.Status("salesforce", "lookup").Raised {
		t.Fatal("an alert whose window emptied while the process was down is still raised")
	}
	m.Close()
	if got := b.rec.types(); len(got) != 2 || got[1] != alert.TypeResolved {
		t.Fatalf("events %v, want raised then resolved", got)
	}
}

func TestUnreadableStoreIsRetriedAndNotOverwritten(t *testing.T) {
	t.Parallel()
	store := &memStore{}
	m, b := setup(t, func(o *alert.Options) { o.Store = store })
	outage(t, m, b)
	m.Close()
	saved := maps.Clone(store.values)

	store.failLoads = 1 // the store is unreachable when the next process starts
	m = b.start(t)
	calls(m, b, time.Second, "ok")
	if st := m.Status("salesforce", "lookup"); st.Raised || st.Calls != 1 {
		t.Fatalf("before the state is read: %+v, want only the new call", st)
	}
	m.Tick() // reads it now: the live route takes over the saved alert
	if st := m.Status("salesforce", "lookup"); !st.Raised {
		t.Fatalf("after the state is read: %+v, want the saved alert", st)
	}
	m.Close()
	if got := b.rec.types(); len(got) != 1 {
		t.Fatalf("events %v, want only the first raise", got)
	}
	if maps.EqualFunc(saved, store.values, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("the merged state was not saved")
	}
}

// The state survives a restart on real JetStream: the monitor of a *bus.Client keeps it in the
// OMNI_ALERTS bucket by default.
func TestRestartOnJetStream(t *testing.T) {
	t.Parallel()
	js := bustest.New(t, bus.WithLogger(quiet()))
	c := &clock{now: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	o := alert.Options{Service: "crm", Now: c.Now, Log: quiet()}
	m, err := alert.NewMonitor(js.Client, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		outcome := "ok"
		if i%5 == 0 {
			outcome = "timeout"
		}
		m.Record("salesforce", "lookup", outcome)
	}
	m.Close()

	// The next process, on another connection.
	m, err = alert.NewMonitor(js.Connect(t, bus.WithLogger(quiet())), o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Status("salesforce", "lookup"); !st.Raised || st.Calls != 100 {
		t.Fatalf("restored %+v, want the raised alert and 100 calls", st)
	}
	// The outage leaves the window; the vendor serves the few calls the route gets.
	c.Advance(5 * time.Minute)
	for range 3 {
		m.Record("salesforce", "lookup", "ok")
		c.Advance(10 * time.Second)
	}
	m.Close()
	evs := js.Events(t, bus.StreamOps, "omni.ops.alert.>")
	if len(evs) != 2 || evs[0].Type() != alert.TypeRaised || evs[1].Type() != alert.TypeResolved {
		t.Fatalf("OMNI_OPS holds %d events, want raised then resolved", len(evs))
	}
	var raised, resolved struct {
		AlertID string `json:"alert_id"`
	}
	_ = event.DecodeData(evs[0], &raised)
	_ = event.DecodeData(evs[1], &resolved)
	if raised.AlertID == "" || raised.AlertID != resolved.AlertID {
		t.Fatalf("alert ids %q / %q must match", raised.AlertID, resolved.AlertID)
	}
	kv, err := js.Client.JetStream().KeyValue(context.Background(), alert.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "vendor_failure_ratio.crm.0.salesforce.lookup")
	if err != nil || !strings.Contains(string(e.Value()), `"raised":false`) {
		t.Fatalf("saved state %v, %v; want the resolved route", e, err)
	}
}

func TestKVOptionsValidate(t *testing.T) {
	t.Parallel()
	js := bustest.New(t, bus.WithLogger(quiet()))
	for _, o := range []alert.KVOptions{{Bucket: "omni.alerts"}, {Replicas: 7}} {
		if _, err := alert.NewKVStore(js.Client.JetStream(), o); !errors.Is(err, alert.ErrInvalidOptions) {
			t.Errorf("NewKVStore(%+v): %v, want ErrInvalidOptions", o, err)
		}
	}
}
