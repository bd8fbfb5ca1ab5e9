package douyin_test

import (
	"errors"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/douyin"
)

// TestSignVector is vendors/vectors.md §3.1, SELF-COMPUTED with the documented rule (Douyin
// publishes no vector): it proves the rule is implemented as written, not Douyin's behaviour.
func TestSignVector(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"verify_webhook","client_key":"abc","content":{"challenge":12345}}`)
	tests := []struct {
		name, secret, sig string
		body              []byte
		ok                bool
	}{
		{"self-computed vector", "secret123", "21197fbce64707d3a90a3230f5ae33d4c4cd1eac", body, true},
		{"upper case hex", "secret123", "21197FBCE64707D3A90A3230F5AE33D4C4CD1EAC", body, true},
		{"other secret", "secret124", "21197fbce64707d3a90a3230f5ae33d4c4cd1eac", body, false},
		{"body re-serialised", "secret123", "21197fbce64707d3a90a3230f5ae33d4c4cd1eac",
			[]byte(`{"event": "verify_webhook","client_key":"abc","content":{"challenge":12345}}`), false},
		{"empty", "secret123", "", body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := douyin.Verify(tc.secret, tc.body, tc.sig); got != tc.ok {
				t.Errorf("Verify = %v, want %v (Sign = %s)", got, tc.ok, douyin.Sign(tc.secret, tc.body))
			}
		})
	}
	if got := douyin.Sign("secret123", body); got != "21197fbce64707d3a90a3230f5ae33d4c4cd1eac" {
		t.Errorf("Sign = %s", got)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		err        error
		id, text   string
	}{
		{"content as a string", `{"event":"im_receive_msg","client_key":"aw1","from_user_id":"u1","to_user_id":"a1","content":"{\"conversation_short_id\":\"@4F8A==\",\"server_message_id\":\"7300000000000000001\",\"conversation_type\":1,\"create_time\":1710000000000,\"message_type\":\"text\",\"text\":\"你好\"}"}`,
			nil, "7300000000000000001", "你好"},
		{"content as an object, id a number", `{"event":"im_receive_msg","client_key":"aw1","from_user_id":"u1","to_user_id":"a1","content":{"conversation_short_id":"@4F8A==","server_message_id":7300000000000000002,"message_type":"text","text":"hi"}}`,
			nil, "7300000000000000002", "hi"},
		{"no message id", `{"event":"im_receive_msg","from_user_id":"u1","to_user_id":"a1","content":"{\"conversation_short_id\":\"c\",\"message_type\":\"text\"}"}`, douyin.ErrEvent, "", ""},
		{"no sender", `{"event":"im_receive_msg","to_user_id":"a1","content":{"conversation_short_id":"c","server_message_id":"1","message_type":"text"}}`, douyin.ErrEvent, "", ""},
		{"content not JSON", `{"event":"im_receive_msg","from_user_id":"u1","to_user_id":"a1","content":"{not json"}`, douyin.ErrEvent, "", ""},
		{"id a float", `{"event":"im_receive_msg","from_user_id":"u1","to_user_id":"a1","content":{"conversation_short_id":"c","server_message_id":1.5,"message_type":"text"}}`, douyin.ErrEvent, "", ""},
		{"no event", `{"content":{}}`, douyin.ErrEvent, "", ""},
		{"not JSON", `<xml/>`, douyin.ErrEvent, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := douyin.ParseEnvelope([]byte(tc.body))
			var m douyin.Message
			if err == nil {
				m, err = douyin.ParseMessage(e)
			}
			if tc.err != nil {
				if err == nil {
					t.Fatalf("parsed %+v, want %v", m, tc.err)
				}
				return
			}
			if err != nil || string(m.ServerMessageID) != tc.id || m.Text != tc.text {
				t.Errorf("got %+v, %v", m, err)
			}
		})
	}
	if _, err := douyin.ParseMessage(douyin.Envelope{Event: "x", FromUserID: "u", ToUserID: "a", Content: []byte(`{"conversation_short_id":"c","server_message_id":{},"message_type":"text"}`)}); !errors.Is(err, douyin.ErrEvent) {
		t.Errorf("an object id: %v, want ErrEvent", err)
	}
}

func TestChallenge(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"event":"verify_webhook","client_key":"abc","content":{"challenge":12345}}`:     "12345",
		`{"event":"verify_webhook","client_key":"abc","content":"{\"challenge\":67890}"}`: "67890",
		`{"event":"verify_webhook","client_key":"abc","content":{"challenge":"abc"}}`:     "",
		`{"event":"verify_webhook","client_key":"abc","content":{"challenge":1.5}}`:       "",
		`{"event":"verify_webhook","client_key":"abc"}`:                                   "",
	} {
		e, err := douyin.ParseEnvelope([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		ch, err := douyin.ParseChallenge(e)
		if got := ch.Challenge.String(); got != want || (want == "") != (err != nil) {
			t.Errorf("%s: challenge %q, %v; want %q", body, got, err, want)
		}
	}
}

func TestCodeOf(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"data":{"error_code":0,"description":"","msg_id":"m1"},"extra":{"error_code":0,"logid":"l"}}`: "0",
		`{"data":{"error_code":2190008,"description":"access_token过期"},"extra":{"error_code":2190008}}`: "2190008",
		`{"data":{},"extra":{"error_code":2100004}}`:                                                    "2100004",
		`{"message":"x"}`: "",
		`not json`:        "",
	} {
		if got := douyin.CodeOf([]byte(body)); got != want {
			t.Errorf("CodeOf(%s) = %q, want %q", body, got, want)
		}
	}
}
