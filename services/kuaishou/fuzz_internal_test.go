package kuaishou

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/wire/kuaishou"
)

// FuzzDecodeEvent feeds the event decoder arbitrary bodies, seeded with the documented TEST
// event and the (assumed) message events of testdata: it must not panic, and whatever it
// accepts as a message must become a schema-valid event.
func FuzzDecodeEvent(f *testing.F) {
	connectortest.AddSeeds(f, "testdata/*.json")
	f.Add([]byte(`{"event":"PRIVATE_MESSAGE","data":{"msg_id":"1","from_user_id":"u","msg_type":"text","text":"\udc00"}}`))
	v := schema.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := kuaishou.ParseEnvelope(body)
		if err != nil {
			return
		}
		data, err := e.DataJSON()
		if err != nil {
			return
		}
		m, err := parseMessage(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(received{Channel: Channel, ChannelMessageID: m.MsgID, From: connector.Identity{Kind: IdentityKind, Value: m.FromUserID}, Account: m.ToUserID,
			Message: normalize(m, data), SentAt: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(TypeReceived, out); err != nil {
			t.Fatalf("event %s became an invalid event: %v", body, err)
		}
	})
}
