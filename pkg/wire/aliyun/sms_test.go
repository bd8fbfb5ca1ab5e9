package aliyun

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"
)

// The documented push examples (vendors README §4.4, §4.5).
const (
	docSmsUp     = `[{"phone_number":"1381111****","send_time":"2017-09-01 00:00:00","content":"内容","sign_name":"签名","dest_code":"1234","sequence_id":1234567890}]`
	docSmsReport = `[{"phone_number":"1381111****","send_time":"2017-01-01 00:00:00","report_time":"2017-01-01 00:00:00","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"12345********","out_id":"67890**"}]`
)

func TestParseSmsUpDocExample(t *testing.T) {
	t.Parallel()
	ups, err := ParseSmsUp([]byte(docSmsUp))
	if err != nil {
		t.Fatal(err)
	}
	want := SmsUp{PhoneNumber: "1381111****", SendTime: "2017-09-01 00:00:00", Content: "内容", SignName: "签名", DestCode: "1234", SequenceID: "1234567890"}
	if len(ups) != 1 || ups[0] != want {
		t.Fatalf("got %+v", ups)
	}
	at, _ := ParseTime(ups[0].SendTime)
	if !at.Equal(time.Date(2017, 8, 31, 16, 0, 0, 0, time.UTC)) {
		t.Fatalf("send_time is Beijing time: got %s", at.UTC())
	}
}

func TestParseSmsReportDocExample(t *testing.T) {
	t.Parallel()
	reps, err := ParseSmsReport([]byte(docSmsReport))
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || !reps[0].Success || reps[0].BizID != "12345********" || reps[0].OutID != "67890**" || reps[0].ErrCode != "DELIVERED" {
		t.Fatalf("got %+v", reps)
	}
}

func TestParsePushRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, up, report string }{
		{"object, not array", `{"phone_number":"1"}`, `{"phone_number":"1"}`},
		{"not JSON", `[{`, `[{`},
		{"empty body", ``, ``},
		{"trailing data", docSmsUp + `x`, docSmsReport + `x`},
		{"no phone", `[{"send_time":"2017-09-01 00:00:00","sequence_id":1}]`, `[{"report_time":"2017-01-01 00:00:00","biz_id":"1"}]`},
		{"bad time", `[{"phone_number":"1","send_time":"2017-09-01T00:00:00Z","sequence_id":1}]`, `[{"phone_number":"1","report_time":"yesterday","biz_id":"1"}]`},
		{"bad id", `[{"phone_number":"1","send_time":"2017-09-01 00:00:00","sequence_id":-1}]`, `[{"phone_number":"1","report_time":"2017-01-01 00:00:00"}]`},
		{"wrong type", `[{"phone_number":1,"send_time":"2017-09-01 00:00:00","sequence_id":1}]`, `[{"phone_number":"1","report_time":"2017-01-01 00:00:00","biz_id":"1","success":"true"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseSmsUp([]byte(tc.up)); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseSmsUp err = %v", err)
			}
			if _, err := ParseSmsReport([]byte(tc.report)); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseSmsReport err = %v", err)
			}
		})
	}
}

func TestSendSmsQueryRoundTrip(t *testing.T) {
	t.Parallel()
	s := SendSms{PhoneNumbers: "13800138000", SignName: "阿里云", TemplateCode: "SMS_1", TemplateParam: `{"content":"a&b=c"}`, OutID: "x"}
	q, err := url.ParseQuery(s.Query().Encode())
	if err != nil || ParseSendSms(q) != s {
		t.Fatalf("round trip: %+v %v", ParseSendSms(q), err)
	}
	if _, ok := s.Query()["SmsUpExtendCode"]; ok {
		t.Fatal("empty optional parameter sent")
	}
}

// FuzzParseSmsUp: any input either fails with ErrMalformed or yields items that satisfy the
// documented invariants and survive a marshal/parse round trip.
func FuzzParseSmsUp(f *testing.F) {
	f.Add([]byte(docSmsUp))
	f.Add([]byte(`[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"你好","sign_name":"omnibus","dest_code":"","sequence_id":"42"},{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","content":"","sequence_id":43}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ups, err := ParseSmsUp(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, u := range ups {
			if u.PhoneNumber == "" || !digits(u.SequenceID.String()) {
				t.Fatalf("accepted invalid item %+v", u)
			}
			if _, err := ParseTime(u.SendTime); err != nil {
				t.Fatalf("accepted bad send_time %q", u.SendTime)
			}
		}
		b, err := json.Marshal(ups)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSmsUp(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}

// FuzzParseSmsReport: as FuzzParseSmsUp, for receipts.
func FuzzParseSmsReport(f *testing.F) {
	f.Add([]byte(docSmsReport))
	f.Add([]byte(`[{"phone_number":"13800138000","send_time":"2026-11-27 08:00:00","report_time":"2026-11-27 08:00:03","success":false,"err_code":"MK:0001","err_msg":"失败","sms_size":"2","biz_id":"900619746936498^0","out_id":""}]`))
	f.Add([]byte(`[{}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reps, err := ParseSmsReport(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, r := range reps {
			if r.PhoneNumber == "" || r.BizID == "" {
				t.Fatalf("accepted invalid item %+v", r)
			}
		}
		b, err := json.Marshal(reps)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSmsReport(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}
