package crm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/crm"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// syncBuffer is a log sink safe for the connector's goroutines.
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

// start runs the connector against the sandbox's Salesforce, whose org lacks the hidden Contact
// fields and has faults applied (fault, if set), with env over the connector's configuration,
// until it serves or fails to start. It returns what the connector logged and the error of a
// failed start (nil once it serves).
func start(t *testing.T, env map[string]string, fault func(*sim.Env), hidden ...string) (string, error) {
	t.Helper()
	now := &atomic.Int64{}
	now.Store(time.Now().UnixNano())
	senv, _, vars := salesforce(t, now, hidden...)
	if fault != nil {
		fault(senv)
	}
	for k, v := range env {
		vars[k] = v
	}
	b := bustest.New(t, bus.WithLogger(quiet()))
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- crm.Service().Run(ctx, service.Deps{Bus: b.Client, Mux: http.NewServeMux(), Health: service.NewHealth(),
			Log: slog.New(slog.NewTextHandler(&logs, nil)), Env: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
			Started: func() { close(started) }})
	}()
	select {
	case err := <-done:
		cancel()
		if err == nil {
			t.Fatal("the connector returned nil before it started")
		}
		return logs.String(), err
	case <-started:
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("stop: %v", err)
		}
		return logs.String(), nil
	}
}

// startErr is start's error.
func startErr(t *testing.T, env map[string]string, hidden []string) error {
	t.Helper()
	_, err := start(t, env, nil, hidden...)
	return err
}

// TestStartCheck: at start the connector describes Contact and refuses a field the operator
// named that the org lacks, naming the variable and the field (with the closest existing one);
// a missing standard field refuses too; a default custom field the org lacks is dropped with a
// warning that names it, and lookups go on without it; an unreachable CRM does not stop the start.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		env    map[string]string
		hidden []string
		want   []string // in the error
	}{
		{"named custom field missing", map[string]string{"SALESFORCE_VIP_FIELD": "VIP_Level__c"}, []string{"VIP_Level__c"},
			[]string{"SALESFORCE_VIP_FIELD=VIP_Level__c", "no field VIP_Level__c"}},
		{"misspelt custom field", map[string]string{"SALESFORCE_MEMBER_FIELD": "Member_Numbr__c"}, nil,
			[]string{"SALESFORCE_MEMBER_FIELD=Member_Numbr__c", "did you mean Member_Number__c?"}},
		{"standard field hidden", nil, []string{"MobilePhone"}, []string{"no field MobilePhone", "field-level security"}},
		{"API version the org does not serve", map[string]string{"SALESFORCE_API_VERSION": "v99.0"}, nil,
			[]string{"describe Contact", "SALESFORCE_API_VERSION=v99.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := startErr(t, tc.env, tc.hidden)
			if !errors.Is(err, crm.ErrMisconfigured) || !errors.Is(err, connector.ErrMisconfigured) {
				t.Fatalf("start: %v; want crm.ErrMisconfigured, a connector.ErrMisconfigured", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("start error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("default custom field missing", func(t *testing.T) {
		t.Parallel()
		logs, err := start(t, nil, nil, "VIP_Level__c")
		if err != nil {
			t.Fatalf("start: %v; want a start with a warning", err)
		}
		if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "no field VIP_Level__c") || !strings.Contains(logs, "SALESFORCE_VIP_FIELD") {
			t.Fatalf("no warning naming VIP_Level__c and SALESFORCE_VIP_FIELD in:\n%s", logs)
		}
		// Lookups go on without the field: found, with the member number, without a VIP level.
		tb := setupOrg(t, nil, "VIP_Level__c")
		for i := range 10 {
			e, a := tb.answer(t, tb.request(t, "phone", tb.pop[i].Phone))
			if e.Type() != crm.TypeCompleted {
				t.Fatalf("lookup %d: %s %+v", i, e.Type(), a)
			}
			if _, ok := a.Profile["vip_level"]; ok {
				t.Fatalf("lookup %d has a vip_level the org does not have: %+v", i, a)
			}
		}
	})
	t.Run("CRM unreachable", func(t *testing.T) {
		t.Parallel()
		logs, err := start(t, map[string]string{"RESILIENCE_SALESFORCE_TOKEN_MAX_ATTEMPTS": "1"}, func(e *sim.Env) {
			if err := e.SetFault("salesforce oauth2/token", sim.Fault{ErrorRatio: 1, Code: "UNAVAILABLE"}); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil || !strings.Contains(logs, "configuration not checked") {
			t.Fatalf("start with the CRM down: %v, logs:\n%s; want a start with a warning", err, logs)
		}
	})
}
