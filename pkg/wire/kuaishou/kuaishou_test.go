package kuaishou_test

import (
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
)

// TestSignVector is vendors part2 A.8, SELF-COMPUTED with the documented rule (Kuaishou
// publishes no vector; the hex case is unconfirmed): it proves the rule is implemented as
// written, not Kuaishou's behaviour.
func TestSignVector(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"TEST"}`)
	tests := []struct {
		name, secret, sig string
		body              []byte
		ok                bool
	}{
		{"self-computed vector", "appsecret123", "2ed610846ea4c3f9615866983ef2980a", body, true},
		{"upper case hex", "appsecret123", "2ED610846EA4C3F9615866983EF2980A", body, true},
		{"other secret", "appsecret124", "2ed610846ea4c3f9615866983ef2980a", body, false},
		{"secret first (the Douyin order)", "appsecret123", kuaishou.Sign("", []byte("appsecret123"+string(body))), body, false},
		{"body re-serialised", "appsecret123", "2ed610846ea4c3f9615866983ef2980a", []byte(`{"event": "TEST"}`), false},
		{"empty", "appsecret123", "", body, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := kuaishou.Verify(tc.secret, tc.body, tc.sig); got != tc.ok {
				t.Errorf("Verify = %v, want %v (Sign = %s)", got, tc.ok, kuaishou.Sign(tc.secret, tc.body))
			}
		})
	}
	if got := kuaishou.Sign("appsecret123", body); got != "2ed610846ea4c3f9615866983ef2980a" {
		t.Errorf("Sign = %s", got)
	}
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, id, data string
		ok                   bool
	}{
		{"taskId", `{"event":"TEST","taskId":"t1","data":{"a":1}}`, "t1", `{"a":1}`, true},
		{"message_id, data a string", `{"event":"X","message_id":"m1","data":"{\"a\":2}"}`, "m1", `{"a":2}`, true},
		{"no event", `{"taskId":"t1"}`, "", "", false},
		{"not JSON", `result=1`, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := kuaishou.ParseEnvelope([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			if !tc.ok {
				return
			}
			d, err := e.DataJSON()
			if e.ID() != tc.id || err != nil || string(d) != tc.data {
				t.Errorf("id %q data %s %v", e.ID(), d, err)
			}
		})
	}
}
