package tencent

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseTCCCPushSamples(t *testing.T) {
	t.Parallel()
	c, err := ParseCDRPush(readSample(t, "tccc-cdr-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SessionID != "e97be0ab-1ef6-4ad2-a8c4-2b2bbfb18e55" || c.Caller != "13123456789" || c.Direction != DirectionInbound ||
		c.HungUpSide != HungUpUser || c.EndUnix() != 1608130650 || c.SeatUser == nil || c.SeatUser.Mail != "agent@example.com" {
		t.Fatalf("cdr %+v", c)
	}
	r, err := ParseRecordPush(readSample(t, "tccc-record-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.EndpointUser != "agent@example.com" || r.RecordID != "1608130650" || r.SdkAppID != 1400264214 {
		t.Fatalf("record %+v", r)
	}
	// The doc's voicemail sample has EndpointUser as a bare number.
	v, err := ParseVoicemailPush(readSample(t, "tccc-voicemail-push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.EndpointUser != "13123456789" {
		t.Fatalf("voicemail %+v", v)
	}
}

func TestParseTCCCPushRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		parse func([]byte) error
		body  string
	}{
		{"cdr not an object", func(b []byte) error { _, err := ParseCDRPush(b); return err }, `[1]`},
		{"cdr no session", func(b []byte) error { _, err := ParseCDRPush(b); return err }, `{"Time":1,"Direction":0}`},
		{"cdr bad direction", func(b []byte) error { _, err := ParseCDRPush(b); return err }, `{"SessionId":"s","Time":1,"Direction":7}`},
		{"cdr ends before start", func(b []byte) error { _, err := ParseCDRPush(b); return err },
			`{"SessionId":"s","Time":100,"Direction":0,"EndedTimestamp":50}`},
		{"cdr trailing data", func(b []byte) error { _, err := ParseCDRPush(b); return err }, `{"SessionId":"s","Time":1,"Direction":0} {}`},
		{"cdr wrong type", func(b []byte) error { _, err := ParseCDRPush(b); return err }, `{"SessionId":5,"Time":1}`},
		{"record no url", func(b []byte) error { _, err := ParseRecordPush(b); return err }, `{"SessionId":"s","RecordURL":"ftp://x"}`},
		{"record endpoint object", func(b []byte) error { _, err := ParseRecordPush(b); return err },
			`{"SessionId":"s","RecordURL":"http://x/a.mp3","EndpointUser":{}}`},
		{"voicemail no session", func(b []byte) error { _, err := ParseVoicemailPush(b); return err }, `{"RecordURL":"http://x/a.mp3"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.parse([]byte(tt.body)); !errors.Is(err, ErrMalformedPush) {
				t.Fatalf("got %v, want ErrMalformedPush", err)
			}
		})
	}
}

// DescribeTelCdr is signed like every API 3.0 call, with service ccc.
func TestDescribeTelCdrSignedForCCC(t *testing.T) {
	t.Parallel()
	body, _ := json.Marshal(DescribeTelCdrRequest{SdkAppID: 1400000000, StartTimeStamp: 1765100000, EndTimeStamp: 1765103600, PageSize: 100})
	req, _ := http.NewRequest(http.MethodPost, "https://"+CCCHost+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderAction, ActionDescribeTelCdr)
	req.Header.Set(HeaderVersion, CCCVersion)
	Signer{SecretID: exampleID, SecretKey: exampleKey, Service: CCCService}.Sign(req, body, 1765102500)
	req.Host = CCCHost
	if _, err := Verify(req, body, CCCService, exampleSecret, time.Unix(1765102500, 0), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(req, body, Service, exampleSecret, time.Unix(1765102500, 0), 5*time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("verified for sms: %v", err)
	}
}

// The push decoders face the internet: whatever the body, they either fail with
// ErrMalformedPush or return a record that satisfies their own checks.
func FuzzParseCDRPush(f *testing.F) {
	f.Add(readSample(f, "tccc-cdr-push.json"))
	f.Add([]byte(`{"SessionId":"s","Time":1,"Direction":1,"AcceptTimestamp":2,"Duration":3}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseCDRPush(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedPush) {
				t.Fatalf("error %v does not wrap ErrMalformedPush", err)
			}
			return
		}
		if c.SessionID == "" || c.EndUnix() < c.StartUnix() || c.StartUnix() <= 0 {
			t.Fatalf("accepted an invalid record %+v", c)
		}
	})
}

func FuzzParseRecordPush(f *testing.F) {
	f.Add(readSample(f, "tccc-record-push.json"))
	f.Add(readSample(f, "tccc-voicemail-push.json"))
	f.Add([]byte(`{"SessionId":"s","RecordURL":"https://a/b","EndpointUser":1.5e3}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (string, string, error){
			func(b []byte) (string, string, error) {
				p, err := ParseRecordPush(b)
				return p.SessionID, p.RecordURL, err
			},
			func(b []byte) (string, string, error) {
				p, err := ParseVoicemailPush(b)
				return p.SessionID, p.RecordURL, err
			},
		} {
			s, u, err := parse(body)
			if err != nil {
				if !errors.Is(err, ErrMalformedPush) {
					t.Fatalf("error %v does not wrap ErrMalformedPush", err)
				}
				continue
			}
			if s == "" || u == "" {
				t.Fatalf("accepted a push without session or URL: %q", body)
			}
		}
	})
}
