package wecom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/wecom"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/wecom"
)

const (
	corpID   = "wwSandboxCorp0001"
	secret   = "kf-secret"
	token    = "QDG6eK"
	aesKey   = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	sceneKey = "scene-key"
)

type bundle struct {
	sim  *wecom.Sim
	env  *sim.Env
	base string // http://.../sandbox/wecom
	hook *hookRecorder
}

// hookRecorder is a fake connector endpoint: it verifies and decrypts callbacks like the
// connector does and answers with the next queued status (default 200).
type hookRecorder struct {
	mu       sync.Mutex
	crypto   *wire.Crypto
	notices  []wire.Callback
	statuses []int
	calls    atomic.Int64
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	q := r.URL.Query()
	env, err := wire.ParseEnvelope(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg, err := h.crypto.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), env.Encrypt)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	cb, err := wire.ParseCallback(msg)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	status := 200
	if len(h.statuses) > 0 {
		status, h.statuses = h.statuses[0], h.statuses[1:]
	}
	if status == 200 {
		h.notices = append(h.notices, cb)
	}
	h.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write([]byte("success"))
}

func (h *hookRecorder) last(t *testing.T) wire.Callback {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.notices) == 0 {
		t.Fatal("no callback received")
	}
	return h.notices[len(h.notices)-1]
}

