package sms_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
	"github.com/omnibus-dev/omnibus/services/sms"
)

// bothEnv configures both providers, Aliyun as SMS_PROVIDER.
func bothEnv(vars ...map[string]string) map[string]string {
	both := merge(tencentEnv, aliyunEnv) // aliyunEnv's SMS_PROVIDER wins
	return merge(append([]map[string]string{both}, vars...)...)
}

// providerOf returns, by command id, the provider of the sent statuses published so far.
func (tb *testBundle) providers(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range tb.bus.Events(t, bus.StreamIn, sms.SubjectStatus+".>") {
		var s struct {
			MessageID string `json:"message_id"`
			Status    string `json:"status"`
			Provider  string `json:"provider"`
		}
		if err := json.Unmarshal(e.Data(), &s); err != nil {
			t.Fatal(err)
		}
		if s.Status == "sent" {
			out[s.MessageID] = s.Provider
		}
	}
	return out
}

// sendAll sends one message to each number and waits for every sent status; it returns the
// provider of each number's message.
func (tb *testBundle) sendAll(t *testing.T, numbers []string, text string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, n := range numbers {
		cmd := sendCommand(t, n, text)
		ids[cmd.ID()] = n
		tb.publish(t, cmd)
	}
	var got map[string]string
	bustest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d sent statuses", len(ids)), func() bool {
		got = tb.providers(t)
		for id := range ids {
			if got[id] == "" {
				return false
			}
		}
		return true
	})
	byNumber := map[string]string{}
	for id, n := range ids {
		byNumber[n] = got[id]
	}
	return byNumber
}

// TestCanaryTencentOnTenPercent pilots Tencent SMS on 10 % of the customers against the
// sandbox's two simulators: the share on Tencent is within a binomial tolerance, every customer
// stays on the provider they got, and the sent statuses (and the simulators' records) say which
// provider sent; then Tencent fails (sandbox fault injection), the rollout rolls back by itself,
// announces it, and every later send goes through Aliyun.
func TestCanaryTencentOnTenPercent(t *testing.T) {
	t.Parallel()
	tb := setup(t, bothEnv(map[string]string{"SMS_CANARY": "tencent:10%;min_calls=10", "SMS_SEND_MAX_DELIVER": "10"}))
	const n = 200
	numbers := make([]string, n)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("+86138%08d", 10000000+i*7919)
	}
	first := tb.sendAll(t, numbers, "您的包裹已发出")
	var onTencent []string
	for _, num := range numbers {
		switch first[num] {
		case sms.ProviderTencent:
			onTencent = append(onTencent, num)
		case sms.ProviderAliyun:
		default:
			t.Fatalf("customer %s: sent status without a provider (%q)", num, first[num])
		}
	}
	t.Logf("%d of %d customers on Tencent", len(onTencent), n)
	p := 0.10
	if sd := math.Sqrt(n * p * (1 - p)); math.Abs(float64(len(onTencent))-n*p) > 4*sd {
		t.Fatalf("%d of %d customers on Tencent, want %v ± %.0f", len(onTencent), n, n*p, 4*sd)
	}
	f := false
	if got := len(tb.env.Records(sim.Filter{Vendor: "tencent", Op: "SendSms", Failed: &f})); got != len(onTencent) {
		t.Fatalf("the Tencent simulator accepted %d sends, want %d", got, len(onTencent))
	}
	// Sticky: a second message to each customer goes through the same provider.
	again := tb.sendAll(t, numbers[:60], "第二条")
	for _, num := range numbers[:60] {
		if again[num] != first[num] {
			t.Fatalf("customer %s: first through %s, then %s", num, first[num], again[num])
		}
	}
	started := tb.bus.Events(t, bus.StreamOps, canary.SubjectStarted)
	if len(started) != 1 {
		t.Fatalf("%d started events, want 1", len(started))
	}

	// Tencent fails every call: the rollout rolls back, the failed commands are retried through
	// Aliyun, and so is every later send.
	if err := tb.env.SetFault(tencent.Vendor+" "+tencent.OpSendSms, sim.Fault{ErrorRatio: 1}); err != nil {
		t.Fatal(err)
	}
	after := tb.sendAll(t, onTencent, "退款已到账")
	var rolled []event.Event
	bustest.WaitFor(t, 10*time.Second, "rolled_back event", func() bool {
		rolled = tb.bus.Events(t, bus.StreamOps, canary.SubjectRolledBack)
		return len(rolled) > 0
	})
	var rb struct {
		Candidate string         `json:"candidate"`
		Status    string         `json:"status"`
		Stats     []canary.Stats `json:"stats"`
	}
	if err := json.Unmarshal(rolled[0].Data(), &rb); err != nil {
		t.Fatal(err)
	}
	t.Logf("rolled back with %+v", rb.Stats)
	if len(rolled) != 1 || rb.Candidate != "tencent" || rb.Status != "rolled_back" || len(rb.Stats) != 2 || rb.Stats[1].Failures == 0 {
		t.Fatalf("%d rolled_back events, the first %s", len(rolled), rolled[0].Data())
	}
	for _, num := range onTencent {
		if after[num] != sms.ProviderAliyun {
			t.Fatalf("customer %s: sent through %s after Tencent failed", num, after[num])
		}
	}
	later := tb.sendAll(t, numbers, "稍后")
	for _, num := range numbers {
		if later[num] != sms.ProviderAliyun {
			t.Fatalf("customer %s: sent through %s after the rollback", num, later[num])
		}
	}
}
