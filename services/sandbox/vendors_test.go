package sandbox

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/omnibus-dev/omnibus/services/sandbox/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
)

// Both SMS simulators mount; the one SMS_PROVIDER names offers the customers' phones, and a bad
// knob is an error.
func TestMountSMS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mounts := map[string]func(config map[string]string) (sim.Channel, error){
		aliyun.Vendor: func(vars map[string]string) (sim.Channel, error) {
			return mountSMS(ctx, newEnv(), lookupOf(vars), aliyun.Vendor, aliyun.New, func(c aliyun.Config) string { return c.Provider })
		},
		tencent.Vendor: func(vars map[string]string) (sim.Channel, error) {
			return mountSMS(ctx, newEnv(), lookupOf(vars), tencent.Vendor, tencent.New, func(c tencent.Config) string { return c.Provider })
		},
	}
	for vendor, mount := range mounts {
		other := map[string]string{aliyun.Vendor: tencent.Vendor, tencent.Vendor: aliyun.Vendor}[vendor]
		if ch, err := mount(map[string]string{"SMS_PROVIDER": other}); err != nil || ch != nil {
			t.Errorf("%s with SMS_PROVIDER=%s: %v, %v; want no channel", vendor, other, ch, err)
		}
		if ch, err := mount(map[string]string{"SMS_PROVIDER": vendor}); err != nil || ch == nil || ch.Name() != "sms" {
			t.Errorf("%s with SMS_PROVIDER=%s: %v, %v; want its sms channel", vendor, vendor, ch, err)
		}
	}
	if _, err := mounts[aliyun.Vendor](map[string]string{"SANDBOX_ALIYUN_TEMPLATES": ":x"}); err == nil {
		t.Error("bad template list accepted")
	}
}

// The simulators read the connectors' own credential variables, with the sandbox's as defaults.
func TestCredLookup(t *testing.T) {
	t.Parallel()
	l := credLookup(lookupOf(map[string]string{"SMS_TENCENT_SECRET_ID": "AKIDfromenv"}))
	if v, ok := l("SMS_TENCENT_SECRET_ID"); !ok || v != "AKIDfromenv" {
		t.Errorf("the connector's variable: %q %v", v, ok)
	}
	if v, ok := l("SMS_TENCENT_SECRET_KEY"); !ok || v != Credentials["SMS_TENCENT_SECRET_KEY"] {
		t.Errorf("the sandbox's default: %q %v", v, ok)
	}
	if _, ok := l("SANDBOX_TENCENT_TEMPLATES"); ok {
		t.Error("a knob nobody set reads as set")
	}
}

func newEnv() *sim.Env {
	return sim.NewEnv(http.NewServeMux(), "http://127.0.0.1:1/hooks", nil, 0, slog.New(slog.DiscardHandler))
}

func lookupOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}
