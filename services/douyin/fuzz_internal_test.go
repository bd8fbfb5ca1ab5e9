package douyin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/wire/douyin"
)

// FuzzDecodeEvent feeds the event decoder arbitrary bodies, seeded with Douyin-shaped events
// (testdata: the documented envelope and text content, this connector's reading of image,
// video and card): it must not panic, and whatever it accepts as a message must become a
// schema-valid event.
func FuzzDecodeEvent(f *testing.F) {
	connectortest.AddSeeds(f, "testdata/*.json")
	f.Add([]byte(`{"event":"im_receive_msg","from_user_id":"u","to_user_id":"a","content":"{\"conversation_short_id\":\"c\",\"server_message_id\":\"1\",\"message_type\":\"text\",\"text\":\"\\udc00\"}"}`))
	f.Add([]byte(`{"event":"im_receive_msg","from_user_id":"u","to_user_id":"a","content":{"conversation_short_id":"c","server_message_id":1,"message_type":"image","image":{"url":"http://"}}}`))
	v := schema.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := douyin.ParseEnvelope(body)
		if err != nil {
			return
		}
		if e.Event == douyin.EventVerifyWebhook {
			if ch, err := douyin.ParseChallenge(e); err == nil {
				if _, err := json.Marshal(ch); err != nil {
					t.Fatalf("challenge %q does not encode: %v", ch.Challenge, err)
				}
			}
			return
		}
		m, err := douyin.ParseMessage(e)
		if err != nil {
			return
		}
		content, err := e.ContentJSON()
		if err != nil {
			t.Fatalf("ParseMessage accepted content ContentJSON refuses: %v", err)
		}
		if len(m.ServerMessageID) > 200 || len(e.FromUserID) > 200 || len(e.ToUserID) > 200 {
			return // refused by decode
		}
		data, err := json.Marshal(received{Channel: Channel, ChannelMessageID: string(m.ServerMessageID),
			From: connector.Identity{Kind: IdentityKind, Value: e.FromUserID}, Account: e.ToUserID,
			Message: normalize(m, content), SentAt: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(TypeReceived, data); err != nil {
			t.Fatalf("event %s became an invalid event: %v", body, err)
		}
	})
}
