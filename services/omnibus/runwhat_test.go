package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/crm"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/sms"
)

// TestRunWhatYouHave runs the all-in-one as an operator with only SMS (Aliyun) and web chat
// configured does, simulate off: the vendors are a sandbox started apart, as a real vendor
// would be. The all-in-one is ready without the other connectors, lists them as disabled on
// /readyz and on the desk's /ops, and an SMS and a web chat message reach the desk; the agent's
// SMS reply reaches the vendor.
func TestRunWhatYouHave(t *testing.T) {
	t.Parallel()
	// The vendor, on its own listener: its address is the connector's SMS_API_BASE.
	vendorLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vendor := "http://" + vendorLn.Addr().String()

	cfg := allinone.Config{
		HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", NATSSync: "always", DataDir: t.TempDir(),
		Simulate: false, SimInterval: time.Hour, LogLevel: "warn", ShutdownTimeout: 15 * time.Second,
	}
	env := localEnv(cfg.DataDir)
	for _, k := range []string{"SMS_PROVIDER", "SMS_ALIYUN_ACCESS_KEY_ID", "SMS_ALIYUN_ACCESS_KEY_SECRET", "SMS_ALIYUN_SIGN_NAME",
		"SMS_ALIYUN_TEMPLATE_CODE", "SMS_WEBHOOK_TOKEN", "WEBCHAT_SECRET"} {
		env[k] = sandbox.Credentials[k]
	}
	env["SMS_PROVIDER"] = "aliyun"
	env["SMS_API_BASE"] = vendor + "/sandbox/aliyun"
	env["DESK_DEV_LOGIN"], env["DESK_AGENTS"] = "true", "demo"
	ctx, cancel := context.WithCancel(context.Background())
	baseCh := make(chan string, 1)
	stopped := make(chan struct{}) // closed once Run has returned its error into runErr
	var runErr error
	go func() {
		defer close(stopped)
		runErr = allinone.Run(ctx, cfg, func(base string) []service.Service {
			env["DESK_PUBLIC_URL"] = base
			return services() // what cli.go builds with OMNIBUS_SIMULATE=false
		}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(b string) { baseCh <- b })
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if runErr != nil {
			t.Errorf("all-in-one stopped with %v", runErr)
		}
	})
	var base string
	select {
	case base = <-baseCh:
	case <-stopped:
		t.Fatalf("all-in-one with only SMS and web chat configured exited: %v", runErr)
	}

	// /readyz: ready, every optional connector but sms and webchat disabled.
	var want []string
	for _, s := range services() {
		if s.Configured != nil && s.Name != "sms" && s.Name != "webchat" {
			want = append(want, s.Name)
		}
	}
	var ready struct {
		Ready    bool               `json:"ready"`
		Disabled []service.Disabled `json:"disabled"`
	}
	if code := apiCall(t, base, "GET", "/readyz", "", nil, &ready); code != http.StatusOK || !ready.Ready {
		t.Fatalf("/readyz: %d %+v; want ready", code, ready)
	}
	var got []string
	for _, d := range ready.Disabled {
		got = append(got, d.Name)
		if d.Name == "crm" && !slices.Contains(d.Enable, "SALESFORCE_CLIENT_ID") {
			t.Errorf("crm disabled without naming SALESFORCE_CLIENT_ID: %+v", d)
		}
	}
	if !slices.Equal(got, want) || !slices.Contains(got, "crm") || !slices.Contains(got, "voice") {
		t.Fatalf("/readyz disabled %v, want %v (crm and voice among them)", got, want)
	}

	// The vendor: the sandbox, pushing to the all-in-one's webhooks, its customers writing on
	// request only.
	venv := map[string]string{"SANDBOX_HOOK_BASE": base + "/hooks", "SANDBOX_APP_BASE": base, "SANDBOX_BASE": vendor,
		"SANDBOX_SCENARIO_INTERVAL": "0", "SANDBOX_CALL_INTERVAL": "0", "SANDBOX_CALL_TARGET": "127.0.0.1:0",
		"SANDBOX_TCCC_CALL_INTERVAL": "0", "SMS_PROVIDER": "aliyun"}
	vmux := http.NewServeMux()
	vctx, vcancel := context.WithCancel(context.Background())
	vstarted, vstopped := make(chan struct{}), make(chan struct{})
	var vErr error
	go func() {
		defer close(vstopped)
		vErr = sandbox.Service().Run(vctx, service.Deps{Mux: vmux, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Health: service.NewHealth(), Env: func(k string) (string, bool) { v, ok := venv[k]; return v, ok },
			Started: func() { close(vstarted) }})
	}()
	srv := &http.Server{Handler: vmux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(vendorLn) }()
	t.Cleanup(func() {
		vcancel()
		_ = srv.Close()
		<-vstopped
		if vErr != nil {
			t.Errorf("sandbox stopped with %v", vErr)
		}
	})
	select {
	case <-vstarted:
	case <-vstopped:
		t.Fatalf("sandbox exited: %v", vErr)
	}

	// A customer texts, another chats on the web: both reach the desk.
	for id, channel := range map[string]string{"5": "sms", "6": "webchat"} {
		if code := apiCall(t, vendor, "POST", "/sandbox/_admin/customers/"+id+"/write", "",
			map[string]string{"channel": channel, "text": "你好，我想查询订单"}, nil); code != http.StatusOK {
			t.Fatalf("%s write: %d", channel, code)
		}
	}
	token := devToken(t, base, "agent=agent-li")
	smsConv := channelConversation(t, base, token, "sms")
	channelConversation(t, base, token, "webchat")

	// The desk's /ops lists the disabled connectors too.
	var ops struct {
		Disabled []service.Disabled `json:"disabled"`
	}
	if code := apiCall(t, base, "GET", "/api/ops/routes", token, nil, &ops); code != http.StatusOK {
		t.Fatalf("/api/ops/routes: %d", code)
	}
	got = got[:0]
	for _, d := range ops.Disabled {
		got = append(got, d.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("/api/ops/routes disabled %v, want %v", got, want)
	}

	// The agent's reply goes out by SMS to the vendor, once the desk knows the customer's number
	// (the conversation can show before its reply address is projected: 409 until then).
	bustest.WaitFor(t, 15*time.Second, "the reply accepted", func() bool {
		code := apiCall(t, base, "POST", "/api/conversations/"+smsConv+"/reply", token, map[string]string{"text": "您好，订单已发货"}, nil)
		if code >= 300 && code != http.StatusConflict {
			t.Fatalf("reply: %d", code)
		}
		return code < 300
	})
	bustest.WaitFor(t, 30*time.Second, "the reply accepted by the vendor's SendSms", func() bool {
		for _, r := range records(t, vendor, "vendor=aliyun&op=SendSms") {
			if r.Error == "" && strings.Contains(string(r.Data), "订单已发货") {
				return true
			}
		}
		return false
	})
}

