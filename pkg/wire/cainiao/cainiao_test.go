package cainiao_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
)

// vectors.md §8.1 (SELF-COMPUTED from the sign doc's PHP example inputs).
const (
	vecInterface = `{"testkey":"testkey","testdata":"testdata"}`
	vecSecret    = "8026ny111111111111"
	vecDigest    = "ZLOV/XD2b0EmB/fzigfxGg=="
)

func TestDigestVector(t *testing.T) {
	t.Parallel()
	if got := cainiao.DataDigest(vecInterface, vecSecret); got != vecDigest {
		t.Fatalf("DataDigest = %s, want %s", got, vecDigest)
	}
	if !cainiao.VerifyDigest(vecInterface, vecSecret, vecDigest) || cainiao.VerifyDigest(vecInterface+" ", vecSecret, vecDigest) {
		t.Fatal("VerifyDigest")
	}
}

// The digest contains "+" and "/": form encoding must carry them through intact.
func TestRequestFormKeepsPlus(t *testing.T) {
	t.Parallel()
	r := cainiao.NewRequest("OMNIBUS", vecSecret, cainiao.MsgTypeTraceQuery, "", []byte(`{"mail_no":"YT1+2"}`))
	r.DataDigest = "a+b/c=="
	form, err := url.ParseQuery(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	got, err := cainiao.ParseRequest(form)
	if err != nil {
		t.Fatal(err)
	}
	if got != r {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
	}
	form.Del(cainiao.FieldDigest)
	if _, err := cainiao.ParseRequest(form); !errors.Is(err, cainiao.ErrMissingParam) {
		t.Fatalf("err %v", err)
	}
}

const docShaped = `{"success":true,"data":{"mail_no":"YT7512345678901","traces":[
 {"trace":{"detail":{"operate_time":"2024-09-03 07:59:07","operate_action":"ACCEPT","operate_desc":"【杭州市】圆通速递 已揽收","display_action":"已揽件"},
  "site":{"site_name":"杭州转运中心"},"address":{"province":"浙江省","city":"杭州市"},"operator":{"name":"张三","contact":"13800138000"}}},
 {"trace":{"detail":{"operate_time":1725361147000,"operate_action":"SIGN","operate_desc":"已签收"}}}]}}`

func TestParseTraceResponse(t *testing.T) {
	t.Parallel()
	d, err := cainiao.ParseTraceResponse([]byte(docShaped))
	if err != nil {
		t.Fatal(err)
	}
	if d.MailNo != "YT7512345678901" || len(d.Traces) != 2 {
		t.Fatalf("%+v", d)
	}
	first := d.Traces[0].Trace
	if want := time.Date(2024, 9, 2, 23, 59, 7, 0, time.UTC); !first.Detail.OperateTime.Equal(want) {
		t.Fatalf("operate_time %s", first.Detail.OperateTime.UTC())
	}
	if first.Site.Name != "杭州转运中心" || first.Address.City != "杭州市" || first.Operator.Contact != "13800138000" {
		t.Fatalf("first %+v", first)
	}
	if d.Traces[1].Trace.Detail.OperateTime.UnixMilli() != 1725361147000 {
		t.Fatal("epoch ms operate_time")
	}
}

func TestParseTraceResponseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want error
	}{
		{"sign", string(cainiao.EncodeError(cainiao.ErrorCodeSign, "签名错误")), cainiao.ErrSign},
		{"system", string(cainiao.EncodeError(cainiao.ErrorCodeSystem, "系统异常")), cainiao.ErrSystem},
		{"not json", "<html>", cainiao.ErrMalformed},
		{"failure without code", `{"success":false}`, cainiao.ErrMalformed},
		{"success without data", `{"success":true}`, cainiao.ErrMalformed},
		{"bad time", `{"success":true,"data":{"mail_no":"x","traces":[{"trace":{"detail":{"operate_time":"yesterday"}}}]}}`, cainiao.ErrMalformed},
		{"missing time", `{"success":true,"data":{"mail_no":"x","traces":[{"trace":{"detail":{}}}]}}`, cainiao.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := cainiao.ParseTraceResponse([]byte(tc.body)); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 9, 3, 7, 59, 7, 0, cainiao.China)
	in := cainiao.TraceData{MailNo: "YT1", Traces: []cainiao.TraceEntry{{Trace: cainiao.Trace{Detail: cainiao.Detail{
		OperateTime: cainiao.OperateTime{Time: at}, OperateAction: cainiao.ActionAccept, OperateDesc: "已揽件"}}}}}
	b, err := cainiao.EncodeTraceResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cainiao.ParseTraceResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Traces[0].Trace.Detail.OperateTime.Equal(at) || out.Traces[0].Trace.Detail.OperateDesc != "已揽件" {
		t.Fatalf("%+v", out)
	}
}

func FuzzParseTraceResponse(f *testing.F) {
	f.Add([]byte(docShaped))
	f.Add(cainiao.EncodeError(cainiao.ErrorCodeSign, "x"))
	f.Add([]byte(`{"success":true,"data":{"mail_no":"x","traces":[{"trace":{"detail":{"operate_time":"1725361147000"}}}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := cainiao.ParseTraceResponse(body)
		if err != nil {
			var ce *cainiao.Error
			if !errors.As(err, &ce) && !errors.Is(err, cainiao.ErrMalformed) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if d.MailNo == "" {
			t.Fatal("accepted without mail_no")
		}
		for _, tr := range d.Traces {
			if tr.Trace.Detail.OperateTime.IsZero() {
				t.Fatal("accepted a trace without time")
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add(cainiao.NewRequest("P", vecSecret, cainiao.MsgTypeTraceQuery, "", []byte(vecInterface)).Encode())
	f.Add("logistic_provider_id=&data_digest=%2B")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		r, err := cainiao.ParseRequest(form)
		if err == nil && (r.ProviderID == "" || r.LogisticsInterface == "" || r.DataDigest == "" || r.MsgType == "") {
			t.Fatalf("incomplete request accepted %+v", r)
		}
	})
}
