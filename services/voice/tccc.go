package voice

// The Tencent Cloud Contact Center (TCCC) provider: calls that a cloud contact centre handled,
// reported after they ended. TCCC pushes no live call events to a server (they go to the agent's
// browser SDK); it pushes a call record (CDR) per call, a recording push per recorded
// participant and a voicemail push, and lists call records with DescribeTelCdr. This provider
// turns each call record into the same omni.channel.call.started and .ended events the SIP path
// publishes (provider "tccc"), stores the recordings in the connector's bucket, and transcribes
// them after the call with Aliyun recording-file transcription (tccc_work.go). Pushes and
// reconciliation (tccc_reconcile.go) share one path, keyed by the call's id (derived from the
// SdkAppId and SessionId) and remembered in the voice_tccc key-value bucket, so a call is
// published once however often and however it is reported.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/webhook"
	"github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

// Provider is the provider (and trunk) name of TCCC calls in the call events.
const providerTCCC = "tccc"

// TCCC routes: pushes POST to PushPath?action=cdr|record|voicemail; with OAuth2 push auth,
// TCCC fetches its bearer token from TokenPath.
const (
	TCCCPushPath  = "/hooks/voice/tccc"
	TCCCTokenPath = "/hooks/voice/tccc/token"

	tcccBucket = "voice_tccc"
)

// tcccNamespace makes a TCCC session's call id: a name-based (SHA-1) UUID of
// tccc:<SdkAppId>:<SessionId>.
var tcccNamespace = uuid.MustParse("b2f1e0c4-7a3d-5e61-9c8b-0d4f2a6e1c37")

// TCCCCallID is the connector's call id of a TCCC session.
func TCCCCallID(sdkAppID int64, session string) string {
	return uuid.NewSHA1(tcccNamespace, []byte("tccc:"+strconv.FormatInt(sdkAppID, 10)+":"+session)).String()
}

// tccc is the running provider.
type tccc struct {
	s   *server
	cfg *TCCCConfig
	rt  *connector.Runtime
	kv  jetstream.KeyValue

	describe, fetch, submit, result *resilience.Route
	client                          *http.Client

	tokenKey []byte
	drafts   sync.Map // *http.Request → *tcccDraft, from a push's Decode to its Respond
	wake     chan struct{}
	now      func() time.Time
}

// Resilience figures of the TCCC and file-transcription routes. API calls take the seed's
// 300 ms per attempt; a recording download gets 3 s per attempt (a file of minutes of audio, not
// an API answer). RESILIENCE_TCCC_* and RESILIENCE_ALIYUN_FILETRANS_* override them.
var (
	tcccAPISettings      = resilience.Settings{Timeout: 300 * time.Millisecond, Budget: 2 * time.Second, MaxAttempts: 3, BreakerMinCalls: 5, BreakerOpenFor: 10 * time.Second}
	tcccRecordingSetting = resilience.Settings{Timeout: 3 * time.Second, Budget: 8 * time.Second, MaxAttempts: 3, BreakerMinCalls: 5, BreakerOpenFor: 10 * time.Second}
)

