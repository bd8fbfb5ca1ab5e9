package weibo_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// TestSignVector is vendors part2 A.5, the official example: VERIFIED.
func TestSignVector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, secret, ts, nonce, sig string
		ok                           bool
	}{
		{"doc example", "xyz123xyz", "1397022061823", "57155157", "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1", true},
		{"upper case hex", "xyz123xyz", "1397022061823", "57155157", "90E4C22C90A58F26526C2DD5B6C56C8822EDEAA1", true},
		{"other secret", "xyz123xyy", "1397022061823", "57155157", "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1", false},
		{"other nonce", "xyz123xyz", "1397022061823", "57155158", "90e4c22c90a58f26526c2dd5b6c56c8822edeaa1", false},
		{"empty", "xyz123xyz", "1397022061823", "57155157", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := weibo.Verify(tc.secret, tc.ts, tc.nonce, tc.sig); got != tc.ok {
				t.Errorf("Verify = %v, want %v (Sign = %s)", got, tc.ok, weibo.Sign(tc.secret, tc.ts, tc.nonce))
			}
		})
	}
}

func TestParsePush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		wantErr    error
	}{
		{"doc text", `{"type":"text","receiver_id":1902538057,"sender_id":2489518277,"created_at":"Mon Jul 16 18:09:20 +0800 2012","text":"私信或留言内容","data":{}}`, nil},
		{"position", `{"type":"position","receiver_id":1,"sender_id":2,"created_at":"Mon Jul 16 18:09:20 +0800 2012","text":"我在这里","data":{"longitude":"116.3","latitude":"39.9"}}`, nil},
		{"no sender", `{"type":"text","receiver_id":1,"created_at":"Mon Jul 16 18:09:20 +0800 2012"}`, weibo.ErrPush},
		{"string uid", `{"type":"text","receiver_id":"1","sender_id":2,"created_at":"Mon Jul 16 18:09:20 +0800 2012"}`, weibo.ErrPush},
		{"bad time", `{"type":"text","receiver_id":1,"sender_id":2,"created_at":"2012-07-16"}`, weibo.ErrPush},
		{"not json", `<xml/>`, weibo.ErrPush},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, at, err := weibo.ParsePush([]byte(tc.body))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && !at.Equal(time.Date(2012, 7, 16, 10, 9, 20, 0, time.UTC)) {
				t.Errorf("created_at = %s", at)
			}
		})
	}
}

func TestReplyForm(t *testing.T) {
	t.Parallel()
	r := weibo.Reply{AccessToken: "tok", ReceiverID: 2489518277, Type: weibo.TypeText, Data: []byte(`{"text":"您好"}`)}
	enc := r.Form().Encode()
	if want := "data=%7B%22text%22%3A%22%E6%82%A8%E5%A5%BD%22%7D"; !strings.Contains(enc, want) {
		t.Errorf("form %s lacks %s", enc, want)
	}
	back, err := weibo.ParseReply(r.Form())
	if err != nil || back.ReceiverID != r.ReceiverID || string(back.Data) != string(r.Data) || back.AccessToken != "tok" {
		t.Errorf("ParseReply = %+v, %v", back, err)
	}
}
