package oms_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

const (
	appKey    = "omnibus-demo"
	appSecret = "oms-secret-2026"
)

type bundle struct {
	env   *sim.Env
	sim   *oms.Sim
	base  string
	nonce atomic.Int64
	now   time.Time
}

func setup(t *testing.T, customers int, seed uint64) *bundle {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	s, err := oms.New(env, oms.Config{AppKey: appKey, AppSecret: appSecret, Customers: customers, Seed: seed,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &bundle{env: env, sim: s, base: srv.URL + "/sandbox/oms", now: now}
}

// call signs and sends a request; mutate may spoil it after signing.
func (b *bundle) call(t *testing.T, method, path string, body []byte, v any, mutate func(*http.Request)) error {
	t.Helper()
	req, _ := http.NewRequest(method, b.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	omswire.SignRequest(req, appKey, appSecret, body, b.now, fmt.Sprintf("nonce%016d", b.nonce.Add(1)))
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return omswire.ParseResponse(resp.StatusCode, resp.Header, raw, v)
}

func TestOrdersOfPopulation(t *testing.T) {
	t.Parallel()
	b := setup(t, 30, 1)
	sfWaybill := regexp.MustCompile(`^SF[0-9]{13}$`)
	withOrders, sf := 0, 0
	for _, c := range sim.Population(30, 1) {
		var page omswire.OrderPage
		if err := b.call(t, http.MethodGet, omswire.PathOrders+"?mobile="+omswire.NationalMobile(c.Phone)+"&page_size=10", nil, &page, nil); err != nil {
			t.Fatal(err)
		}
		want := 1 + c.ID%4
		if c.ID%5 == 0 {
			want = 0
		}
		if page.Total != want || len(page.Orders) != want {
			t.Fatalf("customer %d: %d orders, want %d", c.ID, page.Total, want)
		}
		if want > 0 {
			withOrders++
		}
		for i, o := range page.Orders {
			if i > 0 && o.CreatedAt > page.Orders[i-1].CreatedAt {
				t.Fatalf("orders not newest first: %s after %s", o.CreatedAt, page.Orders[i-1].CreatedAt)
			}
			if o.BuyerMobile != omswire.MaskMobile(c.Phone) {
				t.Fatalf("buyer mobile %q not masked", o.BuyerMobile)
			}
			for _, w := range o.Waybills {
				if w.LogisticsCode == "SF" {
					sf++
					if !sfWaybill.MatchString(w.WaybillNo) {
						t.Fatalf("SF waybill %q", w.WaybillNo)
					}
				}
			}
			var one omswire.Order
			if err := b.call(t, http.MethodGet, omswire.PathOrders+"/"+o.OrderNo, nil, &one, nil); err != nil || one.OrderNo != o.OrderNo {
				t.Fatalf("get %s: %v", o.OrderNo, err)
			}
		}
		// E.164 is accepted and the data is deterministic.
		var again omswire.OrderPage
		if err := b.call(t, http.MethodGet, omswire.PathOrders+"?mobile=%2B86"+omswire.NationalMobile(c.Phone), nil, &again, nil); err != nil {
			t.Fatal(err)
		}
		if a, _ := json.Marshal(again.Orders); string(a) != mustJSON(page.Orders) {
			t.Fatalf("orders changed between calls")
		}
	}
	if withOrders < 20 || sf == 0 {
		t.Fatalf("%d customers with orders, %d SF waybills", withOrders, sf)
	}
	// Same seed, another simulator: the same orders.
	other := setup(t, 30, 1)
	p := sim.Population(30, 1)[0].Phone
	if mustJSON(other.sim.Orders(p)) != mustJSON(b.sim.Orders(p)) {
		t.Fatal("orders are not deterministic")
	}
	// A phone outside the population gets orders generated on demand, stable too.
	if mustJSON(b.sim.Orders("+8613912345678")) != mustJSON(other.sim.Orders("13912345678")) {
		t.Fatal("on-demand orders not deterministic")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, 3, 1)
	set := func(k, v string) func(*http.Request) {
		return func(r *http.Request) {
			q := r.URL.Query()
			q.Set(k, v)
			r.URL.RawQuery = q.Encode()
		}
	}
	tests := []struct {
		name   string
		mutate func(*http.Request)
		code   int
	}{
		{"bad sign", set("sign", "00"), omswire.CodeSignature},
		{"unknown key", set("app_key", "x"), omswire.CodeInvalidAppKey},
		{"old timestamp", set("timestamp", fmt.Sprint(time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Unix())), omswire.CodeTimestamp},
		{"no nonce", set("nonce", ""), omswire.CodeMissingParam},
		{"query changed", set("mobile", "13900000000"), omswire.CodeSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.call(t, http.MethodGet, omswire.PathOrders+"?mobile=13800138000", nil, &omswire.OrderPage{}, tt.mutate)
			var oe *omswire.Error
			if !errors.As(err, &oe) || oe.Code != tt.code || oe.HTTPStatus != omswire.Status(tt.code) {
				t.Fatalf("err %v, want code %d", err, tt.code)
			}
		})
	}
	// A replayed nonce is refused.
	req, _ := http.NewRequest(http.MethodGet, b.base+omswire.PathOrders+"?mobile=13800138000", nil)
	omswire.SignRequest(req, appKey, appSecret, nil, b.now, "replayreplayreplay")
	for i, want := range []int{200, 401} {
		resp, err := http.DefaultClient.Do(req.Clone(req.Context()))
		if err != nil || resp.StatusCode != want {
			t.Fatalf("call %d: %v %v", i, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	if err := b.call(t, http.MethodGet, omswire.PathOrders+"/SO0000000000000000", nil, &omswire.Order{}, nil); !errors.Is(err, omswire.ErrOrderNotFound) {
		t.Fatal(err)
	}
}

func TestServiceRecordIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, 10, 2)
	var order string
	for _, c := range sim.Population(10, 2) {
		if os := b.sim.Orders(c.Phone); len(os) > 0 {
			order = os[0].OrderNo
			break
		}
	}
	rec := omswire.ServiceRecord{OrderNo: order, ExternalID: "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f", Source: "omnibus",
		Summary: "客户咨询物流，已告知运单号", Agent: "agent-0042", Outcome: "resolved", Channels: []string{"wechatkf", "sms"},
		OpenedAt: "2026-11-27 16:00:00", ClosedAt: "2026-11-27 16:20:00"}
	body, _ := json.Marshal(rec)
	var first, second omswire.ServiceRecordResult
	if err := b.call(t, http.MethodPost, omswire.PathServiceRecords, body, &first, nil); err != nil || first.Duplicate {
		t.Fatalf("%+v %v", first, err)
	}
	if err := b.call(t, http.MethodPost, omswire.PathServiceRecords, body, &second, nil); err != nil || !second.Duplicate || second.RecordID != first.RecordID {
		t.Fatalf("%+v %v", second, err)
	}
	if n := len(b.env.Records(sim.Filter{Vendor: "oms", Op: oms.OpArchive})); n != 1 || b.sim.Duplicates() != 1 || len(b.sim.ServiceRecords()) != 1 {
		t.Fatalf("%d records, %d duplicates", n, b.sim.Duplicates())
	}
	// Signed body, then changed: refused.
	err := b.call(t, http.MethodPost, omswire.PathServiceRecords, body, &second, func(r *http.Request) {
		r.Body = io.NopCloser(bytes.NewReader(append(body[:len(body)-1:len(body)-1], ' ', '}')))
		r.ContentLength++
	})
	var oe *omswire.Error
	if !errors.As(err, &oe) || oe.Code != omswire.CodeSignature {
		t.Fatalf("changed body: %v", err)
	}
	rec.ExternalID, rec.OrderNo = "other", "SO0000000000000000"
	body, _ = json.Marshal(rec)
	if err := b.call(t, http.MethodPost, omswire.PathServiceRecords, body, &second, nil); !errors.Is(err, omswire.ErrOrderNotFound) {
		t.Fatal(err)
	}
	if err := b.env.SetFault("oms "+oms.OpList, sim.Fault{ErrorRatio: 1, Code: "42901"}); err != nil {
		t.Fatal(err)
	}
	err = b.call(t, http.MethodGet, omswire.PathOrders+"?mobile=13800138000", nil, &omswire.OrderPage{}, nil)
	if !errors.As(err, &oe) || !errors.Is(err, omswire.ErrRateLimited) || oe.RetryAfter != time.Second {
		t.Fatalf("throttle fault: %v", err)
	}
}

// A remark joins its record once per remark_id; a remark on an unknown record is refused with
// 40402 (HTTP 404).
func TestRecordRemarkIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, 10, 2)
	var order string
	for _, c := range sim.Population(10, 2) {
		if os := b.sim.Orders(c.Phone); len(os) > 0 {
			order = os[0].OrderNo
			break
		}
	}
	conv := "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f"
	rm := omswire.RecordRemark{ExternalID: conv, RemarkID: "assist:summary:" + conv + ":1", Kind: "summary", Source: "omnibus",
		Content: "会话小结（AI · 物流）：客户询问快递进度，已告知今日派送。"}
	body, _ := json.Marshal(rm)
	var oe *omswire.Error
	if err := b.call(t, http.MethodPost, omswire.PathRecordRemarks, body, &omswire.RecordRemarkResult{}, nil); !errors.Is(err, omswire.ErrRecordNotFound) ||
		!errors.As(err, &oe) || oe.HTTPStatus != http.StatusNotFound {
		t.Fatalf("remark before its record: %v", err)
	}
	rec := omswire.ServiceRecord{OrderNo: order, ExternalID: conv, Source: "omnibus", Summary: "客户咨询物流", Outcome: "resolved",
		Channels: []string{"wechatkf"}, OpenedAt: "2026-11-27 16:00:00", ClosedAt: "2026-11-27 16:20:00"}
	rb, _ := json.Marshal(rec)
	var created omswire.ServiceRecordResult
	if err := b.call(t, http.MethodPost, omswire.PathServiceRecords, rb, &created, nil); err != nil {
		t.Fatal(err)
	}
	var first, second omswire.RecordRemarkResult
	if err := b.call(t, http.MethodPost, omswire.PathRecordRemarks, body, &first, nil); err != nil || first.Duplicate || first.RecordID != created.RecordID {
		t.Fatalf("%+v %v", first, err)
	}
	if err := b.call(t, http.MethodPost, omswire.PathRecordRemarks, body, &second, nil); err != nil || !second.Duplicate || second.RemarkID != first.RemarkID {
		t.Fatalf("%+v %v", second, err)
	}
	if got := b.sim.Remarks(conv); len(got) != 1 || got[0].Content != rm.Content {
		t.Fatalf("remarks %+v", got)
	}
	if n := len(b.env.Records(sim.Filter{Vendor: "oms", Op: oms.OpRemark})); n != 2 { // the refused one and the first write
		t.Fatalf("%d remark records, want 2", n)
	}
	rm.Content = ""
	body, _ = json.Marshal(rm)
	if err := b.call(t, http.MethodPost, omswire.PathRecordRemarks, body, &second, nil); !errors.As(err, &oe) || oe.Code != omswire.CodeInvalidParam {
		t.Fatalf("empty content: %v", err)
	}
}