func startTCCC(ctx context.Context, s *server) error {
	cfg := &s.cfg.TCCC
	t := &tccc{s: s, cfg: cfg, rt: s.rt, wake: make(chan struct{}, 1), now: time.Now,
		client: &http.Client{Timeout: 30 * time.Second}}
	var err error
	t.kv, err = s.rt.KeyValue(ctx, jetstream.KeyValueConfig{Bucket: tcccBucket, History: 1, TTL: cfg.StateRetention,
		Description: "voice connector: TCCC calls published, pushes seen, after-call work pending"})
	if err != nil {
		return err
	}
	reg, err := s.rt.Resilience()
	if err != nil {
		return err
	}
	routes := []struct {
		dst  **resilience.Route
		spec resilience.RouteSpec
	}{
		{&t.describe, resilience.RouteSpec{Vendor: "tccc", Op: "describe_tel_cdr", Idempotent: true, Settings: tcccAPISettings,
			Classify: classifyTencent}},
		{&t.fetch, resilience.RouteSpec{Vendor: "tccc", Op: "recording", Idempotent: true, Settings: tcccRecordingSetting}},
		// A resubmitted task is a second task on the same file: harmless, so retried.
		{&t.submit, resilience.RouteSpec{Vendor: "aliyun", Op: "filetrans_submit", Idempotent: true, Settings: tcccAPISettings,
			Classify: classifyAliyunPOP}},
		{&t.result, resilience.RouteSpec{Vendor: "aliyun", Op: "filetrans_result", Idempotent: true, Settings: tcccAPISettings,
			Classify: classifyAliyunPOP}},
	}
	for _, r := range routes {
		if *r.dst, err = reg.Route(r.spec); err != nil {
			return err
		}
	}
	if cfg.PushAuth == pushAuthOAuth2 {
		k := sha256.Sum256([]byte("omnibus tccc push token\x00" + cfg.OAuthClientSecret))
		t.tokenKey = k[:]
		if err := s.rt.Handle("POST "+TCCCTokenPath, http.HandlerFunc(t.token)); err != nil {
			return err
		}
	}
	if err := s.rt.Webhook(connector.Webhook{Path: strings.TrimPrefix(TCCCPushPath, "/hooks/voice"), Verify: t.verify,
		NoSignature: cfg.PushAuth == pushAuthNone, Decode: t.decode, Respond: t.respond}); err != nil {
		return err
	}
	s.rt.Go(ctx, "tccc-work", t.work)
	if cfg.Reconcile > 0 {
		s.rt.Go(ctx, "tccc-reconcile", t.reconcile)
	}
	s.rt.Log.Info("TCCC provider on", "sdk_app_id", cfg.SdkAppID, "push_auth", cfg.PushAuth, "reconcile", cfg.Reconcile,
		"transcribe", cfg.Transcribe)
	return nil
}

// tencentErrorCode reads Response.Error.Code of an API 3.0 answer.
func tencentErrorCode(_ int, _ http.Header, body []byte) string {
	var r struct {
		Response struct {
			Error *tencent.Error `json:"Error"`
		} `json:"Response"`
	}
	if json.Unmarshal(body, &r) != nil || r.Response.Error == nil {
		return ""
	}
	return r.Response.Error.Code
}

// classifyTencent: throttling is a rate limit, internal errors are retried, the rest of the
// API's codes (auth, parameters, permissions) cannot succeed on a retry.
func classifyTencent(status int, code string) resilience.Class {
	switch {
	case code == "":
		return resilience.StatusClass(status)
	case code == "RequestLimitExceeded" || strings.HasPrefix(code, "RequestLimitExceeded."):
		return resilience.ClassRateLimited
	case strings.HasPrefix(code, "InternalError") || code == "FailedOperation" || code == "ResourceUnavailable":
		return resilience.ClassRetryable
	}
	return resilience.ClassPermanent
}

// classifyAliyunPOP: Throttling.* is a rate limit; the HTTP status decides the rest.
func classifyAliyunPOP(status int, code string) resilience.Class {
	if strings.HasPrefix(code, "Throttling") {
		return resilience.ClassRateLimited
	}
	return resilience.StatusClass(status)
}

// ---- push authentication ----

func (t *tccc) verify(r *http.Request, _ []byte) error {
	switch t.cfg.PushAuth {
	case pushAuthBasic:
		u, p, ok := r.BasicAuth()
		if !ok {
			return fmt.Errorf("%w: the push carries no basic-auth credentials", webhook.ErrSignature)
		}
		uok := subtle.ConstantTimeCompare([]byte(u), []byte(t.cfg.PushUser))
		pok := subtle.ConstantTimeCompare([]byte(p), []byte(t.cfg.PushPassword))
		if uok&pok != 1 {
			return webhook.Reject(http.StatusForbidden, errors.New("basic-auth user or password is wrong"))
		}
	case pushAuthOAuth2:
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			return fmt.Errorf("%w: the push carries no bearer token", webhook.ErrSignature)
		}
		if err := t.checkToken(tok); err != nil {
			return webhook.Reject(http.StatusForbidden, err)
		}
	}
	return nil
}

// A bearer token is <expiry unix seconds>.<hex HMAC-SHA256 of the expiry>, keyed by the client
// secret: stateless, so any replica accepts it.
func (t *tccc) issueToken(exp int64) string {
	m := hmac.New(sha256.New, t.tokenKey)
	m.Write([]byte(strconv.FormatInt(exp, 10)))
	return strconv.FormatInt(exp, 10) + "." + hex.EncodeToString(m.Sum(nil))
}

