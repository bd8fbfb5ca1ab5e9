package aliyun

import (
	"errors"
	"testing"
	"time"
)

func TestFileTransParamsVerify(t *testing.T) {
	t.Parallel()
	secretOf := func(id string) (string, bool) { return "sandbox-secret", id == "LTAI5tTest" }
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p, err := SubmitTaskParams("LTAI5tTest", "sandbox-secret", "n1", at, FileTransTask{AppKey: "k", FileLink: "https://a.example/r.wav", Version: FileTransTaskVersion})
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("Task") != `{"appkey":"k","file_link":"https://a.example/r.wav","version":"4.0"}` {
		t.Fatalf("Task %s", p.Get("Task"))
	}
	if _, err := VerifyV1("POST", p, secretOf); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyV1("GET", p, secretOf); !errors.Is(err, ErrSignature) {
		t.Fatalf("a POST signature verified as GET: %v", err)
	}
	q := GetTaskResultParams("LTAI5tTest", "sandbox-secret", "n2", at, "task-1")
	if _, err := VerifyV1("GET", q, secretOf); err != nil || q.Get("TaskId") != "task-1" {
		t.Fatal(err)
	}
}

func TestParseGetTaskResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		pending bool
		n       int
		wantErr error
	}{
		{"running", `{"TaskId":"t","StatusText":"RUNNING","StatusCode":21050001}`, true, 0, nil},
		{"success", `{"TaskId":"t","StatusText":"SUCCESS","StatusCode":21050000,"Result":{"Sentences":[{"BeginTime":100,"EndTime":900,"Text":"你好","ChannelId":0}]}}`, false, 1, nil},
		{"failure", `{"TaskId":"t","StatusText":"FILE_DOWNLOAD_FAILED","StatusCode":41050002}`, false, 0, nil},
		{"success without result", `{"TaskId":"t","StatusText":"SUCCESS"}`, false, 0, ErrFileTrans},
		{"backwards sentence", `{"StatusText":"SUCCESS","Result":{"Sentences":[{"BeginTime":900,"EndTime":100}]}}`, false, 0, ErrFileTrans},
		{"not json", `<html>`, false, 0, ErrFileTrans},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := ParseGetTaskResult([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil && (r.Pending() != tt.pending || r.Result != nil && len(r.Result.Sentences) != tt.n) {
				t.Fatalf("%+v", r)
			}
		})
	}
}

func FuzzParseGetTaskResult(f *testing.F) {
	f.Add([]byte(`{"TaskId":"t","StatusText":"SUCCESS","Result":{"Sentences":[{"BeginTime":1,"EndTime":2,"Text":"x","ChannelId":1}]}}`))
	f.Add([]byte(`{"StatusText":"QUEUEING"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseGetTaskResult(body)
		if err != nil {
			if !errors.Is(err, ErrFileTrans) {
				t.Fatalf("error %v does not wrap ErrFileTrans", err)
			}
			return
		}
		if r.StatusText == FileTransSuccess {
			for _, s := range r.Result.Sentences {
				if s.BeginTime < 0 || s.EndTime < s.BeginTime {
					t.Fatalf("accepted %+v", s)
				}
			}
		}
	})
}