func setup(t *testing.T, mod func(*wecom.Config)) *bundle {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := wire.NewCrypto(token, aesKey, corpID)
	if err != nil {
		t.Fatal(err)
	}
	hook := &hookRecorder{crypto: c}
	mux.Handle("/hooks/wechatkf/callback", hook)
	env := sim.NewEnv(mux, srv.URL+"/hooks", nil, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := wecom.Config{CorpID: corpID, Secret: secret, Token: token, EncodingAESKey: aesKey, SceneKey: sceneKey,
		RetryDelay: time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := wecom.New(env, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{sim: s, env: env, base: srv.URL + "/sandbox/wecom", hook: hook}
}

type answer struct {
	Status int
	wire.Response
	AccessToken string            `json:"access_token"`
	ExpiresIn   int               `json:"expires_in"`
	NextCursor  string            `json:"next_cursor"`
	HasMore     int               `json:"has_more"`
	MsgList     []json.RawMessage `json:"msg_list"`
	MsgID       string            `json:"msgid"`
}

func call(t *testing.T, method, u string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, u, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	raw, _ := io.ReadAll(resp.Body)
	a.Status = resp.StatusCode
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("%s %s: answer %s is not JSON: %v", method, u, raw, err)
		}
	}
	return a
}

func (b *bundle) token(t *testing.T) string {
	t.Helper()
	a := call(t, "GET", b.base+"/cgi-bin/gettoken?corpid="+corpID+"&corpsecret="+secret, nil)
	if a.ErrCode != 0 || a.AccessToken == "" {
		t.Fatalf("gettoken: %+v", a)
	}
	return a.AccessToken
}

func TestGetToken(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for q, want := range map[string]int{
		"":                                       wire.CodeMissingCorpID,
		"corpid=other&corpsecret=" + secret:      wire.CodeInvalidCorpID,
		"corpid=" + corpID:                       wire.CodeMissingSecret,
		"corpid=" + corpID + "&corpsecret=wrong": wire.CodeInvalidSecret,
		"corpid=" + corpID + "&corpsecret=" + secret: 0,
	} {
		a := call(t, "GET", b.base+"/cgi-bin/gettoken?"+q, nil)
		if a.Status != 200 || a.ErrCode != want {
			t.Errorf("gettoken?%s = %d %+v, want errcode %d", q, a.Status, a.Response, want)
		}
		if want != 0 && !strings.Contains(a.ErrMsg, "more info at https://open.work.weixin.qq.com/devtool/query?e=") {
			t.Errorf("errmsg %q lacks WeCom's hint", a.ErrMsg)
		}
	}
	fresh := setup(t, nil)
	first := call(t, "GET", fresh.base+"/cgi-bin/gettoken?corpid="+corpID+"&corpsecret="+secret, nil)
	if first.ExpiresIn != 7200 {
		t.Errorf("expires_in = %d, want 7200", first.ExpiresIn)
	}
	if again := fresh.token(t); again != first.AccessToken {
		t.Errorf("a second gettoken within the lifetime issued another token")
	}
	fresh.sim.ExpireAccessTokens()
	if next := fresh.token(t); next == first.AccessToken {
		t.Error("an expired token was issued again")
	}
}

func TestSyncMsgPagingAndCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.token(t)
	u := b.base + "/cgi-bin/kf/sync_msg?access_token=" + tok
	for i := range 5 {
		b.sim.Deliver(wire.Message{ExternalUserID: "wmCustomer1", MsgType: "text", Text: &wire.Text{Content: string(rune('a' + i))}})
	}
	var ids []string
	cursor, pages := "", 0
	for {
		a := call(t, "POST", u, wire.SyncMsgRequest{Cursor: cursor, Limit: 2, OpenKfID: b.sim.Config().OpenKfID})
		if a.ErrCode != 0 {
			t.Fatalf("sync_msg: %+v", a.Response)
		}
		pages++
		for _, raw := range a.MsgList {
			m, err := wire.DecodeMessage(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Origin != wire.OriginCustomer || m.OpenKfID == "" || m.SendTime == 0 || !strings.HasPrefix(m.MsgID, "from_msgid_") {
				t.Errorf("item %s lacks WeCom's fields", raw)
			}
			ids = append(ids, m.MsgID)
		}
		if len(a.NextCursor) != 19 {
			t.Errorf("next_cursor %q", a.NextCursor)
		}
		if a.HasMore == 0 {
			cursor = a.NextCursor
			break
		}
		if pages == 1 {
			// Re-pulling from the same cursor gives the same page (the cursor advances nothing).
			again := call(t, "POST", u, wire.SyncMsgRequest{Cursor: cursor, Limit: 2})
			if len(again.MsgList) != 2 || string(again.MsgList[0]) != string(a.MsgList[0]) {
				t.Fatalf("re-pull differs")
			}
		}
		cursor = a.NextCursor
	}
	if pages != 3 || len(ids) != 5 {
		t.Fatalf("%d pages with %d messages, want 3 pages, 5 messages", pages, len(ids))
	}
	// Nothing new: same cursor back, empty list, no more.
	a := call(t, "POST", u, wire.SyncMsgRequest{Cursor: cursor})
	if a.ErrCode != 0 || len(a.MsgList) != 0 || a.HasMore != 0 || a.NextCursor != cursor {
		t.Fatalf("caught-up pull = %+v", a)
	}
	// A forged cursor is invalid; one from an earlier sandbox process starts at the oldest.
	if a := call(t, "POST", u, wire.SyncMsgRequest{Cursor: "AAAAAAAAAAAAAAAAAAA"}); a.ErrCode != wire.CodeInvalidParameter {
		t.Errorf("forged cursor: %+v", a.Response)
	}
	other := setup(t, nil)
	other.sim.Deliver(wire.Message{ExternalUserID: "wm2", MsgType: "text", Text: &wire.Text{Content: "x"}})
	a = call(t, "POST", other.base+"/cgi-bin/kf/sync_msg?access_token="+other.token(t), wire.SyncMsgRequest{Cursor: cursor})
	if a.ErrCode != 0 || len(a.MsgList) != 1 {
		t.Errorf("cursor of another sandbox process: %+v", a)
	}
}

func TestSyncMsgErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.token(t)
	u := b.base + "/cgi-bin/kf/sync_msg?access_token="
	for name, tc := range map[string]struct {
		tok  string
		body any
		want int
	}{
		"no token":        {"", wire.SyncMsgRequest{}, wire.CodeMissingAccessToken},
		"bad token":       {"nope", wire.SyncMsgRequest{}, wire.CodeInvalidAccessToken},
		"not json":        {tok, "{", wire.CodeDataFormat},
		"empty body":      {tok, "", wire.CodeDataFormat},
		"other kf":        {tok, wire.SyncMsgRequest{OpenKfID: "wkOther"}, wire.CodeInvalidOpenKfID},
		"bad msg token":   {tok, wire.SyncMsgRequest{Token: "ENCnope"}, wire.CodeInvalidMsgToken},
		"negative limit":  {tok, wire.SyncMsgRequest{Limit: -1}, wire.CodeInvalidParameter},
		"long cursor":     {tok, wire.SyncMsgRequest{Cursor: strings.Repeat("a", 65)}, wire.CodeInvalidParameter},
		"ok without more": {tok, wire.SyncMsgRequest{}, 0},
	} {
		if a := call(t, "POST", u+tc.tok, tc.body); a.ErrCode != tc.want {
			t.Errorf("%s: errcode %d (%s), want %d", name, a.ErrCode, a.ErrMsg, tc.want)
		}
	}
	b.sim.ExpireAccessTokens()
	if a := call(t, "POST", u+tok, wire.SyncMsgRequest{}); a.ErrCode != wire.CodeAccessTokenExpired {
		t.Errorf("expired token: %+v", a.Response)
	}
}

