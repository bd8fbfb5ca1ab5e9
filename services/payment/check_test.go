package payment_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/services/payment"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim/simtest"
)

// startWith starts the connector (both providers configured) against the sandbox with extra
// over its configuration and faults injected first, until it serves (then stops it) or fails to
// start. It returns the start's error and the connector's log.
func startWith(t *testing.T, extra map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env, _, _, cfg := sandbox(t, mux, srv, 0)
	return simtest.Start(t, payment.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, mux, env, cfg, extra, faults)
}

// TestStartCheck: at start each configured provider is asked for a trade that does not exist
// (alipay.trade.query answering ACQ.TRADE_NOT_EXIST, WeChat Pay's query answering 404
// ORDER_NOT_EXIST), which proves the keys both ways. A key the provider refuses, or one that does
// not verify its answer, stops the start with connector.ErrMisconfigured naming the variables; a
// provider failing (isp.unknow-error, a bare 503, SYSTEM_ERROR) only warns.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	for _, tc := range []struct {
		name  string
		extra map[string]string
		want  []string
	}{
		{"alipay app id", map[string]string{"ALIPAY_APP_ID": "2021000000000001"}, []string{"ALIPAY_APP_ID=2021000000000001 refused", "isv.invalid-app-id"}},
		{"alipay app private key", map[string]string{"ALIPAY_APP_PRIVATE_KEY": privB64(k.mch)}, []string{"ALIPAY_APP_PRIVATE_KEY", "isv.invalid-signature"}},
		{"alipay public key", map[string]string{"ALIPAY_PUBLIC_KEY": pubB64(k.plat)}, []string{"ALIPAY_PUBLIC_KEY does not verify"}},
		{"wechatpay serial", map[string]string{"WECHATPAY_MCH_SERIAL": "0000000000000000000000000000000000000000"}, []string{"WECHATPAY_MCH_SERIAL=0000000000000000000000000000000000000000", "SIGN_ERROR"}},
		{"wechatpay merchant key", map[string]string{"WECHATPAY_MCH_PRIVATE_KEY": privB64(k.app)}, []string{"WECHATPAY_MCH_PRIVATE_KEY refused", "SIGN_ERROR"}},
		{"wechatpay platform key", map[string]string{"WECHATPAY_PLATFORM_PUBLIC_KEY": pubB64(k.alipay)}, []string{"WECHATPAY_PLATFORM_PUBLIC_KEY", "do not verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, tc.extra, nil)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs := startWith(t, nil, nil)
		connectortest.RequireAccepted(t, err, logs, "alipay", "wechatpay")
	})
	for _, tc := range []struct{ vendor, code string }{{"alipay", ""}, {"alipay", "http_503"}, {"wechatpay", ""}} {
		t.Run(tc.vendor+" down "+tc.code, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, map[string]string{"RESILIENCE_" + strings.ToUpper(tc.vendor) + "_CHECK_MAX_ATTEMPTS": "1"},
				map[string]sim.Fault{tc.vendor + " *": {ErrorRatio: 1, Code: tc.code}})
			connectortest.RequireUnchecked(t, err, logs, tc.vendor)
		})
	}
}
