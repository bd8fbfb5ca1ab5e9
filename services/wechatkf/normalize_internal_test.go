package wechatkf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

func testNormalizer() *normalizer {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &normalizer{rt: &connector.Runtime{Spec: Spec, Log: log}, source: "/connectors/wechatkf",
		sceneKey: []byte("scene-key-shared-with-the-app"), schemas: schema.Default(), log: log,
		now: func() time.Time { return time.Unix(1718673600, 0) }}
}

// Real-shaped sync_msg items (vendor reference §1.4; silenceper work/kf/syncmsg/message.go).
var itemSeeds = []string{
	`{"msgid":"from_msgid_4622416642169452483","open_kfid":"wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q","external_userid":"wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw","send_time":1615478585,"origin":3,"servicer_userid":"Zhangsan","msgtype":"text","text":{"content":"hello","menu_id":"101"}}`,
	`{"msgid":"m2","open_kfid":"wk1","external_userid":"wm1","send_time":1615478586,"origin":3,"msgtype":"image","image":{"media_id":"2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvgw"}}`,
	`{"msgid":"m3","open_kfid":"wk1","external_userid":"wm1","send_time":1615478587,"origin":3,"msgtype":"location","location":{"latitude":23.1060218811035,"longitude":113.320503234863,"name":"广州国际媒体港","address":"广东省广州市海珠区滨江东路"}}`,
	`{"msgid":"m4","open_kfid":"wk1","external_userid":"wm1","send_time":1615478588,"origin":3,"msgtype":"link","link":{"title":"t","desc":"d","url":"https://example.com/a","pic_url":"https://example.com/p.png"}}`,
	`{"msgid":"m5","open_kfid":"wk1","external_userid":"wm1","send_time":1615478589,"origin":3,"msgtype":"miniprogram","miniprogram":{"appid":"wx8bd80126147dfAAA","title":"mini","thumb_media_id":"MEDIA","pagepath":"pages/index"}}`,
	`{"msgid":"m6","send_time":1615478590,"origin":4,"msgtype":"event","event":{"event_type":"enter_session","open_kfid":"wk1","external_userid":"wm1","scene":"123","scene_param":"p.+8613800138000.0000000000000000","welcome_code":"aaaaaa"}}`,
	`{"msgid":"m7","open_kfid":"wk1","external_userid":"wm1","send_time":1615478591,"origin":3,"msgtype":"merged_msg","merged_msg":{"title":"聊天记录","item":[]}}`,
	`{"msgid":"m8","open_kfid":"wk1","external_userid":"wm1","send_time":1615478592,"origin":5,"servicer_userid":"zs","msgtype":"text","text":{"content":"客服回复"}}`,
	`{"msgid":"m9","send_time":1615478593,"origin":4,"msgtype":"event","event":{"event_type":"servicer_status_change","servicer_userid":"zs","status":1}}`,
	`{"msgid":"m10","open_kfid":"wk1","external_userid":"wm1","send_time":"soon","origin":3,"msgtype":"text","text":{"content":"x"}}`,
	`{"msgtype":"text","external_userid":"wm1","text":{"content":"no msgid"}}`,
	`{"msgid":"m11","external_userid":"wm1","msgtype":"location","location":{"latitude":123,"longitude":500}}`,
	`{"msgid":"m12","external_userid":"wm1","msgtype":"link","link":{"url":"javascript:alert(1)"}}`,
	`{"msgid":"m13","external_userid":"` + strings.Repeat("w", 300) + `","msgtype":"text","text":{"content":"x"}}`,
	`[]`, `null`, `"x"`, `{}`,
}

func TestNormalizeSeeds(t *testing.T) {
	t.Parallel()
	n := testNormalizer()
	want := map[string]string{ // msgid → message type (or status)
		"from_msgid_4622416642169452483": "text", "m2": "image", "m3": "location", "m4": "link", "m5": "miniprogram",
		"m6": "event", "m7": "unsupported", "m8": "status", "m10": "unsupported", "m11": "unsupported", "m12": "unsupported",
	}
	got := map[string]string{}
	for _, raw := range itemSeeds {
		o, ok := n.item("wk1", json.RawMessage(raw))
		if !ok {
			continue
		}
		var d struct {
			ChannelMessageID string            `json:"channel_message_id"`
			VendorMessageID  string            `json:"vendor_message_id"`
			Message          map[string]any    `json:"message"`
			Identities       []json.RawMessage `json:"identities"`
		}
		_ = json.Unmarshal(o.Event.Data(), &d)
		if o.Event.Type() == TypeStatus {
			got[d.VendorMessageID] = "status"
			continue
		}
		got[d.ChannelMessageID] = d.Message["type"].(string)
		if d.ChannelMessageID == "m6" && len(d.Identities) != 0 {
			t.Error("an enter_session with a wrong MAC produced an identity")
		}
	}
	for id, typ := range want {
		if got[id] != typ {
			t.Errorf("%s normalised to %q, want %q", id, got[id], typ)
		}
	}
	// No msgid: a deterministic id from the item's bytes; no customer or no object: skipped;
	// an external_userid too long for any schema: skipped (logged), never published invalid.
	if len(got) != len(want)+1 {
		t.Errorf("published %v", got)
	}
}

