package tencent

import (
	"encoding/json"
	"errors"
	"testing"
)

// The documented callback examples (vendors README §5.3), with the masked mobile filled in.
const (
	docReply  = `{"extend":"","mobile":"13800138000","nationcode":"86","sign":"短信签名","text":"用户回复的内容","time":1457336869}`
	docStatus = `[{"user_receive_time":"2015-10-17 08:03:04","nationcode":"86","mobile":"13800138000","report_status":"SUCCESS","errmsg":"DELIVRD","description":"用户短信送达成功","sid":"xxxxxxx"}]`
	docResp   = `{"Response":{"SendStatusSet":[{"SerialNo":"5000:1045710669157053657849499619","PhoneNumber":"+8618511122233","Fee":1,"SessionContext":"test","Code":"Ok","Message":"send success","IsoCode":"CN"}],"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}`
	docError  = `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"b1"}}`
)

func TestParseReplyDocExample(t *testing.T) {
	t.Parallel()
	r, err := ParseReply([]byte(docReply))
	want := Reply{Mobile: "13800138000", Nationcode: "86", Sign: "短信签名", Text: "用户回复的内容", Time: 1457336869}
	if err != nil || r != want {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestParseStatusDocExample(t *testing.T) {
	t.Parallel()
	reps, err := ParseStatus([]byte(docStatus))
	if err != nil || len(reps) != 1 || reps[0].Sid != "xxxxxxx" || reps[0].ReportStatus != ReportSuccess {
		t.Fatalf("got %+v, %v", reps, err)
	}
	at, _ := ParseReportTime(reps[0].UserReceiveTime)
	if at.Unix() != 1445040184 { // 2015-10-17 00:03:04 UTC
		t.Fatalf("user_receive_time is Beijing time: %s", at.UTC())
	}
}

func TestResponseShapes(t *testing.T) {
	t.Parallel()
	var ok, bad SendSmsResponse
	if err := json.Unmarshal([]byte(docResp), &ok); err != nil || len(ok.Response.SendStatusSet) != 1 || ok.Response.SendStatusSet[0].Code != CodeOk || ok.Response.Error != nil {
		t.Fatalf("success response: %+v %v", ok, err)
	}
	if err := json.Unmarshal([]byte(docError), &bad); err != nil || bad.Response.Error == nil || bad.Response.Error.Code != "AuthFailure.SignatureFailure" {
		t.Fatalf("error response: %+v %v", bad, err)
	}
	b, _ := json.Marshal(bad)
	if string(b) != `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"b1"}}` {
		t.Fatalf("error response renders as %s", b)
	}
}

func TestParseCallbackRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, reply, status string }{
		{"wrong container", `[` + docReply + `]`, docReply},
		{"not JSON", `{`, `[`},
		{"empty", ``, ``},
		{"letters in mobile", `{"mobile":"138abc","nationcode":"86","text":"x","time":1}`, `[{"nationcode":"86","mobile":"138abc","report_status":"SUCCESS","sid":"1"}]`},
		{"no nationcode", `{"mobile":"13800138000","text":"x","time":1}`, `[{"mobile":"13800138000","report_status":"SUCCESS","sid":"1"}]`},
		{"no time / no sid", `{"mobile":"13800138000","nationcode":"86","text":"x"}`, `[{"nationcode":"86","mobile":"13800138000","report_status":"SUCCESS"}]`},
		{"time as string / bad status", `{"mobile":"13800138000","nationcode":"86","text":"x","time":"1457336869"}`, `[{"nationcode":"86","mobile":"13800138000","report_status":"OK","sid":"1"}]`},
		{"trailing data / bad time", docReply + `{}`, `[{"nationcode":"86","mobile":"13800138000","report_status":"FAIL","sid":"1","user_receive_time":"2015-10-17T08:03:04"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseReply([]byte(tc.reply)); !errors.Is(err, ErrMalformedCallback) {
				t.Errorf("ParseReply err = %v", err)
			}
			if _, err := ParseStatus([]byte(tc.status)); !errors.Is(err, ErrMalformedCallback) {
				t.Errorf("ParseStatus err = %v", err)
			}
		})
	}
}

// FuzzParseReply: any input fails with ErrMalformedCallback or satisfies the invariants and
// survives a marshal/parse round trip unchanged.
func FuzzParseReply(f *testing.F) {
	f.Add([]byte(docReply))
	f.Add([]byte(`{"extend":"01","mobile":"91234567","nationcode":"852","sign":"omnibus","text":"hi","time":1764201600}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseReply(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedCallback) {
				t.Fatalf("error %v does not wrap ErrMalformedCallback", err)
			}
			return
		}
		if r.Time <= 0 || !digits(r.Mobile, 4, 15) || !digits(r.Nationcode, 1, 4) {
			t.Fatalf("accepted %+v", r)
		}
		b, _ := json.Marshal(r)
		if again, err := ParseReply(b); err != nil || again != r {
			t.Fatalf("round trip %+v: %+v %v", r, again, err)
		}
	})
}

// FuzzParseStatus: as FuzzParseReply, for the status callback.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(docStatus))
	f.Add([]byte(`[{"user_receive_time":"","nationcode":"86","mobile":"13800138000","report_status":"FAIL","errmsg":"MK:0001","description":"失败","sid":"2645:1"},{"nationcode":"1","mobile":"2025550123","report_status":"SUCCESS","sid":"2"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reps, err := ParseStatus(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedCallback) {
				t.Fatalf("error %v does not wrap ErrMalformedCallback", err)
			}
			return
		}
		for _, r := range reps {
			if r.Sid == "" || (r.ReportStatus != ReportSuccess && r.ReportStatus != ReportFail) {
				t.Fatalf("accepted %+v", r)
			}
		}
		b, _ := json.Marshal(reps)
		if _, err := ParseStatus(b); err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
	})
}
