package wecom_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// The kf callback notice (SKIT EventSamples/_/KfMessage/KfMessageEvent.xml).
const kfNotice = `<xml>
  <ToUserName><![CDATA[ww12345678910]]></ToUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[kf_msg_or_event]]></Event>
  <Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>
  <OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId>
</xml>`

// The sync_msg answer of the vendor reference (§1.4), one item per message type.
const syncAnswer = `{"errcode":0,"errmsg":"ok","next_cursor":"4gw7MepFLfgF2VC5npN","has_more":1,"msg_list":[
{"msgid":"from_msgid_4622416642169452483","open_kfid":"wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q","external_userid":"wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw","send_time":1615478585,"origin":3,"servicer_userid":"Zhangsan","msgtype":"text","text":{"content":"hello","menu_id":"101"}},
{"msgid":"m2","open_kfid":"wk1","external_userid":"wm1","send_time":1615478586,"origin":3,"msgtype":"image","image":{"media_id":"2iSLeVyqzk4eX0IB5kTi9Ljfa2rt9dwfq5WKRQ4Nvvgw"}},
{"msgid":"m3","open_kfid":"wk1","external_userid":"wm1","send_time":1615478587,"origin":3,"msgtype":"location","location":{"latitude":23.106021881103501,"longitude":113.320503234863,"name":"广州国际媒体港","address":"广东省广州市海珠区滨江东路"}},
{"msgid":"m4","open_kfid":"wk1","external_userid":"wm1","send_time":1615478588,"origin":3,"msgtype":"link","link":{"title":"t","desc":"d","url":"https://example.com/a","pic_url":"https://example.com/p.png"}},
{"msgid":"m5","open_kfid":"wk1","external_userid":"wm1","send_time":1615478589,"origin":3,"msgtype":"miniprogram","miniprogram":{"appid":"wx8bd80126147dfAAA","title":"mini","thumb_media_id":"MEDIA","pagepath":"pages/index"}},
{"msgid":"m6","send_time":1615478590,"origin":4,"msgtype":"event","event":{"event_type":"enter_session","open_kfid":"wk1","external_userid":"wm1","scene":"123","scene_param":"abc","welcome_code":"aaaaaa"}},
{"msgid":"m7","open_kfid":"wk1","external_userid":"wm1","send_time":1615478591,"origin":3,"msgtype":"channels_shop_product","channels_shop_product":{"product_id":"10000","title":"x"}}
]}`

func TestParseKfNotice(t *testing.T) {
	t.Parallel()
	cb, err := wecom.ParseCallback([]byte(kfNotice))
	if err != nil {
		t.Fatal(err)
	}
	if !cb.IsKfNotice() || cb.Token != "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR" || cb.OpenKfID != "wkxxxxxxx" ||
		cb.ToUserName != "ww12345678910" || cb.CreateTime != 1348831860 {
		t.Fatalf("notice = %+v", cb)
	}
	// What the simulator marshals parses back to the same notice.
	again, err := wecom.ParseCallback(wecom.MarshalKfNotice(cb.ToUserName, cb.CreateTime, cb.Token, cb.OpenKfID))
	if err != nil || again != cb {
		t.Fatalf("marshal round trip: %+v, %v", again, err)
	}
}

func TestMalformedXML(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"empty":        "",
		"json":         `{"Encrypt":"x"}`,
		"unclosed":     "<xml><Encrypt><![CDATA[abc]]></Encrypt>",
		"other root":   "<root><Encrypt>abc</Encrypt></root>",
		"no encrypt":   "<xml><ToUserName>x</ToUserName></xml>",
		"empty cdata":  "<xml><Encrypt><![CDATA[]]></Encrypt></xml>",
		"entity bombs": `<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>`,
	} {
		if _, err := wecom.ParseEnvelope([]byte(body)); !errors.Is(err, wecom.ErrMalformed) {
			t.Errorf("%s: ParseEnvelope = %v, want ErrMalformed", name, err)
		}
	}
	for name, msg := range map[string]string{
		"not xml":      "hello",
		"bad time":     "<xml><MsgType>event</MsgType><CreateTime>soon</CreateTime></xml>",
		"no msgtype":   "<xml><Event>kf_msg_or_event</Event></xml>",
		"other root":   "<x><MsgType>event</MsgType></x>",
		"truncated":    kfNotice[:60],
		"mixed escape": "<xml><MsgType>event</MsgType><Token>&bogus;</Token></xml>",
	} {
		if _, err := wecom.ParseCallback([]byte(msg)); !errors.Is(err, wecom.ErrMalformed) {
			t.Errorf("%s: ParseCallback = %v, want ErrMalformed", name, err)
		}
	}
}