func TestCustomerWriteDeliversSignedCallback(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := sim.Population(1, 7)[0]
	if err := b.sim.Write(context.Background(), c, "我的订单到哪了？"); err != nil {
		t.Fatal(err)
	}
	cb := b.hook.last(t)
	if !cb.IsKfNotice() || cb.OpenKfID != b.sim.Config().OpenKfID || cb.ToUserName != corpID || cb.Token == "" {
		t.Fatalf("callback = %+v", cb)
	}
	// The callback's Token works for sync_msg; the first contact is enter_session with the
	// signed phone, then the text.
	a := call(t, "POST", b.base+"/cgi-bin/kf/sync_msg?access_token="+b.token(t),
		wire.SyncMsgRequest{Token: cb.Token, OpenKfID: cb.OpenKfID})
	if a.ErrCode != 0 || len(a.MsgList) != 2 {
		t.Fatalf("sync_msg after Write: %+v", a)
	}
	ev, _ := wire.DecodeMessage(a.MsgList[0])
	if ev.MsgType != "event" || ev.Event.EventType != wire.EventEnterSession || ev.ExternalUserID != "" || ev.OpenKfID != "" {
		t.Fatalf("first item = %s", a.MsgList[0])
	}
	if phone, ok := wire.VerifyScenePhone([]byte(sceneKey), ev.Event.SceneParam); !ok || phone != c.Phone || ev.Event.ExternalUserID != c.WeChatID {
		t.Fatalf("enter_session scene_param %q does not carry %s", ev.Event.SceneParam, c.Phone)
	}
	txt, _ := wire.DecodeMessage(a.MsgList[1])
	if txt.Text == nil || txt.Text.Content != "我的订单到哪了？" || txt.ExternalUserID != c.WeChatID {
		t.Fatalf("second item = %s", a.MsgList[1])
	}
	// A second message: no second enter_session.
	if err := b.sim.Write(context.Background(), c, "在吗"); err != nil {
		t.Fatal(err)
	}
	if b.sim.Queued() != 3 {
		t.Fatalf("%d queued, want 3", b.sim.Queued())
	}
}

func TestCallbackRetriesLikeWeCom(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	c := sim.Population(1, 1)[0]
	b.hook.statuses = []int{503, 500}
	if err := b.sim.Write(context.Background(), c, "hi"); err != nil {
		t.Fatalf("Write with two failures then success: %v", err)
	}
	if n := b.hook.calls.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	b.hook.statuses = []int{500, 500, 500, 500, 500}
	if err := b.sim.Write(context.Background(), c, "hi again"); err == nil || !strings.Contains(err.Error(), "4 attempts") {
		t.Fatalf("Write against a failing connector = %v, want failure after 4 attempts", err)
	}
}

func send(t *testing.T, b *bundle, tok string, req wire.SendMsgRequest) answer {
	t.Helper()
	return call(t, "POST", b.base+"/cgi-bin/kf/send_msg?access_token="+tok, req)
}

