package weibo

import (
	"encoding/json"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/wire/weibo"
)

// FuzzDecodePush feeds the push decoder arbitrary bodies, seeded with Weibo's documented pushes
// (testdata): it must not panic, and whatever it accepts must become a schema-valid event with
// a deterministic id.
func FuzzDecodePush(f *testing.F) {
	connectortest.AddSeeds(f, "testdata/*.json")
	f.Add([]byte(`{"type":"position","receiver_id":1,"sender_id":2,"created_at":"Mon Jul 16 18:09:20 +0800 2012","data":{"longitude":"NaN","latitude":"1e999"}}`))
	f.Add([]byte(`{"type":"text","receiver_id":1,"sender_id":2,"created_at":"Mon Jul 16 18:09:20 +0800 2012","text":"\xff\xfe"}`))
	v := schema.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, at, err := weibo.ParsePush(body)
		if err != nil {
			return
		}
		msg, _, ok := normalize(p)
		if !ok {
			return
		}
		id := messageID(p, at)
		if id != messageID(p, at) {
			t.Fatal("message id not deterministic")
		}
		data, err := json.Marshal(received{Channel: Channel, ChannelMessageID: id, From: identity{IdentityKind, "2"},
			Account: "1", Message: msg, SentAt: at.UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(TypeReceived, data); err != nil {
			t.Fatalf("push %s became an invalid event: %v", body, err)
		}
	})
}