func TestEnvelopeMarshalRoundTripAndCDATAEscape(t *testing.T) {
	t.Parallel()
	e := wecom.Envelope{ToUserName: "ww]]>x", Encrypt: "abc+/="}
	got, err := wecom.ParseEnvelope(e.Marshal())
	if err != nil || got != e {
		t.Fatalf("round trip %+v, %v (xml %s)", got, err, e.Marshal())
	}
	if strings.Contains(string(e.Marshal()), "AgentID") {
		t.Fatal("empty AgentID written")
	}
}

func TestSyncMsgResponseShapes(t *testing.T) {
	t.Parallel()
	var r wecom.SyncMsgResponse
	if err := json.Unmarshal([]byte(syncAnswer), &r); err != nil {
		t.Fatal(err)
	}
	if r.Err() != nil || r.NextCursor != "4gw7MepFLfgF2VC5npN" || r.HasMore != 1 || len(r.MsgList) != 7 {
		t.Fatalf("response = %+v", r)
	}
	var ms []wecom.Message
	for _, raw := range r.MsgList {
		m, err := wecom.DecodeMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if m := ms[0]; m.Text == nil || m.Text.Content != "hello" || m.Text.MenuID != "101" || m.Origin != wecom.OriginCustomer ||
		m.SendTime != 1615478585 || m.ServicerUserID != "Zhangsan" {
		t.Errorf("text = %+v", m)
	}
	if m := ms[1]; m.Image == nil || m.Image.MediaID == "" {
		t.Errorf("image = %+v", m)
	}
	if m := ms[2]; m.Location == nil || m.Location.Latitude != 23.106021881103501 || m.Location.Name != "广州国际媒体港" {
		t.Errorf("location = %+v", m.Location)
	}
	if m := ms[3]; m.Link == nil || m.Link.PicURL != "https://example.com/p.png" || m.Link.Desc != "d" {
		t.Errorf("link = %+v", m.Link)
	}
	if m := ms[4]; m.MiniProgram == nil || m.MiniProgram.PagePath != "pages/index" {
		t.Errorf("miniprogram = %+v", m.MiniProgram)
	}
	ev := ms[5]
	if ev.Event == nil || ev.Event.EventType != wecom.EventEnterSession || ev.Event.SceneParam != "abc" || ev.Event.WelcomeCode != "aaaaaa" {
		t.Errorf("event = %+v", ev.Event)
	}
	if user, kf := ev.Customer(); user != "wm1" || kf != "wk1" {
		t.Errorf("event customer = %s %s", user, kf)
	}
	if m := ms[6]; m.MsgType != "channels_shop_product" || m.Text != nil {
		t.Errorf("unknown type = %+v", m)
	}
}

func TestErrorsMatchByCode(t *testing.T) {
	t.Parallel()
	r := wecom.Response{ErrCode: 42001, ErrMsg: "access_token expired, hint: [1]"}
	err := fmt.Errorf("send: %w", r.Err())
	if !errors.Is(err, wecom.ErrAccessTokenExpired) || errors.Is(err, wecom.ErrInvalidAccessToken) {
		t.Fatalf("errors.Is by code failed for %v", err)
	}
	var we *wecom.Error
	if !errors.As(err, &we) || !we.TokenRejected() || we.Retryable() {
		t.Fatalf("classification of %v", err)
	}
	if !(&wecom.Error{Code: -1}).Retryable() || !(&wecom.Error{Code: 45009}).Retryable() || (&wecom.Error{Code: 95018}).Retryable() {
		t.Fatal("retryable classification")
	}
	if wecom.NewResponse(0).Err() != nil || wecom.NewResponse(95018).ErrMsg != "send msg session status invalid" {
		t.Fatal("NewResponse")
	}
}

func TestSendMsgID(t *testing.T) {
	t.Parallel()
	for id, ok := range map[string]bool{"": true, "abc_DEF-123": true, strings.Repeat("a", 32): true,
		strings.Repeat("a", 33): false, "a b": false, "消息": false, "a.b": false} {
		if wecom.ValidSendMsgID(id) != ok {
			t.Errorf("ValidSendMsgID(%q) != %v", id, ok)
		}
	}
}

func TestScenePhone(t *testing.T) {
	t.Parallel()
	key := []byte("scene-key")
	p := wecom.SignScenePhone(key, "+8613800138000")
	if !strings.HasPrefix(p, "p.+8613800138000.") || len(p) != len("p.+8613800138000.")+wecom.SceneMACLen || len(p) > 128 {
		t.Fatalf("scene_param = %s", p)
	}
	if phone, ok := wecom.VerifyScenePhone(key, p); !ok || phone != "+8613800138000" {
		t.Fatalf("verify own = %s %v", phone, ok)
	}
	if phone, ok := wecom.VerifyScenePhone(key, strings.Replace(p, "+", "%2B", 1)); !ok || phone != "+8613800138000" {
		t.Fatalf("percent-encoded = %s %v", phone, ok)
	}
	mac := p[len(p)-wecom.SceneMACLen:]
	for name, param := range map[string]string{
		"unsigned":        "p.+8613800138000",
		"other phone":     "p.+8613800138001." + mac,
		"other key":       wecom.SignScenePhone([]byte("other"), "+8613800138000"),
		"short mac":       p[:len(p)-1],
		"not e164":        "p.13800138000." + mac,
		"not a phone":     "abc",
		"empty":           "",
		"just prefix":     "p.",
		"bad escape":      "p.%zz.0011223344556677",
		"letters":         "p.+86abc." + mac,
		"long":            "p." + strings.Repeat("1", 300),
		"another purpose": "order.123." + mac,
	} {
		if phone, ok := wecom.VerifyScenePhone(key, param); ok {
			t.Errorf("%s: %q verified as %s", name, param, phone)
		}
	}
	if _, ok := wecom.VerifyScenePhone(nil, p); ok {
		t.Error("an empty key verified a scene_param")
	}
}

// FuzzParseEnvelope: never panics; errors wrap ErrMalformed; accepted envelopes re-marshal to a
// document that parses to the same envelope.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(vPostBody))
	f.Add((wecom.Envelope{ToUserName: "ww1", Encrypt: "abc"}).Marshal())
	f.Add([]byte("<xml><Encrypt>x</Encrypt></xml>"))
	f.Add([]byte("<xml>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := wecom.ParseEnvelope(body)
		if err != nil {
			if !errors.Is(err, wecom.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !utf8ish(e.ToUserName) || !utf8ish(e.Encrypt) || !utf8ish(e.AgentID) {
			return // XML cannot carry these characters back
		}
		again, err := wecom.ParseEnvelope(e.Marshal())
		if err != nil || strings.TrimSpace(again.Encrypt) != strings.TrimSpace(e.Encrypt) {
			t.Fatalf("re-marshal: %+v vs %+v (%v)", again, e, err)
		}
	})
}

// utf8ish reports whether s survives an XML round trip (valid XML characters, no CR).
func utf8ish(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || r == '\r' || (r < 0x20 && r != '\n' && r != '\t') {
			return false
		}
	}
	return true
}

// FuzzParseCallback: never panics; errors wrap ErrMalformed; a kf notice keeps its fields
// through MarshalKfNotice.
func FuzzParseCallback(f *testing.F) {
	f.Add([]byte(kfNotice))
	f.Add([]byte(vPostPlain))
	f.Add(wecom.MarshalKfNotice("ww1", 1, "tok", "wk1"))
	f.Add([]byte("<xml><MsgType>event</MsgType><CreateTime>-1</CreateTime></xml>"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		cb, err := wecom.ParseCallback(msg)
		if err != nil {
			if !errors.Is(err, wecom.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !cb.IsKfNotice() || !utf8ish(cb.ToUserName+cb.Token+cb.OpenKfID) {
			return
		}
		again, err := wecom.ParseCallback(wecom.MarshalKfNotice(cb.ToUserName, cb.CreateTime, cb.Token, cb.OpenKfID))
		if err != nil || again.Token != cb.Token || again.OpenKfID != cb.OpenKfID || again.CreateTime != cb.CreateTime {
			t.Fatalf("re-marshal: %+v vs %+v (%v)", again, cb, err)
		}
	})
}

// FuzzSyncMsgResponse: decoding a sync_msg answer and each of its items never panics, and an
// item that decodes re-encodes to JSON that decodes to the same message.
func FuzzSyncMsgResponse(f *testing.F) {
	f.Add([]byte(syncAnswer))
	f.Add([]byte(`{"errcode":40014,"errmsg":"invalid access_token"}`))
	f.Add([]byte(`{"errcode":0,"has_more":0,"msg_list":[{"msgtype":"text","text":{"content":1}}]}`))
	f.Add([]byte(`{"errcode":0,"msg_list":[null,1,"x",{}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r wecom.SyncMsgResponse
		if json.Unmarshal(body, &r) != nil {
			return
		}
		_ = r.Err()
		for _, raw := range r.MsgList {
			m, err := wecom.DecodeMessage(raw)
			if err != nil {
				continue
			}
			_, _ = m.Customer()
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", m, err)
			}
			m2, err := wecom.DecodeMessage(b)
			if err != nil {
				t.Fatalf("re-decode %s: %v", b, err)
			}
			b2, _ := json.Marshal(m2)
			if string(b) != string(b2) {
				t.Fatalf("not stable:\n%s\n%s", b, b2)
			}
		}
	})
}