func TestSendMsg(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.token(t)
	kf := b.sim.Config().OpenKfID
	c := sim.Population(1, 3)[0]
	text := func(s string) wire.SendMsgRequest {
		return wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgType: "text", Text: &wire.Text{Content: s}}
	}
	if a := send(t, b, tok, text("hello")); a.ErrCode != wire.CodeInvalidExternalUserID {
		t.Fatalf("send to a stranger: %+v", a.Response)
	}
	if err := b.sim.Write(context.Background(), c, "hi"); err != nil {
		t.Fatal(err)
	}
	req := text("您的包裹已发出")
	req.MsgID = "ob_1234"
	a := send(t, b, tok, req)
	if a.ErrCode != 0 || a.MsgID != "ob_1234" {
		t.Fatalf("send: %+v", a)
	}
	rec, err := b.env.WaitRecord(context.Background(), sim.Filter{Vendor: "wecom", Op: "kf/send_msg", To: c.WeChatID})
	if err != nil {
		t.Fatal(err)
	}
	var got wire.SendMsgRequest
	if err := json.Unmarshal(rec.Data, &got); err != nil || got.Text.Content != "您的包裹已发出" || got.MsgID != "ob_1234" {
		t.Fatalf("record %s", rec.Data)
	}
	if a := send(t, b, tok, text("two")); a.ErrCode != 0 || a.MsgID == "" {
		t.Fatalf("send without msgid: %+v", a)
	}
	for name, tc := range map[string]struct {
		req  wire.SendMsgRequest
		want int
	}{
		"empty text":   {text(""), wire.CodeEmptyContent},
		"long text":    {text(strings.Repeat("字", 700)), wire.CodeContentTooLong},
		"bad msgtype":  {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgType: "sticker"}, wire.CodeInvalidMsgType},
		"other kf":     {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: "wkOther", MsgType: "text", Text: &wire.Text{Content: "x"}}, wire.CodeInvalidOpenKfID},
		"no touser":    {wire.SendMsgRequest{OpenKfID: kf, MsgType: "text", Text: &wire.Text{Content: "x"}}, wire.CodeInvalidParameter},
		"bad msgid":    {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgID: "no spaces", MsgType: "text", Text: &wire.Text{Content: "x"}}, wire.CodeInvalidParameter},
		"image no id":  {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgType: "image", Image: &wire.Media{}}, wire.CodeInvalidParameter},
		"link no url":  {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgType: "link", Link: &wire.Link{Title: "t"}}, wire.CodeInvalidParameter},
		"image ok":     {wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: kf, MsgType: "image", Image: &wire.Media{MediaID: "MEDIA"}}, 0},
		"invalid json": {wire.SendMsgRequest{}, wire.CodeInvalidParameter},
	} {
		if a := send(t, b, tok, tc.req); a.ErrCode != tc.want {
			t.Errorf("%s: errcode %d (%s), want %d", name, a.ErrCode, a.ErrMsg, tc.want)
		}
	}
	// 3 sends so far since the customer wrote: 2 more are allowed, the 6th answers 95001.
	for i := range 2 {
		if a := send(t, b, tok, text("more")); a.ErrCode != 0 {
			t.Fatalf("send %d: %+v", i+4, a.Response)
		}
	}
	if a := send(t, b, tok, text("too many")); a.ErrCode != wire.CodeSendLimit {
		t.Fatalf("6th send: %+v", a.Response)
	}
	// The customer writes again: the count restarts; a closed session answers 95018.
	if err := b.sim.Write(context.Background(), c, "还有问题"); err != nil {
		t.Fatal(err)
	}
	if a := send(t, b, tok, text("ok")); a.ErrCode != 0 {
		t.Fatalf("after the customer wrote again: %+v", a.Response)
	}
	b.sim.CloseSession(c.WeChatID)
	if a := send(t, b, tok, text("closed")); a.ErrCode != wire.CodeSessionState {
		t.Fatalf("closed session: %+v", a.Response)
	}
	if n := len(b.env.Records(sim.Filter{Op: "kf/send_msg"})); n != 6 {
		t.Fatalf("%d accepted sends recorded, want 6", n)
	}
	if a := call(t, "POST", b.base+"/cgi-bin/kf/send_msg?access_token="+tok, "not json"); a.ErrCode != wire.CodeDataFormat {
		t.Fatalf("non-JSON send: %+v", a.Response)
	}
}