func (t *tccc) checkToken(tok string) error {
	exp, _, ok := strings.Cut(tok, ".")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || !hmac.Equal([]byte(tok), []byte(t.issueToken(n))) {
		return errors.New("the bearer token was not issued by this connector")
	}
	if t.now().Unix() >= n {
		return errors.New("the bearer token has expired")
	}
	return nil
}

// token is the OAuth2 token endpoint (client credentials grant, RFC 6749 §4.4): the client
// authenticates with HTTP basic auth or client_id/client_secret in the form.
func (t *tccc) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<14)
	if err := r.ParseForm(); err != nil {
		webhook.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": webhook.ClientReason(err)})
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "client_credentials" {
		webhook.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type",
			"error_description": "grant_type must be client_credentials, got " + strconv.Quote(g)})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(t.cfg.OAuthClientID))&subtle.ConstantTimeCompare([]byte(secret), []byte(t.cfg.OAuthClientSecret)) != 1 {
		t.rt.Log.Warn("TCCC token request refused", "client_id", id, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Basic realm="tccc"`)
		webhook.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "unknown client or wrong secret"})
		return
	}
	exp := t.now().Add(t.cfg.TokenTTL).Unix()
	webhook.WriteJSON(w, http.StatusOK, map[string]any{"access_token": t.issueToken(exp), "token_type": "Bearer",
		"expires_in": int64(t.cfg.TokenTTL.Seconds())})
}

// ---- pushes ----

// tcccDraft is what a push's Decode decided, committed to the bucket once its events are stored.
type tcccDraft struct {
	pushKey string
	commit  func(ctx context.Context) error
}

var keySafe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// pushKey is the bucket key of a push id (hashed unless it is a plain token).
func pushKey(id string) string {
	if keySafe.MatchString(id) {
		return "push." + id
	}
	h := sha256.Sum256([]byte(id))
	return "push.h" + hex.EncodeToString(h[:16])
}

func (t *tccc) decode(r *http.Request, body []byte) ([]bus.Outgoing, error) {
	ctx := r.Context()
	d := &tcccDraft{}
	if id := r.Header.Get(tencent.HeaderPushUUID); id != "" {
		d.pushKey = pushKey(id)
		if _, err := t.kv.Get(ctx, d.pushKey); err == nil {
			t.rt.Log.Debug("TCCC push already taken", "push_uuid", id)
			return nil, nil
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("%w: push state: %w", webhook.ErrUnavailable, err)
		}
	}
	var out []bus.Outgoing
	action := r.URL.Query().Get("action")
	switch action {
	case tencent.PushCDR:
		c, err := tencent.ParseCDRPush(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
		}
		if err := t.ownApp(c.SdkAppID); err != nil {
			return nil, err
		}
		c.SdkAppID = t.cfg.SdkAppID
		var commit func(context.Context) error
		out, commit, err = t.cdr(ctx, c)
		if err != nil {
			return nil, err
		}
		d.commit = commit
	case tencent.PushRecord:
		p, err := tencent.ParseRecordPush(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
		}
		if err := t.ownApp(p.SdkAppID); err != nil {
			return nil, err
		}
		url := p.RecordURL
		if p.CustomRecordURL != "" {
			url = p.CustomRecordURL
		}
		f := tcccFile{Kind: fileParticipant, URL: url, Who: p.EndpointUser}
		d.commit = func(ctx context.Context) error { return t.addFile(ctx, p.SessionID, f) }
	case tencent.PushVoicemail:
		p, err := tencent.ParseVoicemailPush(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", webhook.ErrMalformed, err)
		}
		if err := t.ownApp(p.SdkAppID); err != nil {
			return nil, err
		}
		f := tcccFile{Kind: fileVoicemail, URL: p.RecordURL, Who: p.EndpointUser, Transcribe: t.cfg.Transcribe}
		d.commit = func(ctx context.Context) error { return t.addFile(ctx, p.SessionID, f) }
	default:
		return nil, fmt.Errorf("%w: action %q is not cdr, record or voicemail", webhook.ErrMalformed, action)
	}
	t.drafts.Store(r, d)
	context.AfterFunc(ctx, func() { t.drafts.Delete(r) })
	return out, nil
}

func (t *tccc) ownApp(id int64) error {
	if id != 0 && id != t.cfg.SdkAppID {
		return webhook.Reject(http.StatusForbidden, fmt.Errorf("push for SdkAppId %d, this connector serves %d", id, t.cfg.SdkAppID))
	}
	return nil
}

// respond commits what the push changed (the call published, a file to fetch, the push seen)
// and acknowledges it; a commit that fails is answered 503, so TCCC pushes again (the events'
// ids dedupe what was stored).
func (t *tccc) respond(w http.ResponseWriter, r *http.Request, _ []bus.Outgoing) {
	if v, ok := t.drafts.LoadAndDelete(r); ok {
		d := v.(*tcccDraft)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 3*time.Second)
		defer cancel()
		var err error
		if d.commit != nil {
			err = d.commit(ctx)
		}
		if err == nil && d.pushKey != "" {
			_, err = t.kv.Put(ctx, d.pushKey, []byte(t.now().UTC().Format(time.RFC3339)))
		}
		if err != nil {
			t.rt.Log.Error("TCCC push state not stored; asking for the push again", "err", err)
			webhook.WriteNotStored(w, http.StatusServiceUnavailable, err)
			return
		}
		t.poke()
	}
	webhook.WriteJSON(w, http.StatusOK, tencent.PushOK)
}

func (t *tccc) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// ---- call records → events ----

// tcccCall is what the events of a TCCC call carry; the bucket keeps it for the after-call work.
type tcccCall struct {
	ID        string    `json:"id"`
	Session   string    `json:"session"`
	Direction string    `json:"direction"`
	From      identity  `json:"from"`
	To        identity  `json:"to"`
	StartedAt time.Time `json:"started_at"`
}

// partitionKey is the customer's identity: the caller of an inbound call, the callee of an
// outbound one (not the contact centre's number, which every outbound call shares).
func (c tcccCall) partitionKey() string {
	if c.Direction == "outbound" {
		return c.To.Kind + ":" + c.To.Value
	}
	return c.From.Kind + ":" + c.From.Value
}

func (c tcccCall) data() map[string]any {
	d := map[string]any{"channel": "voice", "call_id": c.ID, "direction": c.Direction, "from": c.From, "to": c.To,
		"trunk": providerTCCC, "provider": providerTCCC}
	if c.Session != "" && len(c.Session) <= 128 {
		d["provider_call_id"] = c.Session
	}
	return d
}

// party is the identity of a TCCC number: E.164 when it is a phone number, the masked number
// when number protection hides it, else a per-call placeholder (never one shared identity that
// would merge every unknown caller into one customer).
func (t *tccc) party(number, protected, session, side string) identity {
	if e164, ok := normalisePhone(number, t.s.cfg.CountryCode); ok {
		return identity{Kind: "phone", Value: e164}
	}
	clip := func(s string) string {
		if len(s) > 200 {
			return s[:200]
		}
		return s
	}
	switch {
	case number != "":
		return identity{Kind: "tccc_number", Value: clip(number)}
	case protected != "":
		return identity{Kind: "tccc_protected", Value: clip(protected)}
	}
	return identity{Kind: "tccc_unknown", Value: clip(session) + ":" + side}
}

func (t *tccc) callOf(c tencent.TelCdrInfo) tcccCall {
	dir := "inbound"
	if c.Direction == tencent.DirectionOutbound {
		dir = "outbound"
	}
	return tcccCall{ID: TCCCCallID(t.cfg.SdkAppID, c.SessionID), Session: c.SessionID, Direction: dir,
		From: t.party(c.Caller, c.ProtectedCaller, c.SessionID, "caller"), To: t.party(c.Callee, c.ProtectedCallee, c.SessionID, "callee"),
		StartedAt: time.Unix(c.StartUnix(), 0).UTC()}
}

var endStatusWord = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// hangupSide maps TCCC's HungUpSide: the seat is the agent, the user the customer (the caller
// of an inbound call, the callee of an outbound one), anything else the system.
func hangupSide(side, direction string) string {
	switch side {
	case tencent.HungUpSeat:
		return "agent"
	case tencent.HungUpUser:
		if direction == "outbound" {
			return "callee"
		}
		return sideCaller
	}
	return sideSystem
}

// cdr turns a call record into the call's started and ended events, unless the call was
// published already (then no events). The recording is fetched and stored first, so the ended
// event names it; when that fails the events go out without it and the after-call work stores
// it later. commit records the call as published, with its after-call work.
func (t *tccc) cdr(ctx context.Context, c tencent.TelCdrInfo) ([]bus.Outgoing, func(context.Context) error, error) {
	call := t.callOf(c)
	st, _, err := t.load(ctx, call.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: call state: %w", webhook.ErrUnavailable, err)
	}
	if st != nil && st.Published {
		t.rt.Log.Debug("TCCC call already published", "call_id", call.ID, "session", c.SessionID)
		return nil, func(context.Context) error { return nil }, nil
	}
	var files []tcccFile
	var legs []recordedLeg
	answered := c.AcceptTimestamp > 0
	if u := c.Recording(); u != "" {
		f := tcccFile{Kind: fileCall, URL: u, Transcribe: t.cfg.Transcribe && answered}
		if leg, err := t.store(ctx, call, &f, c.Duration*1000); err != nil {
			t.rt.Log.Warn("TCCC recording not stored yet; the call is published without it and the download retried",
				"call_id", call.ID, "err", err)
			f.failed(t.now(), t.cfg, err)
		} else {
			legs = append(legs, leg)
		}
		files = append(files, f)
	}
	for _, u := range c.VoicemailRecordURL {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			files = append(files, tcccFile{Kind: fileVoicemail, URL: u, Transcribe: t.cfg.Transcribe})
		}
	}
	start, end := call.StartedAt, time.Unix(c.EndUnix(), 0).UTC()
	started := call.data()
	started["at"] = start
	ended := call.data()
	ended["started_at"], ended["ended_at"] = start, end
	ended["duration_ms"] = max(0, end.Sub(start).Milliseconds())
	ended["talk_ms"] = int64(0)
	ended["reason"] = "unanswered"
	if answered {
		at := time.Unix(c.AcceptTimestamp, 0).UTC()
		ended["answered_at"] = at
		ended["talk_ms"] = max(0, end.Sub(at).Milliseconds())
		ended["reason"] = "completed"
	}
	ended["hangup_side"] = hangupSide(c.HungUpSide, call.Direction)
	if endStatusWord.MatchString(c.EndStatusString) {
		ended["end_status"] = c.EndStatusString
	}
	if len(legs) > 0 {
		ended["recording"] = map[string]any{"legs": legs}
	}
	if transcribing(files) {
		ended["transcript"] = "pending" // omni.channel.call.transcribed says the rest
	}
	var out []bus.Outgoing
	for _, e := range []struct {
		typ, suffix string
		data        map[string]any
		at          time.Time
	}{{TypeCallStarted, "started", started, start}, {TypeCallEnded, "ended", ended, end}} {
		ev, err := t.rt.NewEvent(e.typ, e.data, event.WithID("voice:"+call.ID+":"+e.suffix), event.WithPartitionKey(call.partitionKey()),
			event.WithTime(e.at), event.WithSubject(call.ID))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, bus.Outgoing{Subject: SubjectCall, Event: ev})
	}
	commit := func(ctx context.Context) error {
		return t.update(ctx, call.ID, func(st *tcccState) {
			st.Call, st.Published = call, true
			for _, f := range files {
				st.add(f)
			}
		})
	}
	return out, commit, nil
}

// ingest publishes a call record found by reconciliation, as its push would have.
func (t *tccc) ingest(ctx context.Context, c tencent.TelCdrInfo) (bool, error) {
	c.SdkAppID = t.cfg.SdkAppID
	out, commit, err := t.cdr(ctx, c)
	if err != nil || len(out) == 0 {
		return false, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := t.rt.Publish(pctx, out...); err != nil {
		return false, err
	}
	if err := commit(pctx); err != nil {
		return true, err
	}
	t.poke()
	return true, nil
}

// addFile records a recording or voicemail pushed for a session (before or after its call
// record: the work on it waits for the call to be published).
func (t *tccc) addFile(ctx context.Context, session string, f tcccFile) error {
	id := TCCCCallID(t.cfg.SdkAppID, session)
	return t.update(ctx, id, func(st *tcccState) {
		if st.Call.ID == "" {
			st.Call = tcccCall{ID: id, Session: session}
		}
		st.add(f)
	})
}

// marshal and jsonUnmarshal encode the bucket's values.
func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