// FuzzNormalize: any sync_msg item either is skipped or becomes a schema-valid event of a
// declared type and subject, with a deterministic id (a re-pull of the same item dedupes).
func FuzzNormalize(f *testing.F) {
	for _, s := range itemSeeds {
		f.Add([]byte(s))
	}
	n := testNormalizer()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return // sync_msg's msg_list items come out of a JSON document
		}
		o, ok := n.item("wk1", json.RawMessage(raw))
		if !ok {
			return
		}
		if err := schema.Default().Validate(o.Event.Type(), o.Event.Data()); err != nil {
			t.Fatalf("invalid %s: %v\n%s", o.Event.Type(), err, o.Event.Data())
		}
		switch {
		case o.Event.Type() == TypeReceived && o.Subject == SubjectMessage && strings.HasPrefix(o.Event.ID(), "wechatkf:"):
		case o.Event.Type() == TypeStatus && o.Subject == SubjectStatus && strings.HasPrefix(o.Event.ID(), "wechatkf:status:"):
		default:
			t.Fatalf("%s on %s with id %s", o.Event.Type(), o.Subject, o.Event.ID())
		}
		if !strings.HasPrefix(event.PartitionKey(o.Event), "wecom_external_userid:") {
			t.Fatalf("partition key %q", event.PartitionKey(o.Event))
		}
		again, _ := n.item("wk1", json.RawMessage(raw))
		if again.Event.ID() != o.Event.ID() || string(again.Event.Data()) != string(o.Event.Data()) {
			t.Fatal("normalising the same item twice differs")
		}
	})
}