func TestSessionWindowIs48Hours(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := setup(t, func(c *wecom.Config) { c.Now = clock; c.TokenTTL = 100 * time.Hour })
	c := sim.Population(1, 9)[0]
	if err := b.sim.Write(context.Background(), c, "hi"); err != nil {
		t.Fatal(err)
	}
	tok := b.token(t)
	mu.Lock()
	now = now.Add(48*time.Hour + time.Second)
	mu.Unlock()
	a := send(t, b, tok, wire.SendMsgRequest{ToUser: c.WeChatID, OpenKfID: b.sim.Config().OpenKfID, MsgType: "text", Text: &wire.Text{Content: "late"}})
	if a.ErrCode != wire.CodeSessionState {
		t.Fatalf("send after 48h: %+v", a.Response)
	}
}

func TestInjectedFaultsInWeComShape(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tok := b.token(t)
	for code, want := range map[string]int{"42001": 42001, "": -1, "45009": 45009, "weird": -1} {
		if err := b.env.SetFault("wecom kf/send_msg", sim.Fault{ErrorRatio: 1, Code: code}); err != nil {
			t.Fatal(err)
		}
		a := send(t, b, tok, wire.SendMsgRequest{})
		if a.Status != 200 || a.ErrCode != want {
			t.Errorf("fault %q answered %d %+v, want errcode %d", code, a.Status, a.Response, want)
		}
	}
	if err := b.env.SetFault("wecom *", sim.Fault{ErrorRatio: 1, Code: "http_503"}); err != nil {
		t.Fatal(err)
	}
	if err := b.env.SetFault("wecom kf/send_msg", sim.Fault{}); err != nil {
		t.Fatal(err)
	}
	if a := call(t, "POST", b.base+"/cgi-bin/kf/sync_msg?access_token="+tok, wire.SyncMsgRequest{}); a.Status != 503 {
		t.Errorf("http_503 fault answered %d", a.Status)
	}
}

func TestDeliverJSONKeepsUnknownShapes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	item := `{"msgid":"x1","open_kfid":"wk","external_userid":"wmU","send_time":1,"origin":3,"msgtype":"channels_shop_order","channels_shop_order":{"order_id":"1"}}`
	if err := b.sim.DeliverJSON(json.RawMessage(item)); err != nil {
		t.Fatal(err)
	}
	if err := b.sim.DeliverJSON(json.RawMessage(`[1]`)); err == nil {
		t.Fatal("a non-object item was accepted")
	}
	a := call(t, "POST", b.base+"/cgi-bin/kf/sync_msg?access_token="+b.token(t), wire.SyncMsgRequest{})
	if len(a.MsgList) != 1 || string(a.MsgList[0]) != item {
		t.Fatalf("kept %s", a.MsgList)
	}
}

func TestConfigValidated(t *testing.T) {
	t.Parallel()
	env := sim.NewEnv(http.NewServeMux(), "http://x/hooks", nil, 0, slog.Default())
	for name, cfg := range map[string]wecom.Config{
		"no corp":   {Secret: "s", Token: "t", EncodingAESKey: aesKey},
		"no secret": {CorpID: "c", Token: "t", EncodingAESKey: aesKey},
		"bad key":   {CorpID: "c", Secret: "s", Token: "t", EncodingAESKey: "short"},
		"no token":  {CorpID: "c", Secret: "s", EncodingAESKey: aesKey},
	} {
		if _, err := wecom.New(env, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCallbackURLFollowsHookBase(t *testing.T) {
	t.Parallel()
	env := sim.NewEnv(http.NewServeMux(), "http://{connector}.internal:8080/hooks", nil, 0, slog.Default())
	s, err := wecom.New(env, wecom.Config{CorpID: corpID, Secret: secret, Token: token, EncodingAESKey: aesKey})
	if err != nil {
		t.Fatal(err)
	}
	req, err := s.CallbackRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.Host != "wechatkf.internal:8080" || req.URL.Path != "/hooks/wechatkf/callback" || req.Method != http.MethodPost {
		t.Fatalf("callback goes to %s %s", req.Method, req.URL)
	}
	q := req.URL.Query()
	if q.Get("msg_signature") == "" || q.Get("timestamp") == "" || q.Get("nonce") == "" {
		t.Fatalf("query %s", req.URL.RawQuery)
	}
}
