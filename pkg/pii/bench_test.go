package pii_test

import (
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

var benchEvent = []byte(`{"channel":"sms","channel_message_id":"m12345","from":{"kind":"phone","value":"+8613912345678"},"identities":[{"kind":"wechat_openid","value":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}],"message":{"type":"text","text":"Hello — I'd like to return the headphones I bought last week; the left earbud has no sound."},"sent_at":"2026-11-27T08:00:00Z","account":"Omnibus"}`)

func BenchmarkEvents(b *testing.B) {
	k, _ := pii.NewKeys()
	x := pii.NewEvents(k)
	sealed, _ := x.Seal(benchEvent)
	b.Run("seal", func(b *testing.B) {
		for b.Loop() {
			_, _ = x.Seal(benchEvent)
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			_, _ = x.Open(sealed)
		}
	})
	b.Run("blind index", func(b *testing.B) {
		for b.Loop() {
			_ = k.BlindIndex("phone", "+8613912345678")
		}
	})
	b.Run("encrypt", func(b *testing.B) {
		for b.Loop() {
			_, _ = k.Encrypt("+8613912345678")
		}
	})
	b.Run("seal identity", func(b *testing.B) {
		for b.Loop() {
			_, _ = x.SealIdentity("phone", "+8613912345678")
		}
	})
}