func TestSendRequestMapping(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		msg     string
		wantErr bool
		check   func(wecom.SendMsgRequest) bool
	}{
		"text":        {`{"type":"text","text":"hi"}`, false, func(r wecom.SendMsgRequest) bool { return r.Text.Content == "hi" }},
		"image":       {`{"type":"image","media_id":"M"}`, false, func(r wecom.SendMsgRequest) bool { return r.Image.MediaID == "M" }},
		"file":        {`{"type":"file","media_id":"F"}`, false, func(r wecom.SendMsgRequest) bool { return r.File.MediaID == "F" }},
		"image url":   {`{"type":"image","media_url":"https://x/a.png"}`, true, nil},
		"link":        {`{"type":"link","link":{"title":"t","description":"d","url":"https://x","thumb_media_id":"T"}}`, false, func(r wecom.SendMsgRequest) bool { return r.Link.Desc == "d" && r.Link.ThumbMediaID == "T" }},
		"link no img": {`{"type":"link","link":{"title":"t","url":"https://x"}}`, true, nil},
		"miniprogram": {`{"type":"miniprogram","miniprogram":{"appid":"wx1","pagepath":"p","thumb_media_id":"T","title":"x"}}`, false, func(r wecom.SendMsgRequest) bool { return r.MiniProgram.AppID == "wx1" }},
		"voice":       {`{"type":"voice","media_id":"V"}`, true, nil},
	} {
		var m outMessage
		if err := json.Unmarshal([]byte(tc.msg), &m); err != nil {
			t.Fatal(err)
		}
		r, err := sendRequest("wm1", "wk1", m)
		if (err != nil) != tc.wantErr || (err == nil && (r.ToUser != "wm1" || r.OpenKfID != "wk1" || r.MsgType != m.Type || !tc.check(r))) {
			t.Errorf("%s: %+v, %v", name, r, err)
		}
	}
	id := sendMsgID("0190f2a4-3c1e-7b2d-9a8e-5f6a7b8c9d0e")
	if len(id) != 32 || !strings.HasPrefix(id, "omni") || !wecom.ValidSendMsgID(id) || id != sendMsgID("0190f2a4-3c1e-7b2d-9a8e-5f6a7b8c9d0e") {
		t.Fatalf("sendMsgID = %s", id)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	base := map[string]string{"WECHATKF_CORP_ID": "ww1", "WECHATKF_SECRET": "s", "WECHATKF_TOKEN": "Tok3n",
		"WECHATKF_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}
	load := func(over map[string]string) (*Config, error) {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range over {
			env[k] = v
		}
		var c Config
		err := config.Load(&c, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		return &c, err
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIBase != wecom.DefaultAPIBase || c.SyncLimit != 1000 || c.Window != 5*time.Minute || c.KVBucket != "wechatkf" {
		t.Fatalf("defaults: %+v", c)
	}
	for name, tc := range map[string]struct {
		over map[string]string
		want string
	}{
		"no corp":       {map[string]string{"WECHATKF_CORP_ID": ""}, "WECHATKF_CORP_ID is required"},
		"short aes key": {map[string]string{"WECHATKF_AES_KEY": "abc"}, "WECHATKF_AES_KEY"},
		"long token":    {map[string]string{"WECHATKF_TOKEN": strings.Repeat("a", 33)}, "WECHATKF_TOKEN"},
		"bad base":      {map[string]string{"WECHATKF_API_BASE": "qyapi.weixin.qq.com"}, "WECHATKF_API_BASE"},
		"short scene":   {map[string]string{"WECHATKF_SCENE_KEY": "short"}, "WECHATKF_SCENE_KEY"},
		"bad kfid":      {map[string]string{"WECHATKF_OPEN_KFID": "wk 1"}, "WECHATKF_OPEN_KFID"},
		"limit":         {map[string]string{"WECHATKF_SYNC_LIMIT": "5000"}, "WECHATKF_SYNC_LIMIT"},
		"budget":        {map[string]string{"WECHATKF_CALLBACK_BUDGET": "6s"}, "WECHATKF_CALLBACK_BUDGET"},
		"bucket":        {map[string]string{"WECHATKF_KV_BUCKET": "a.b"}, "WECHATKF_KV_BUCKET"},
	} {
		_, err := load(tc.over)
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
}

// TestNormalizeSendTime: a send_time out of bounds (a wrong clock: 2001, 2099) becomes the time
// of the pull, kept as vendor_time; an ordinary one, or none, stands.
func TestNormalizeSendTime(t *testing.T) {
	t.Parallel()
	n := testNormalizer()
	pulled := n.now().UTC()
	for _, tc := range []struct {
		name       string
		sendTime   int64
		want       time.Time
		vendorTime string
	}{
		{"a minute before the pull", pulled.Add(-time.Minute).Unix(), pulled.Add(-time.Minute), ""},
		{"6 days before (a catch-up after an outage)", pulled.Add(-6 * 24 * time.Hour).Unix(), pulled.Add(-6 * 24 * time.Hour), ""},
		{"2001", 1000000000, pulled, "2001-09-09T01:46:40Z"},
		{"2099", 4070908800, pulled, "2099-01-01T00:00:00Z"},
		{"no send_time", 0, pulled, ""},
	} {
		for _, origin := range []int{wecom.OriginCustomer, wecom.OriginServicer} {
			t.Run(fmt.Sprint(tc.name, "/origin ", origin), func(t *testing.T) {
				t.Parallel()
				raw := fmt.Sprintf(`{"msgid":"t%d","open_kfid":"wk1","external_userid":"wm1","send_time":%d,"origin":%d,"msgtype":"text","text":{"content":"hi"}}`,
					tc.sendTime, tc.sendTime, origin)
				o, ok := n.item("wk1", json.RawMessage(raw))
				if !ok {
					t.Fatal("skipped")
				}
				var d struct {
					SentAt     time.Time `json:"sent_at"`
					At         time.Time `json:"at"`
					VendorTime string    `json:"vendor_time"`
				}
				if err := json.Unmarshal(o.Event.Data(), &d); err != nil {
					t.Fatal(err)
				}
				got := d.SentAt
				if origin == wecom.OriginServicer {
					got = d.At
				}
				if !got.Equal(tc.want) || !o.Event.Time().Equal(tc.want) || d.VendorTime != tc.vendorTime {
					t.Fatalf("time %s, event time %s, vendor_time %q; want %s, %q\n%s", got, o.Event.Time(), d.VendorTime, tc.want, tc.vendorTime, o.Event.Data())
				}
			})
		}
	}
}
