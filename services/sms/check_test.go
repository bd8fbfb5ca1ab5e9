package sms_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/sandbox/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
	"github.com/omnibus-dev/omnibus/services/sms"
)

// startWith starts the connector against the sandbox with vars (SMS_API_BASE pointed at it,
// SANDBOX in a value replaced by its URL) and faults injected first, until it serves (then stops it) or fails to start. It returns
// the start's error, the connector's log and the sandbox.
func startWith(t *testing.T, vars map[string]string, faults map[string]sim.Fault) (error, string, *sim.Env) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env, _, _ := sandbox(t, "", mux)
	for k, f := range faults {
		if err := env.SetFault(k, f); err != nil {
			t.Fatal(err)
		}
	}
	vars = merge(vars, map[string]string{"SMS_API_BASE": srv.URL + "/sandbox/" + vars["SMS_PROVIDER"]})
	for k, v := range vars {
		vars[k] = strings.Replace(v, "SANDBOX", srv.URL, 1)
	}
	err, logs := servicetest.Start(t, sms.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, mux, vars)
	return err, logs, env
}

// TestStartCheck: at start the Aliyun provider asks QuerySmsSign about SMS_ALIYUN_SIGN_NAME
// with its AccessKey, the Tencent one SmsPackagesStatistics about SMS_TENCENT_SDK_APP_ID. A
// refused key, a signature the account does not have or one still under review, an application
// the account does not have stops the start with connector.ErrMisconfigured naming the variable
// (a rollout's candidate too); the vendor failing (InternalError, throttling) or a RAM user that
// may not call QuerySmsSign only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"wrong secret", map[string]string{"SMS_ALIYUN_ACCESS_KEY_SECRET": "not-the-secret"}, []string{"SMS_ALIYUN_ACCESS_KEY_SECRET does not match", "SignatureDoesNotMatch"}},
		{"unknown key", map[string]string{"SMS_ALIYUN_ACCESS_KEY_ID": "LTAIunknown"}, []string{"SMS_ALIYUN_ACCESS_KEY_ID=LTAIunknown refused", "InvalidAccessKeyId.NotFound"}},
		{"unknown sign", map[string]string{"SMS_ALIYUN_SIGN_NAME": "omnibsu"}, []string{"SMS_ALIYUN_SIGN_NAME=omnibsu", "no such signature", "isv.SMS_SIGNATURE_ILLEGAL"}},
		{"sign under review", map[string]string{"SMS_ALIYUN_SIGN_NAME": "omnibus-new"}, []string{"SMS_ALIYUN_SIGN_NAME=omnibus-new is still under review"}},
		{"tencent secret id", merge(tencentEnv, map[string]string{"SMS_TENCENT_SECRET_ID": "AKIDunknown"}), []string{"SMS_TENCENT_SECRET_ID=AKIDunknown refused", "AuthFailure.SecretIdNotFound"}},
		{"tencent secret key", merge(tencentEnv, map[string]string{"SMS_TENCENT_SECRET_KEY": "wrong"}), []string{"SMS_TENCENT_SECRET_KEY does not match", "AuthFailure.SignatureFailure"}},
		{"tencent app", merge(tencentEnv, map[string]string{"SMS_TENCENT_SDK_APP_ID": "1400999999"}), []string{"SMS_TENCENT_SDK_APP_ID=1400999999", "SdkAppIdNotExist"}},
		{"canary candidate's secret", merge(aliyunEnv, tencentEnv, map[string]string{"SMS_PROVIDER": "tencent", "SMS_CANARY": "aliyun:10%",
			"SMS_ALIYUN_ACCESS_KEY_SECRET": "not-the-secret", "SMS_ALIYUN_API_BASE": "SANDBOX/sandbox/aliyun"}), []string{"SMS_ALIYUN_ACCESS_KEY_SECRET does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := tc.env
			if vars["SMS_PROVIDER"] == "" {
				vars = merge(aliyunEnv, tc.env)
			}
			err, logs, _ := startWith(t, vars, nil)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	t.Run("good configuration, tencent", func(t *testing.T) {
		t.Parallel()
		err, logs, env := startWith(t, tencentEnv, nil)
		connectortest.RequireAccepted(t, err, logs, "tencent")
		if n := len(env.Records(sim.Filter{Vendor: "tencent", Op: tencent.OpPackages})); n != 1 {
			t.Fatalf("%d SmsPackagesStatistics calls, want 1", n)
		}
	})
	t.Run("tencent down", func(t *testing.T) {
		t.Parallel()
		err, logs, _ := startWith(t, merge(tencentEnv, map[string]string{"RESILIENCE_TENCENT_CHECK_MAX_ATTEMPTS": "1"}),
			map[string]sim.Fault{"tencent " + tencent.OpSendSms: {ErrorRatio: 1, Code: "InternalError"}})
		connectortest.RequireUnchecked(t, err, logs, "tencent")
	})
	t.Run("good configuration", func(t *testing.T) {
		t.Parallel()
		err, logs, env := startWith(t, aliyunEnv, nil)
		connectortest.RequireAccepted(t, err, logs, "aliyun")
		if n := len(env.Records(sim.Filter{Vendor: "aliyun", Op: aliyun.OpQuerySmsSign})); n != 1 {
			t.Fatalf("%d QuerySmsSign calls, want 1", n)
		}
	})
	for _, code := range []string{"InternalError", "isp.RAM_PERMISSION_DENY"} {
		t.Run("aliyun answers "+code, func(t *testing.T) {
			t.Parallel()
			err, logs, _ := startWith(t, aliyunEnv, map[string]sim.Fault{"aliyun " + aliyun.OpSendSms: {ErrorRatio: 1, Code: code}})
			connectortest.RequireUnchecked(t, err, logs, "aliyun", code)
		})
	}
}