// TestPartialConfigurationRefused: a connector with some of its configuration set is meant to
// run, so the all-in-one refuses to start and names what is missing, rather than leaving it out.
func TestPartialConfigurationRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		svc  service.Service
		env  map[string]string
		want []string
	}{
		{"crm without its secret and login URL", crm.Service(), map[string]string{"SALESFORCE_CLIENT_ID": "3MVG9abc"},
			[]string{"SALESFORCE_CLIENT_SECRET", "SALESFORCE_LOGIN_URL is required"}},
		{"sms credentials without a provider", sms.Service(), map[string]string{"SMS_ALIYUN_ACCESS_KEY_ID": "LTAI5t"},
			[]string{"SMS_PROVIDER is required"}},
		{"oms without an API base", oms.Service(), map[string]string{"OMS_APP_KEY": "k", "OMS_APP_SECRET": "s"},
			[]string{"OMS_API_BASE is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := allinone.Config{HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", NATSSync: "always", DataDir: t.TempDir(),
				SimInterval: time.Hour, ShutdownTimeout: 10 * time.Second}
			err := allinone.Run(context.Background(), cfg, func(string) []service.Service { return []service.Service{tc.svc} },
				func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("start: %v; want a refusal wrapping config.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestNoSandboxDefaults: no service's default points at the sandbox; in simulate mode the
// sandbox's overlay (sandbox.ConnectorEnv) supplies those addresses.
func TestNoSandboxDefaults(t *testing.T) {
	t.Parallel()
	for _, s := range services() {
		if s.Config == nil {
			continue
		}
		for _, f := range config.Describe(s.Config) {
			if strings.Contains(f.Default, "/sandbox") {
				t.Errorf("%s: %s defaults to the sandbox (%s)", s.Name, f.Env, f.Default)
			}
		}
	}
}

// TestEveryConnectorIsOptional: every service but the core ones says which variables enable it,
// so a connector added later is left out (not a failed start) where nobody configured it.
func TestEveryConnectorIsOptional(t *testing.T) {
	t.Parallel()
	core := []string{"unifier", "audit", "desk", "sentiment"} // sentiment falls back to its own lexicon without a vendor
	for _, s := range services() {
		if optional := s.Configured != nil; optional == slices.Contains(core, s.Name) {
			t.Errorf("%s: optional %v; a connector tags its enabling variables enable:\"true\", a core service none", s.Name, optional)
		}
	}
}
