package wechatkf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	wire "github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/wecom"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
)

// ---- conformance ----

// conformanceRuns holds each conformance run's sandbox, keyed by the run's test name (the
// harness gives Setup, Inbound, Forged, Outbound and Delivered the same *testing.T).
var conformanceRuns sync.Map

type conformanceRun struct {
	env   *sim.Env
	sim   *wecom.Sim
	mu    sync.Mutex
	added map[int]bool
}

func runOf(t *testing.T) *conformanceRun {
	t.Helper()
	v, ok := conformanceRuns.Load(t.Name())
	if !ok {
		t.Fatalf("no sandbox for %s", t.Name())
	}
	return v.(*conformanceRun)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	inbound := func(t *testing.T, n int) *http.Request {
		r := runOf(t)
		r.mu.Lock()
		if !r.added[n] { // distinct n → distinct vendor message; the same n → the same message
			r.added[n] = true
			r.sim.Deliver(wire.Message{MsgID: fmt.Sprintf("from_msgid_conf_%d", n), ExternalUserID: fmt.Sprintf("wmConformance%04d", n),
				MsgType: "text", Text: &wire.Text{Content: fmt.Sprintf("你好 %d", n)}})
		}
		r.mu.Unlock()
		req, err := r.sim.CallbackRequest(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	connectortest.Run(t, connectortest.Harness{
		Spec:    wechatkf.Spec,
		Service: wechatkf.Service(),
		Env: map[string]string{"WECHATKF_CORP_ID": corpID, "WECHATKF_SECRET": secret, "WECHATKF_TOKEN": cbToken,
			"WECHATKF_AES_KEY": aesKey, "WECHATKF_SCENE_KEY": sceneKey},
		Setup: func(t *testing.T) map[string]string {
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			env := sim.NewEnv(mux, "http://127.0.0.1:0/hooks", nil, 0, quiet())
			s, err := wecom.New(env, wecom.Config{CorpID: corpID, Secret: secret, Token: cbToken, EncodingAESKey: aesKey, SceneKey: sceneKey})
			if err != nil {
				t.Fatal(err)
			}
			conformanceRuns.Store(t.Name(), &conformanceRun{env: env, sim: s, added: map[int]bool{}})
			t.Cleanup(func() { conformanceRuns.Delete(t.Name()) })
			return map[string]string{"WECHATKF_API_BASE": srv.URL + "/sandbox/wecom"}
		},
		Inbound: inbound,
		Forged: func(t *testing.T, n int) *http.Request {
			// A callback as WeCom would send it, but not signed with the Token. It queues no
			// message: a forged request must not make the next real one pull extra messages.
			req, err := runOf(t).sim.CallbackRequest(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			q := req.URL.Query()
			q.Set("msg_signature", wire.Signature("not-the-token", q.Get("timestamp"), q.Get("nonce"), "x"))
			req.URL.RawQuery = q.Encode()
			return req
		},
		Outbound: func(t *testing.T) (string, event.Event) {
			r := runOf(t)
			r.sim.Deliver(wire.Message{ExternalUserID: "wmConformanceOut", MsgType: "text", Text: &wire.Text{Content: "在吗"}})
			e, err := event.New(wechatkf.TypeSend, "/desk", map[string]any{
				"channel": "wechatkf", "to": map[string]string{"kind": "wecom_external_userid", "value": "wmConformanceOut"},
				"account": r.sim.Config().OpenKfID, "message": map[string]any{"type": "text", "text": "您的包裹已发出"},
			})
			if err != nil {
				t.Fatal(err)
			}
			return wechatkf.SubjectSend, e
		},
		Delivered: func(t *testing.T, e event.Event) bool {
			for _, rec := range runOf(t).env.Records(sim.Filter{Vendor: "wecom", Op: "kf/send_msg", To: "wmConformanceOut"}) {
				var req wire.SendMsgRequest
				if json.Unmarshal(rec.Data, &req) == nil && req.Text != nil && req.Text.Content == "您的包裹已发出" {
					return true
				}
			}
			return false
		},
	})
}

// ---- official vectors through the connector ----

func TestOfficialVectors(t *testing.T) {
	t.Parallel()
	// The official sample's corp (WeCom's too: the start check gets a token for it), token and
	// key, and a window wide enough for its 2014 timestamps.
	w := newWorld(t, func(c *wecom.Config) { c.CorpID = "wx5823bf96d3bd56c7" })
	w.conf["WECHATKF_CORP_ID"] = "wx5823bf96d3bd56c7"
	w.conf["WECHATKF_TOKEN"] = "QDG6eK"
	w.conf["WECHATKF_AES_KEY"] = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	w.conf["WECHATKF_SIGNATURE_WINDOW"] = "200000h"
	w.start(t, nil)

	// vectors.md §1.1: URL verification answers the bare plaintext.
	get := w.hooks.URL + wechatkf.CallbackPath + "?msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
	req, _ := http.NewRequest(http.MethodGet, get, nil)
	if resp := do(t, req); resp.Status != 200 || resp.Body != "1616140317555161061" {
		t.Fatalf("URL verification answered %d %q, want 200 1616140317555161061", resp.Status, resp.Body)
	}
	// The same with the "+" characters sent unencoded (decoded to spaces by a query parser).
	raw := strings.NewReplacer("%2B", "+", "%2F", "/", "%3D", "=").Replace(get)
	req, _ = http.NewRequest(http.MethodGet, raw, nil)
	if resp := do(t, req); resp.Status != 200 || resp.Body != "1616140317555161061" {
		t.Fatalf("URL verification with raw + answered %d %q", resp.Status, resp.Body)
	}
	// vectors.md §1.2: an authentic app text message (not a kf notice): acknowledged, nothing published.
	body := `<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>`
	post := w.hooks.URL + wechatkf.CallbackPath + "?msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149"
	req, _ = http.NewRequest(http.MethodPost, post, strings.NewReader(body))
	if resp := do(t, req); resp.Status != 200 || resp.Body != "success" {
		t.Fatalf("official POST answered %d %q", resp.Status, resp.Body)
	}
	// One nonce digit off: the official signature no longer matches.
	req, _ = http.NewRequest(http.MethodPost, strings.Replace(post, "nonce=1372623149", "nonce=1372623148", 1), strings.NewReader(body))
	if resp := do(t, req); resp.Status != 401 {
		t.Fatalf("tampered official POST answered %d %s", resp.Status, resp.Body)
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("%d events published", n)
	}
}

// ---- bad input ----

// signed builds a callback POST of body with a correct signature over encrypt at ts.
func signedPost(t *testing.T, base string, c *wire.Crypto, ts string, encrypt string, body []byte) *http.Request {
	t.Helper()
	q := url.Values{"msg_signature": {c.Sign(ts, "12345", encrypt)}, "timestamp": {ts}, "nonce": {"12345"}}
	req, err := http.NewRequest(http.MethodPost, base+wechatkf.CallbackPath+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestBadInputRejectedWithNothingPublished(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, nil)
	// A message is waiting: a request that got through would publish it.
	w.sim.Deliver(wire.Message{ExternalUserID: "wmWaiting", MsgType: "text", Text: &wire.Text{Content: "waiting"}})
	good, _ := wire.NewCrypto(cbToken, aesKey, corpID)
	otherKey, _ := wire.NewCrypto(cbToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", corpID)
	otherCorp, _ := wire.NewCrypto(cbToken, aesKey, "wwSomeoneElse")
	now := strconv.FormatInt(time.Now().Unix(), 10)
	notice := wire.MarshalKfNotice(corpID, time.Now().Unix(), "ENCtoken", w.sim.Config().OpenKfID)
	seal := func(c *wire.Crypto, plain []byte) string {
		enc, err := c.Encrypt(plain)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	envelope := func(enc string) []byte { return wire.Envelope{ToUserName: corpID, Encrypt: enc}.Marshal() }
	valid := seal(good, notice)
	truncated := valid[:len(valid)-24]
	wrongKey := seal(otherKey, notice)
	wrongCorp := seal(otherCorp, notice)
	notXML := seal(good, []byte("this is not xml"))
	badKf := seal(good, wire.MarshalKfNotice(corpID, 1, "tok", "../../etc"))
	stale := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)

	for name, tc := range map[string]struct {
		req  *http.Request
		want int
	}{
		"wrong signature": {func() *http.Request {
			r := signedPost(t, w.hooks.URL, good, now, valid, envelope(valid))
			q := r.URL.Query()
			q.Set("msg_signature", strings.Repeat("ab", 20))
			r.URL.RawQuery = q.Encode()
			return r
		}(), 401},
		"signed with another token": {signedPost(t, w.hooks.URL, mustCrypto(t, "OtherToken", aesKey, corpID), now, valid, envelope(valid)), 401},
		"no signature": {func() *http.Request {
			r := signedPost(t, w.hooks.URL, good, now, valid, envelope(valid))
			q := r.URL.Query()
			q.Del("msg_signature")
			r.URL.RawQuery = q.Encode()
			return r
		}(), 401},
		"stale timestamp":      {signedPost(t, w.hooks.URL, good, stale, valid, envelope(valid)), 401},
		"garbage timestamp":    {signedPost(t, w.hooks.URL, good, "yesterday", valid, envelope(valid)), 400},
		"truncated ciphertext": {signedPost(t, w.hooks.URL, good, now, truncated, envelope(truncated)), 400},
		"wrong-key ciphertext": {signedPost(t, w.hooks.URL, good, now, wrongKey, envelope(wrongKey)), 400},
		"wrong receive id":     {signedPost(t, w.hooks.URL, good, now, wrongCorp, envelope(wrongCorp)), 401},
		"malformed XML body":   {signedPost(t, w.hooks.URL, good, now, valid, []byte("<xml><Encrypt>"+valid)), 400},
		"JSON body":            {signedPost(t, w.hooks.URL, good, now, valid, []byte(`{"Encrypt":"`+valid+`"}`)), 400},
		"malformed inner XML":  {signedPost(t, w.hooks.URL, good, now, notXML, envelope(notXML)), 400},
		"bad OpenKfId":         {signedPost(t, w.hooks.URL, good, now, badKf, envelope(badKf)), 400},
		"10 MB body": {signedPost(t, w.hooks.URL, good, now, valid,
			append(append([]byte("<xml><Junk>"), bytes.Repeat([]byte("a"), 10<<20)...), "</Junk></xml>"...)), 413},
		"GET without echostr": {func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, w.hooks.URL+wechatkf.CallbackPath+"?timestamp="+now, nil)
			return r
		}(), 400},
		"GET wrong signature": {func() *http.Request {
			q := url.Values{"msg_signature": {strings.Repeat("0", 40)}, "timestamp": {now}, "nonce": {"1"}, "echostr": {valid}}
			r, _ := http.NewRequest(http.MethodGet, w.hooks.URL+wechatkf.CallbackPath+"?"+q.Encode(), nil)
			return r
		}(), 401},
	} {
		resp := do(t, tc.req)
		if resp.Status != tc.want {
			t.Errorf("%s: answered %d %s, want %d", name, resp.Status, resp.Body, tc.want)
			continue
		}
		var body struct{ Error, Reason string }
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Reason == "" {
			t.Errorf("%s: %d without a reason: %s", name, resp.Status, resp.Body)
		}
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 0 {
		t.Fatalf("bad input published %d events", n)
	}
	if s := stats(w, "kf/sync_msg"); s.Calls != 0 {
		t.Fatalf("bad input made %d sync_msg calls", s.Calls)
	}
	// The authentic callback still works afterwards.
	if resp := do(t, signedPost(t, w.hooks.URL, good, now, valid, envelope(valid))); resp.Status != 200 {
		t.Fatalf("authentic callback answered %d %s", resp.Status, resp.Body)
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != 1 {
		t.Fatalf("authentic callback published %d events, want 1", n)
	}
}

func mustCrypto(t *testing.T, token, key, corp string) *wire.Crypto {
	t.Helper()
	c, err := wire.NewCrypto(token, key, corp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ---- normalisation of every message type ----

func TestEveryMessageTypeNormalised(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, nil)
	kf := w.sim.Config().OpenKfID
	u := "wmEveryType0001"
	signed := wire.SignScenePhone([]byte(sceneKey), "+8613800138000")
	forged := "p.+8613900139000." + signed[len(signed)-wire.SceneMACLen:]
	deliver := func(m wire.Message) string { return w.sim.Deliver(m).MsgID }
	ids := map[string]string{
		"enter signed": deliver(wire.Message{MsgType: "event", Event: &wire.Event{EventType: "enter_session", ExternalUserID: u, Scene: "app", SceneParam: signed, WelcomeCode: "wc"}}),
		"text":         deliver(wire.Message{ExternalUserID: u, MsgType: "text", Text: &wire.Text{Content: "我的订单 2024061800123 什么时候发货？", MenuID: "101"}}),
		"image":        deliver(wire.Message{ExternalUserID: u, MsgType: "image", Image: &wire.Media{MediaID: "MEDIA_IMG"}}),
		"voice":        deliver(wire.Message{ExternalUserID: u, MsgType: "voice", Voice: &wire.Media{MediaID: "MEDIA_VOICE"}}),
		"video":        deliver(wire.Message{ExternalUserID: u, MsgType: "video", Video: &wire.Media{MediaID: "MEDIA_VIDEO"}}),
		"file":         deliver(wire.Message{ExternalUserID: u, MsgType: "file", File: &wire.Media{MediaID: "MEDIA_FILE"}}),
		"location": deliver(wire.Message{ExternalUserID: u, MsgType: "location", Location: &wire.Location{Latitude: 23.106021881103501,
			Longitude: 113.320503234863, Name: "广州国际媒体港", Address: "广东省广州市海珠区滨江东路"}}),
		"link":        deliver(wire.Message{ExternalUserID: u, MsgType: "link", Link: &wire.Link{Title: "订单", Desc: "详情", URL: "https://shop.example.com/o/1", PicURL: "https://shop.example.com/p.png"}}),
		"miniprogram": deliver(wire.Message{ExternalUserID: u, MsgType: "miniprogram", MiniProgram: &wire.MiniProgram{AppID: "wx8bd80126147dfAAA", Title: "商城", ThumbMediaID: "MEDIA_THUMB", PagePath: "pages/index"}}),
		"card":        deliver(wire.Message{ExternalUserID: u, MsgType: "business_card", BusinessCard: &wire.BusinessCard{UserID: "zhangsan"}}),
		"enter unsigned": deliver(wire.Message{MsgType: "event", Event: &wire.Event{EventType: "enter_session", ExternalUserID: "wmUnsigned", Scene: "ad",
			SceneParam: "p.+8613700137000"}}),
		"enter forged":  deliver(wire.Message{MsgType: "event", Event: &wire.Event{EventType: "enter_session", ExternalUserID: "wmForged", SceneParam: forged}}),
		"send fail":     deliver(wire.Message{MsgType: "event", Event: &wire.Event{EventType: "msg_send_fail", ExternalUserID: u, FailMsgID: "omniabc", FailType: 4}}),
		"servicer text": deliver(wire.Message{ExternalUserID: u, Origin: wire.OriginServicer, ServicerUserID: "zhangsan", MsgType: "text", Text: &wire.Text{Content: "您好，我是客服小张"}}),
		"empty text":    deliver(wire.Message{ExternalUserID: u, MsgType: "text", Text: &wire.Text{}}),
	}
	// No customer: skipped. Our own send echoed back: skipped.
	w.sim.Deliver(wire.Message{MsgType: "event", Event: &wire.Event{EventType: "servicer_status_change", ServicerUserID: "zhangsan", Status: 1}})
	w.sim.Deliver(wire.Message{MsgID: "omni0123456789abcdef0123456789ab", ExternalUserID: u, Origin: wire.OriginServicer, MsgType: "text", Text: &wire.Text{Content: "echo"}})
	sent := time.Now().Add(-time.Minute).Unix()
	unknown := `{"msgid":"from_msgid_unknown_1","open_kfid":"` + kf + `","external_userid":"` + u + `","send_time":` + strconv.FormatInt(sent, 10) + `,"origin":3,"msgtype":"channels_shop_product","channels_shop_product":{"product_id":"10000","head_img":"https://example.com/i.png","title":"商品","sales_price":"100"}}`
	badShape := `{"msgid":"from_msgid_badshape","open_kfid":"` + kf + `","external_userid":"` + u + `","send_time":` + strconv.FormatInt(sent+1, 10) + `,"origin":3,"msgtype":"text","text":{"content":42}}`
	for _, item := range []string{unknown, badShape} {
		if err := w.sim.DeliverJSON(json.RawMessage(item)); err != nil {
			t.Fatal(err)
		}
	}
	if resp := do(t, w.callback(t)); resp.Status != 200 || resp.Body != "success" {
		t.Fatalf("callback answered %d %s", resp.Status, resp.Body)
	}
	// Every event is on the bus when the callback answers: no waiting.
	msgs := w.messages(t)
	byID := map[string]received{}
	for _, e := range msgs {
		if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
			t.Errorf("%s is not schema-valid: %v", e.ID(), err)
		}
		r := decodeReceived(t, e)
		if e.ID() != "wechatkf:"+r.ChannelMessageID || e.Source() != "/connectors/wechatkf" {
			t.Errorf("event id %s / source %s for msgid %s", e.ID(), e.Source(), r.ChannelMessageID)
		}
		if event.PartitionKey(e) != "wecom_external_userid:"+r.From["value"] || r.From["kind"] != "wecom_external_userid" {
			t.Errorf("%s: partitionkey %s, from %v", e.ID(), event.PartitionKey(e), r.From)
		}
		byID[r.ChannelMessageID] = r
	}
	if len(msgs) != len(ids)-1+2 { // every delivered item but the servicer's, plus the two raw ones
		t.Fatalf("%d message events, want %d", len(msgs), len(ids)+1)
	}
	check := func(name string, want map[string]any) {
		t.Helper()
		r, ok := byID[ids[name]]
		if !ok {
			t.Errorf("%s: not published", name)
			return
		}
		got, _ := json.Marshal(r.Message)
		exp, _ := json.Marshal(want)
		if string(got) != string(exp) {
			t.Errorf("%s: message %s, want %s", name, got, exp)
		}
		if r.Account != kf {
			t.Errorf("%s: account %q", name, r.Account)
		}
	}
	check("text", map[string]any{"type": "text", "text": "我的订单 2024061800123 什么时候发货？"})
	check("image", map[string]any{"type": "image", "media_id": "MEDIA_IMG"})
	check("voice", map[string]any{"type": "voice", "media_id": "MEDIA_VOICE"})
	check("video", map[string]any{"type": "video", "media_id": "MEDIA_VIDEO"})
	check("file", map[string]any{"type": "file", "media_id": "MEDIA_FILE"})
	check("location", map[string]any{"type": "location", "location": map[string]any{"latitude": 23.106021881103501,
		"longitude": 113.320503234863, "name": "广州国际媒体港", "address": "广东省广州市海珠区滨江东路"}})
	check("link", map[string]any{"type": "link", "link": map[string]any{"url": "https://shop.example.com/o/1", "title": "订单", "description": "详情"}})
	check("miniprogram", map[string]any{"type": "miniprogram", "miniprogram": map[string]any{"appid": "wx8bd80126147dfAAA",
		"pagepath": "pages/index", "title": "商城", "thumb_media_id": "MEDIA_THUMB"}})
	for _, name := range []string{"card", "empty text"} {
		if r := byID[ids[name]]; r.Message["type"] != "unsupported" || r.Message["raw"] == nil {
			t.Errorf("%s: %v, want unsupported with raw", name, r.Message)
		}
	}
	for _, id := range []string{"from_msgid_unknown_1", "from_msgid_badshape"} {
		r, ok := byID[id]
		if !ok || r.Message["type"] != "unsupported" {
			t.Errorf("%s: %v, want unsupported", id, r.Message)
			continue
		}
		raw, _ := json.Marshal(r.Message["raw"])
		if !strings.Contains(string(raw), `"msgid":"`+id+`"`) {
			t.Errorf("%s: raw %s is not the vendor item", id, raw)
		}
	}
	if r := byID["from_msgid_unknown_1"]; !r.SentAt.Equal(time.Unix(sent, 0)) {
		t.Errorf("unknown type sent_at %s", r.SentAt)
	}
	// enter_session: the signed scene_param becomes a phone identity (which the bus seals), its
	// phone masked in the detail; the others stay data.
	enter := byID[ids["enter signed"]]
	ev, _ := enter.Message["event"].(map[string]any)
	detail, _ := ev["detail"].(map[string]any)
	if enter.Message["type"] != "event" || ev["name"] != "enter_session" || detail["scene_param"] != strings.Replace(signed, "+8613800138000", "+86******8000", 1) || detail["welcome_code"] != "wc" {
		t.Errorf("enter_session = %v", enter.Message)
	}
	if len(enter.Identities) != 1 || enter.Identities[0]["kind"] != "phone" || enter.Identities[0]["value"] != "+8613800138000" {
		t.Errorf("signed scene_param identities = %v", enter.Identities)
	}
	for _, name := range []string{"enter unsigned", "enter forged"} {
		r := byID[ids[name]]
		ev, _ := r.Message["event"].(map[string]any)
		detail, _ := ev["detail"].(map[string]any)
		if len(r.Identities) != 0 || detail["scene_param"] == nil || detail["scene_param"] == "" {
			t.Errorf("%s: identities %v, detail %v: want the scene_param kept as data only", name, r.Identities, detail)
		}
	}
	if r := byID[ids["send fail"]]; r.Message["type"] != "event" {
		t.Errorf("msg_send_fail = %v", r.Message)
	}
	// The servicer's reply from the WeCom client is a "sent" status with what was sent.
	sts := w.statuses(t)
	if len(sts) != 1 {
		t.Fatalf("%d status events, want 1 (the servicer's reply; the echo of our own send is skipped)", len(sts))
	}
	st := decodeStatus(t, sts[0])
	if sts[0].ID() != "wechatkf:status:"+ids["servicer text"] || st.Status != "sent" || st.To["value"] != u ||
		st.Message["text"] != "您好，我是客服小张" || st.VendorMessageID != ids["servicer text"] {
		t.Errorf("servicer status %s = %+v", sts[0].ID(), st)
	}
	// A second callback re-pulls nothing: the cursor advanced.
	if resp := do(t, w.callback(t)); resp.Status != 200 {
		t.Fatalf("second callback %d", resp.Status)
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n != uint64(len(msgs)+1) {
		t.Fatalf("second callback changed the stream to %d events", n)
	}
}

// ---- paging, background drain, restarts ----

func TestPagesBeyondTheCallbackAreDrainedInTheBackground(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, map[string]string{"WECHATKF_SYNC_LIMIT": "3", "WECHATKF_CALLBACK_BUDGET": "1ms"})
	for i := range 20 {
		w.sim.Deliver(wire.Message{ExternalUserID: fmt.Sprintf("wmPage%02d", i%4), MsgType: "text", Text: &wire.Text{Content: fmt.Sprintf("m%d", i)}})
	}
	if resp := do(t, w.callback(t)); resp.Status != 200 {
		t.Fatalf("callback %d %s", resp.Status, resp.Body)
	}
	if n := w.bus.StoredCount(t, bus.StreamIn, ">"); n < 3 {
		t.Fatalf("callback answered before its first page was stored (%d events)", n)
	}
	msgs := w.waitMessages(t, 20)
	seen := map[string]bool{}
	for _, e := range msgs {
		if seen[e.ID()] {
			t.Fatalf("%s stored twice", e.ID())
		}
		seen[e.ID()] = true
	}
	if len(msgs) != 20 {
		t.Fatalf("%d events, want 20", len(msgs))
	}
	if calls := stats(w, "kf/sync_msg").Calls; calls < 7 {
		t.Fatalf("20 messages at 3 a page took %d sync_msg calls", calls)
	}
}

func cursorOf(t *testing.T, w *world, kf string) (string, uint64) {
	t.Helper()
	kv, err := w.bus.Client.JetStream().KeyValue(context.Background(), "wechatkf")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "cursor."+kf)
	if err != nil {
		t.Fatal(err)
	}
	return string(e.Value()), e.Revision()
}

func TestRestartResumesWithNoLossAndNoDuplicates(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	kf := w.sim.Config().OpenKfID
	people := sim.Population(3, 42)
	ctx := context.Background()

	// Instance A takes 3 customers' first messages (each with its enter_session).
	stopA := w.start(t, nil)
	for _, c := range people {
		if err := w.sim.Write(ctx, c, "第一条"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.messages(t)); n != 6 {
		t.Fatalf("instance A stored %d events, want 6", n)
	}
	before, _ := cursorOf(t, w, kf)

	// A stops. The customers write on: WeCom's callbacks (with retries) find no connector,
	// and give up. The messages wait in sync_msg.
	stopA()
	for _, c := range people {
		if err := w.sim.Write(ctx, c, "在吗？"); err == nil {
			t.Fatal("a callback succeeded with no connector running")
		}
	}

	// Instance B starts on the same NATS: its catch-up pulls them with no callback at all.
	stopB := w.start(t, nil)
	msgs := w.waitMessages(t, 9)
	after, _ := cursorOf(t, w, kf)
	stopB()
	if after == before {
		t.Fatal("cursor did not advance")
	}

	// A crash between publishing a page and storing its cursor: put the cursor back, as if
	// the advance never happened. Instance C re-pulls the page; JetStream drops the duplicates.
	kv, _ := w.bus.Client.JetStream().KeyValue(ctx, "wechatkf")
	if _, err := kv.Put(ctx, "cursor."+kf, []byte(before)); err != nil {
		t.Fatal(err)
	}
	pulls := stats(w, "kf/sync_msg").Calls
	w.start(t, nil)
	bustest.WaitFor(t, 20*time.Second, "instance C's catch-up", func() bool {
		cur, _ := cursorOf(t, w, kf)
		return cur == after && stats(w, "kf/sync_msg").Calls > pulls
	})
	final := w.messages(t)
	if len(final) != len(msgs) || len(final) != 9 {
		t.Fatalf("after the re-pull: %d events (before %d), want 9", len(final), len(msgs))
	}
	seen := map[string]int{}
	texts := 0
	for _, e := range final {
		seen[e.ID()]++
		if r := decodeReceived(t, e); r.Message["type"] == "text" {
			texts++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s stored %d times", id, n)
		}
	}
	if texts != 6 {
		t.Fatalf("%d text messages, want 6 (2 per customer)", texts)
	}
}

// ---- sending ----

func textTo(uid string) (map[string]string, map[string]any) {
	return map[string]string{"kind": "wecom_external_userid", "value": uid}, map[string]any{"type": "text", "text": "您的包裹已发出，单号 SF1234567890"}
}

func TestSendPath(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, map[string]string{"WECHATKF_OPEN_KFID": "wkSandboxKf0000000000000000000001"})
	c := sim.Population(1, 5)[0]
	if err := w.sim.Write(context.Background(), c, "我的快递到哪了"); err != nil {
		t.Fatal(err)
	}
	to, msg := textTo(c.WeChatID)
	conv := "0190f2a4-3c1e-7b2d-9a8e-5f6a7b8c9d0e"
	cmd := w.sendCommand(t, to, msg, map[string]any{"conversation_id": conv})
	rec, err := w.env.WaitRecord(context.Background(), sim.Filter{Vendor: "wecom", Op: "kf/send_msg", To: c.WeChatID})
	if err != nil {
		t.Fatal(err)
	}
	var sent wire.SendMsgRequest
	if err := json.Unmarshal(rec.Data, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.ToUser != c.WeChatID || sent.MsgType != "text" || sent.Text.Content != msg["text"] ||
		sent.OpenKfID != w.sim.Config().OpenKfID || !strings.HasPrefix(sent.MsgID, "omni") || len(sent.MsgID) != 32 {
		t.Fatalf("sandbox recorded %s", rec.Data)
	}
	e, st := w.waitStatus(t, cmd.ID())
	if st.Status != "sent" || st.VendorMessageID != sent.MsgID || st.MessageID != cmd.ID() || st.To["value"] != c.WeChatID ||
		st.Message["text"] != msg["text"] || st.ConversationID != conv {
		t.Fatalf("status = %+v", st)
	}
	if event.CorrelationID(e) != cmd.ID() || event.PartitionKey(e) != "wecom_external_userid:"+c.WeChatID {
		t.Fatalf("status correlation %s partition %s", event.CorrelationID(e), event.PartitionKey(e))
	}
	// Every WeCom call — the token, the pull, the send — has exactly one audit record on
	// omni.audit.wechatkf (the send's names the command), with no token or secret in clear.
	calls := map[string]int64{"gettoken": stats(w, "gettoken").Calls, "sync_msg": stats(w, "kf/sync_msg").Calls, "send_msg": stats(w, "kf/send_msg").Calls}
	if calls["gettoken"] != 1 || calls["sync_msg"] < 1 || calls["send_msg"] != 1 {
		t.Fatalf("sandbox calls %v", calls)
	}
	want := calls["gettoken"] + calls["sync_msg"] + calls["send_msg"]
	bustest.WaitFor(t, 10*time.Second, "audit records", func() bool {
		return int64(w.bus.StoredCount(t, bus.StreamAudit, "omni.audit.wechatkf")) >= want
	})
	time.Sleep(100 * time.Millisecond) // a duplicate record would land now
	got := map[string]int64{}
	for _, a := range w.bus.Events(t, bus.StreamAudit, "omni.audit.wechatkf") {
		var r struct {
			Vendor, Op, Outcome string
			CorrelationID       string `json:"correlation_id"`
			Response            struct{ Text string }
		}
		if err := json.Unmarshal(a.Data(), &r); err != nil || a.Type() != "omni.audit.call.recorded" || r.Vendor != "wecom" || r.Outcome != "ok" {
			t.Fatalf("audit record %s %s: %v", a.Type(), a.Data(), err)
		}
		if r.Op == "send_msg" && r.CorrelationID != cmd.ID() {
			t.Fatalf("send_msg record names %q, not the command", r.CorrelationID)
		}
		if r.Op == "gettoken" && !strings.Contains(r.Response.Text, `"access_token":"[REDACTED]"`) {
			t.Fatalf("gettoken record with the access_token in clear: %s", a.Data())
		}
		if strings.Contains(string(a.Data()), secret) {
			t.Fatalf("audit record with the secret in clear: %s", a.Data())
		}
		op := r.Op
		if op == "check" {
			op = "gettoken" // the start check's gettoken, on a route of its own (its token is the one used)
		}
		got[op]++
	}
	if fmt.Sprint(got) != fmt.Sprint(calls) {
		t.Fatalf("audit records by op %v, calls %v", got, calls)
	}
}

func TestSendTokenExpiryRefreshedAndRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, map[string]string{"WECHATKF_OPEN_KFID": "wkSandboxKf0000000000000000000001"})
	c := sim.Population(1, 6)[0]
	if err := w.sim.Write(context.Background(), c, "hi"); err != nil {
		t.Fatal(err)
	}
	to, msg := textTo(c.WeChatID)
	first := w.sendCommand(t, to, msg, nil)
	w.waitStatus(t, first.ID())
	tokens := stats(w, "gettoken").Calls

	// The access_token expires before its time (WeCom answers 42001): one refresh, one retry.
	w.sim.ExpireAccessTokens()
	second := w.sendCommand(t, to, msg, nil)
	if _, st := w.waitStatus(t, second.ID()); st.Status != "sent" {
		t.Fatalf("after a 42001: %+v", st)
	}
	if got := stats(w, "gettoken").Calls; got != tokens+1 {
		t.Fatalf("gettoken called %d more times, want 1", got-tokens)
	}
	if n := len(w.env.Records(sim.Filter{Op: "kf/send_msg"})); n != 2 {
		t.Fatalf("%d sends recorded, want 2", n)
	}

	// The sandbox injects 42001 on every send for a while: each delivery refreshes and retries
	// once, fails, and the bus redelivers; once the fault clears the send goes through.
	if err := w.env.SetFault("wecom kf/send_msg", sim.Fault{ErrorRatio: 1, Code: "42001"}); err != nil {
		t.Fatal(err)
	}
	calls, tokens := stats(w, "kf/send_msg").Calls, stats(w, "gettoken").Calls
	third := w.sendCommand(t, to, msg, nil)
	bustest.WaitFor(t, 20*time.Second, "a refresh and a retry", func() bool {
		return stats(w, "kf/send_msg").Calls >= calls+2 && stats(w, "gettoken").Calls > tokens
	})
	if n := w.bus.StoredCount(t, bus.StreamIn, wechatkf.SubjectStatus+".>"); n != 2 {
		t.Fatalf("a status was published while every send failed (%d statuses)", n)
	}
	if err := w.env.SetFault("wecom kf/send_msg", sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	if _, st := w.waitStatus(t, third.ID()); st.Status != "sent" {
		t.Fatalf("after the fault cleared: %+v", st)
	}
	if n := len(w.env.Records(sim.Filter{Op: "kf/send_msg"})); n != 3 {
		t.Fatalf("%d sends recorded, want 3", n)
	}
}

func TestSyncTokenExpiryRefreshedAndRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, nil)
	c := sim.Population(1, 8)[0]
	if err := w.sim.Write(context.Background(), c, "one"); err != nil {
		t.Fatal(err)
	}
	w.sim.ExpireAccessTokens()
	if err := w.sim.Write(context.Background(), c, "two"); err != nil {
		t.Fatalf("callback after the token expired: %v", err)
	}
	if n := len(w.messages(t)); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
	if got := stats(w, "gettoken").Calls; got != 2 {
		t.Fatalf("gettoken called %d times, want 2", got)
	}
}

func TestSendFailuresAndTransientErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, map[string]string{"WECHATKF_OPEN_KFID": "wkSandboxKf0000000000000000000001"})
	people := sim.Population(2, 11)
	for _, c := range people {
		if err := w.sim.Write(context.Background(), c, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	// 95018: the session was closed: a failed status, nothing sent.
	w.sim.CloseSession(people[0].WeChatID)
	to, msg := textTo(people[0].WeChatID)
	cmd := w.sendCommand(t, to, msg, nil)
	if _, st := w.waitStatus(t, cmd.ID()); st.Status != "failed" || st.ErrorCode != "95018" || !strings.Contains(st.Error, "session status invalid") {
		t.Fatalf("closed session: %+v", st)
	}
	// A recipient this channel cannot address, and a message kf/send_msg cannot carry.
	cmd = w.sendCommand(t, map[string]string{"kind": "phone", "value": "+8613800138000"}, msg, nil)
	if _, st := w.waitStatus(t, cmd.ID()); st.Status != "failed" || st.ErrorCode != "invalid_recipient" {
		t.Fatalf("phone recipient: %+v", st)
	}
	to1, _ := textTo(people[1].WeChatID)
	cmd = w.sendCommand(t, to1, map[string]any{"type": "image", "media_url": "https://example.com/a.png"}, nil)
	if _, st := w.waitStatus(t, cmd.ID()); st.Status != "failed" || st.ErrorCode != "unsupported_message" {
		t.Fatalf("image by URL: %+v", st)
	}
	// -1 system busy and HTTP 503 are transient: the command is redelivered, no status until
	// the vendor recovers, then "sent". (45009's 30 s wait: TestSendOutcomes.)
	for _, code := range []string{"", "http_503"} {
		if err := w.env.SetFault("wecom kf/send_msg", sim.Fault{ErrorRatio: 1, Code: code}); err != nil {
			t.Fatal(err)
		}
		// Start from a settled consumer: the previous command acked, nothing being redelivered.
		bustest.WaitFor(t, 10*time.Second, "a settled consumer", func() bool { r, p := redeliveries(t, w); return r == 0 && p == 0 })
		cmd = w.sendCommand(t, to1, msg, nil)
		bustest.WaitFor(t, 20*time.Second, "a redelivery", func() bool { r, _ := redeliveries(t, w); return r > 0 })
		for _, e := range w.statuses(t) {
			if e.ID() == "wechatkf:status:"+cmd.ID() {
				t.Fatalf("fault %q: a status was published for a transient failure", code)
			}
		}
		if err := w.env.SetFault("wecom kf/send_msg", sim.Fault{}); err != nil {
			t.Fatal(err)
		}
		if _, st := w.waitStatus(t, cmd.ID()); st.Status != "sent" {
			t.Fatalf("fault %q then recovery: %+v", code, st)
		}
	}
	if n := len(w.env.Records(sim.Filter{Op: "kf/send_msg", To: people[0].WeChatID})); n != 0 {
		t.Fatalf("%d sends recorded to the closed session", n)
	}
}

func TestWrongSecretIsTransientNotAFailedSend(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.start(t, map[string]string{"WECHATKF_OPEN_KFID": "wkSandboxKf0000000000000000000001"})
	// The secret was right at start (check_test.go: a wrong one stops the start); it is reset
	// in the console later: the token expires and gettoken answers 40001 from then on.
	if err := w.env.SetFault("wecom "+wecom.OpGetToken, sim.Fault{ErrorRatio: 1, Code: strconv.Itoa(wire.CodeInvalidSecret)}); err != nil {
		t.Fatal(err)
	}
	w.sim.ExpireAccessTokens()
	c := sim.Population(1, 12)[0]
	w.sim.Deliver(wire.Message{ExternalUserID: c.WeChatID, MsgType: "text", Text: &wire.Text{Content: "hi"}})
	// Inbound: gettoken answers 40001, the pull fails, WeCom is told to retry.
	if resp := do(t, w.callback(t)); resp.Status != http.StatusServiceUnavailable || !strings.Contains(resp.Body, "40001") {
		t.Fatalf("callback with a wrong secret answered %d %s", resp.Status, resp.Body)
	}
	// Outbound: not the message's fault: redelivered (gettoken asked again), no failed status.
	to, msg := textTo(c.WeChatID)
	cmd := w.sendCommand(t, to, msg, nil)
	bustest.WaitFor(t, 20*time.Second, "a redelivery", func() bool { r, _ := redeliveries(t, w); return r > 0 })
	for _, e := range w.statuses(t) {
		if e.ID() == "wechatkf:status:"+cmd.ID() {
			t.Fatalf("a configuration error became a status: %s", e.Data())
		}
	}
	if n := len(w.env.Records(sim.Filter{Op: "kf/send_msg"})); n != 0 {
		t.Fatalf("%d sends recorded", n)
	}
}

// redeliveries reports the outbound consumer's commands now being redelivered and those not
// yet acknowledged.
func redeliveries(t *testing.T, w *world) (redelivered, pending int) {
	t.Helper()
	cons, err := w.bus.Client.JetStream().Consumer(context.Background(), bus.StreamOut, "wechatkf-message-send")
	if err != nil {
		return -1, -1
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		return -1, -1
	}
	return info.NumRedelivered, info.NumAckPending
}

// ---- fuzzing the callback endpoint ----

// FuzzCallback drives the running connector with arbitrary callback bodies and queries, and
// with arbitrary plaintexts that are encrypted and signed correctly. It must never answer 5xx
// or 2xx to what is not authentic, and never publish anything schema-invalid (pkg/bus refuses).
func FuzzCallback(f *testing.F) {
	w := newFuzzWorld(f)
	good, _ := wire.NewCrypto(cbToken, aesKey, corpID)
	f.Add([]byte(wire.Envelope{ToUserName: corpID, Encrypt: "abc"}.Marshal()), []byte("<xml><MsgType>text</MsgType><Content>hi</Content></xml>"), "1")
	f.Add([]byte("<xml><Encrypt><![CDATA[x]]></Encrypt></xml>"), wire.MarshalKfNotice(corpID, 1, "t", "wk_1"), "12")
	f.Add([]byte("not xml"), []byte("<xml><MsgType>event</MsgType><Event>kf_msg_or_event</Event><OpenKfId>bad id</OpenKfId></xml>"), "")
	f.Add([]byte{}, []byte{}, "nonce")
	f.Fuzz(func(t *testing.T, body, plain []byte, nonce string) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		// Arbitrary bytes under an arbitrary signature: never accepted.
		q := url.Values{"msg_signature": {strings.Repeat("1", 40)}, "timestamp": {ts}, "nonce": {nonce}}
		req, _ := http.NewRequest(http.MethodPost, w.base+wechatkf.CallbackPath+"?"+q.Encode(), bytes.NewReader(body))
		if resp := do(t, req); resp.Status != 400 && resp.Status != 401 {
			t.Fatalf("unsigned body answered %d %s", resp.Status, resp.Body)
		}
		// Arbitrary plaintext, correctly encrypted and signed: 200 or 400; 503 only when it is a
		// kf notice whose pull WeCom refuses (an OpenKfId the sandbox does not know).
		enc, err := good.Encrypt(plain)
		if err != nil {
			t.Fatal(err)
		}
		q = url.Values{"msg_signature": {good.Sign(ts, nonce, enc)}, "timestamp": {ts}, "nonce": {nonce}}
		req, _ = http.NewRequest(http.MethodPost, w.base+wechatkf.CallbackPath+"?"+q.Encode(),
			bytes.NewReader(wire.Envelope{ToUserName: corpID, Encrypt: enc}.Marshal()))
		resp := do(t, req)
		vendorRefused := resp.Status == 503 && strings.Contains(resp.Body, "wecom kf/sync_msg: wecom errcode")
		if resp.Status != 200 && resp.Status != 400 && !vendorRefused {
			t.Fatalf("signed plaintext %q answered %d %s", plain, resp.Status, resp.Body)
		}
	})
}

type fuzzWorld struct{ base string }

// newFuzzWorld starts one connector (NATS, sandbox) for the whole fuzz run.
func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	b := bustest.New(f, bus.WithLogger(quiet()))
	mux := http.NewServeMux()
	sandbox := httptest.NewServer(mux)
	f.Cleanup(sandbox.Close)
	env := sim.NewEnv(mux, "http://127.0.0.1:0/hooks", nil, 0, slog.New(slog.DiscardHandler))
	if _, err := wecom.New(env, wecom.Config{CorpID: corpID, Secret: secret, Token: cbToken, EncodingAESKey: aesKey}); err != nil {
		f.Fatal(err)
	}
	hooks := http.NewServeMux()
	srv := httptest.NewServer(hooks)
	f.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	conf := map[string]string{"WECHATKF_CORP_ID": corpID, "WECHATKF_SECRET": secret, "WECHATKF_TOKEN": cbToken,
		"WECHATKF_AES_KEY": aesKey, "WECHATKF_API_BASE": sandbox.URL + "/sandbox/wecom"}
	go func() {
		done <- wechatkf.Service().Run(ctx, serviceDeps(b.Client, hooks, conf))
	}()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("connector Run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := httptest.NewRecorder()
		hooks.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, wechatkf.CallbackPath, strings.NewReader("")))
		if rec.Code != http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			f.Fatal("connector never mounted its callback")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &fuzzWorld{base: srv.URL}
}
