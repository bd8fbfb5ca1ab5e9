package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/example"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

// internals are what a reply to a client must never carry: a driver's, a decoder's or the
// runtime's words, source or file paths.
var internals = []string{"pgx", "pgconn", "SQLSTATE", "json:", "json: cannot", "cannot unmarshal", "Go struct field", "invalid character",
	"unexpected end of JSON", "XML syntax", "runtime", "goroutine", ".go:", "/home/", "/root/", "/usr/", "/tmp/", "nats:", "go-jose", "strconv.", "panic"}

// malformed are bodies no entry accepts.
var malformed = []string{`{`, `{"a":`, `[1,2`, `{"text": 12, "type": ["x"]}`, `{"capacity":"many","skills":7}`, "<xml><a></b>", "\x00\xff\xfe garbage", `{"a":1}{"b":2}`,
	`{"n": 1e999999}`, `"` + strings.Repeat("x", 100) + `"`}

// checkNoInternals sends malformed bodies to every public entry of the all-in-one at base —
// each connector's webhooks (through their signature checks, and the example's with a valid
// signature, to its decoder), the web chat API with a valid visitor, the desk API and the audit
// API with valid tokens — and fails t when a reply is a 5xx or carries library internals.
func checkNoInternals(t *testing.T, base string, secrets map[string]string, deskToken string) {
	t.Helper()
	visitor := webchat.NewVisitorID()
	type entry struct {
		method, path string
		header       func(body string) http.Header
	}
	plain := func(string) http.Header { return http.Header{"Content-Type": {"application/json"}} }
	bearer := func(string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + deskToken}}
	}
	entries := []entry{
		{"POST", "/hooks/example/messages", func(body string) http.Header {
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			return http.Header{"X-Example-Timestamp": {ts}, "X-Example-Signature": {example.Sign(secrets["EXAMPLE_SECRET"], ts, []byte(body))}}
		}},
		{"POST", "/hooks/sms/aliyun/up?token=" + secrets["SMS_WEBHOOK_TOKEN"], plain},
		{"POST", "/hooks/sms/aliyun/report?token=" + secrets["SMS_WEBHOOK_TOKEN"], plain},
		{"POST", "/hooks/sms/tencent/reply?token=" + secrets["SMS_WEBHOOK_TOKEN"], plain},
		{"POST", "/hooks/wechatkf/callback?msg_signature=x&timestamp=1&nonce=n", plain},
		{"GET", "/hooks/wechatkf/callback?msg_signature=x&timestamp=1&nonce=n&echostr=%25%25", plain},
		{"POST", "/hooks/weibo/callback", plain},
		{"POST", "/hooks/douyin/webhook", plain},
		{"POST", "/hooks/kuaishou/webhook", plain},
		{"POST", "/hooks/payment/alipay", func(string) http.Header {
			return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		}},
		{"POST", "/hooks/payment/wechatpay", plain},
		{"POST", "/hooks/ticket/jira", plain},
		{"POST", "/hooks/ticket/zendesk", plain},
		{"POST", "/hooks/voice/tccc", plain},
		{"POST", "/hooks/voice/tccc/token", func(string) http.Header {
			return http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		}},
		{"POST", "/webchat/api/messages", func(string) http.Header {
			return http.Header{"Content-Type": {"application/json"}, webchat.HeaderVisitor: {visitor},
				webchat.HeaderToken: {webchat.VisitorToken(secrets["WEBCHAT_SECRET"], visitor)}}
		}},
		{"PUT", "/api/agents/supervisor-wang", bearer},
		{"POST", "/api/conversations/00000000-0000-0000-0000-000000000000/reply", bearer},
		{"GET", "/api/audit?from=%ff&limit=x", bearer},
		{"GET", "/api/conversations?limit=-1&status=%00", bearer},
	}
	reachedDecoder := map[string]bool{}
	for _, e := range entries {
		for _, body := range malformed {
			req, err := http.NewRequest(e.method, base+e.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range e.header(body) {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", e.method, e.path, err)
			}
			reply, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			what := fmt.Sprintf("%s %s with %q: %d %s", e.method, e.path, body, resp.StatusCode, reply)
			if resp.StatusCode >= 500 {
				t.Errorf("%s: a server error for a malformed request", what)
			}
			if resp.StatusCode == http.StatusBadRequest {
				reachedDecoder[e.path] = true
			}
			for _, m := range internals {
				if strings.Contains(string(reply), m) {
					t.Errorf("%s: the reply carries %q", what, m)
				}
			}
		}
	}
	// The signed, authenticated entries reached their decoders: the check saw their refusals.
	for _, p := range []string{"/hooks/example/messages", "/webchat/api/messages", "/api/agents/supervisor-wang"} {
		if !reachedDecoder[p] {
			t.Errorf("%s never answered 400: the malformed bodies did not reach its decoder", p)
		}
	}
}
