// Package tccc simulates Tencent Cloud Contact Center (TCCC, 腾讯云联络中心; vendors part 2 §7)
// for the sandbox: a contact centre that takes calls, and reports each one after it ended the
// way TCCC does.
//
//	POST /sandbox/tccc/                 op "DescribeTelCdr" (https://ccc.tencentcloudapi.com/)
//	GET  /sandbox/tccc/records/{name}   op "recording"      (the recording links, COS in TCCC)
//
// Place makes a simulated call: its recording (two channels, the customer on 0 and the agent on
// 1, made of the speech catalogue's committed audio, so the sandbox's file transcription
// recognises it) is served under /records/, and after the call TCCC's data pushes go to the
// voice connector's push URL: one record push per recorded participant (action=record), the
// call record (action=cdr), and a voicemail push (action=voicemail) for a call that ended in
// voicemail — each with an X-TCCC-PUSH-UUID and the console's auth (basic, or an OAuth2 bearer
// token fetched from the connector's token URL with client credentials). A call placed with
// Lost has its CDR push "lost": only DescribeTelCdr lists it, as reconciliation must find.
//
// Recordings are served as WAV (16-bit PCM, 8 kHz, two channels), not the MP3 TCCC serves: the
// sandbox has no MP3 encoder, and the connector and Aliyun file transcription take both.
//
// DescribeTelCdr checks the TC3-HMAC-SHA256 signature (service ccc), the action, the version and
// the SdkAppId, and pages the records whose start lies in the window (PageNumber from 0,
// PageSize at most 100). Faults: on "tccc DescribeTelCdr" an API error (code, "" =
// InternalError); on "tccc recording" an HTTP status (FaultStatus); on "tccc push" (checked
// before each push) latency delays it, and with code "bad_auth" the push carries wrong
// credentials, "drop" loses it, another code is ignored.
package tccc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/pkg/wire/wavfile"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "tccc"

// Ops: fault keys and records ("tccc DescribeTelCdr", ...).
const (
	OpDescribeTelCdr = "DescribeTelCdr"
	OpRecording      = "recording"
	OpPush           = "push"
)

// Config is the simulated contact centre and how it reaches the connector.
type Config struct {
	SdkAppID            int64
	SecretID, SecretKey string
	// Base is where the sandbox is reached (the recording links): http://host:port.
	Base string
	// PushURL is the voice connector's push URL (…/hooks/voice/tccc); "" sends no pushes.
	PushURL string
	// PushAuth is basic, oauth2 or none, with its credentials; TokenURL is the connector's
	// OAuth2 token endpoint (default PushURL + "/token").
	PushAuth                  string
	PushUser, PushPassword    string
	ClientID, ClientSecret    string
	TokenURL                  string
	Hotline                   string // the number customers call (Callee of inbound calls)
	Agent                     string // the agent's mail
	Client                    *http.Client
	Log                       *slog.Logger
	Window                    time.Duration // signature skew, default 5m
	Now                       func() time.Time
	PushDelay                 time.Duration // between the call's end and its pushes
	DisableRecordParticipants bool          // no record pushes (tests that count pushes)
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
	g   *sim.Group

	mu      sync.Mutex
	calls   []wire.TelCdrInfo
	records map[string][]byte // name → WAV
	token   string
	tokenAt time.Time
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.SdkAppID <= 0 || cfg.SecretID == "" || cfg.SecretKey == "" || cfg.Base == "" {
		return nil, errors.New("tccc simulator: needs SdkAppID, a key pair and the sandbox's Base URL")
	}
	switch cfg.PushAuth {
	case "basic", "oauth2", "none":
	case "":
		cfg.PushAuth = "basic"
	default:
		return nil, fmt.Errorf("tccc simulator: push auth %q is not basic, oauth2 or none", cfg.PushAuth)
	}
	if cfg.TokenURL == "" && cfg.PushURL != "" {
		cfg.TokenURL = cfg.PushURL + "/token"
	}
	if cfg.Hotline == "" {
		cfg.Hotline = "4008001234"
	}
	if cfg.Agent == "" {
		cfg.Agent = "agent@example.com"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = env.VendorLog(Vendor)
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Base = strings.TrimRight(cfg.Base, "/")
	s := &Sim{env: env, cfg: cfg, g: sim.NewGroup(), records: map[string][]byte{}}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpDescribeTelCdr, Pattern: "POST /{$}", Handler: s.describe, Fail: s.failAPI})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpRecording, Pattern: "GET /records/{name}", Handler: s.recording,
		Fail: func(w http.ResponseWriter, _ *http.Request, code string) {
			st, _ := sim.FaultStatus(code)
			http.Error(w, "injected fault", st)
		}})
	return s, nil
}

// Close stops pending pushes.
func (s *Sim) Close() { s.g.Close() }

// Call is a simulated call to place.
type Call struct {
	// Customer is the customer's phone (E.164 or national).
	Customer string
	// Outbound: the agent called the customer.
	Outbound bool
	// Says are catalogue utterance ids, alternating customer, agent, customer, ...
	Says []string
	// Answered: an agent took the call (default true unless Voicemail).
	Unanswered bool
	// Voicemail: nobody answered and the customer left Says[0] as a voicemail.
	Voicemail bool
	// Lost: the CDR push is lost (only DescribeTelCdr lists the call).
	Lost bool
	// DuplicatePush: the CDR push is sent twice with the same X-TCCC-PUSH-UUID, then once more
	// with a new one (TCCC's retries and a re-push).
	DuplicatePush bool
	// At is when the call started; default now minus its length.
	At time.Time
}

// Placed is what Place did.
type Placed struct {
	CDR          wire.TelCdrInfo
	RecordingURL string
	// Said is the text of Says in order (what a transcript must contain).
	Said []string
}

// Place simulates c and sends its pushes in the background (after PushDelay).
func (s *Sim) Place(c Call) (Placed, error) {
	session := uuid.NewString()
	var chans [2][]int16
	var said []string
	pos := speech.Rate / 2 // half a second of silence first
	for i, id := range c.Says {
		pcm, err := speech.Audio(id)
		if err != nil {
			return Placed{}, err
		}
		u, _ := speech.Find(id)
		said = append(said, u.Text)
		ch := i % 2
		if c.Voicemail {
			ch = 0
		}
		for len(chans[ch]) < pos {
			chans[ch] = append(chans[ch], 0)
		}
		chans[ch] = append(chans[ch], pcm...)
		pos += len(pcm) + speech.Rate // a second between turns
	}
	for ch := range chans {
		for len(chans[ch]) < pos {
			chans[ch] = append(chans[ch], 0)
		}
	}
	secs := int64(math.Ceil(float64(pos) / speech.Rate))
	now := s.cfg.Now()
	start := c.At
	if start.IsZero() {
		start = now.Add(-time.Duration(secs+8) * time.Second)
	}
	cdr := wire.TelCdrInfo{SdkAppID: s.cfg.SdkAppID, SessionID: session, Caller: c.Customer, Callee: s.cfg.Hotline,
		Direction: wire.DirectionInbound, CallType: 2, Time: start.Unix(), StartTimestamp: start.Unix(),
		RingTimestamp: start.Unix() + 3, EndStatus: 1, EndStatusString: "ok", HungUpSide: wire.HungUpUser,
		SeatUser: &wire.SeatUser{Mail: s.cfg.Agent, UserID: s.cfg.Agent, Name: "Sandbox Agent"}, IVRDuration: 2, CallerLocation: "广东深圳"}
	if c.Outbound {
		cdr.Caller, cdr.Callee, cdr.Direction, cdr.CallType = s.cfg.Hotline, c.Customer, wire.DirectionOutbound, 1
	}
	answered := !c.Unanswered && !c.Voicemail
	var recURL string
	if answered || c.Voicemail {
		name := session + ".wav"
		wav := wavfile.EncodePCM(speech.Rate, chans[0], chans[1])
		if c.Voicemail {
			name = "voicemail-" + session + ".wav"
			wav = wavfile.EncodePCM(speech.Rate, chans[0])
		}
		s.mu.Lock()
		s.records[name] = wav
		s.mu.Unlock()
		recURL = s.cfg.Base + sim.Prefix + Vendor + "/records/" + name
	}
	switch {
	case answered:
		cdr.AcceptTimestamp = start.Unix() + 5
		cdr.EndedTimestamp = cdr.AcceptTimestamp + secs
		cdr.Duration = secs
		cdr.RecordURL, cdr.RecordID = recURL, strconv.FormatInt(cdr.EndedTimestamp, 10)
	case c.Voicemail:
		cdr.EndedTimestamp = start.Unix() + 20 + secs
		cdr.EndStatus, cdr.EndStatusString, cdr.HungUpSide = 105, "noSeatOnline", wire.HungUpUser
		cdr.VoicemailRecordURL = []string{recURL}
		cdr.SeatUser = nil
	default:
		cdr.EndedTimestamp = start.Unix() + 25
		cdr.EndStatus, cdr.EndStatusString, cdr.HungUpSide = 104, "ringingGiveUp", wire.HungUpUser
		cdr.SeatUser = nil
	}
	s.mu.Lock()
	s.calls = append(s.calls, cdr)
	s.mu.Unlock()
	s.g.Go(func(ctx context.Context) { s.pushAll(ctx, c, cdr, recURL) })
	return Placed{CDR: cdr, RecordingURL: recURL, Said: said}, nil
}

func (s *Sim) pushAll(ctx context.Context, c Call, cdr wire.TelCdrInfo, recURL string) {
	if s.cfg.PushURL == "" || !sim.Sleep(ctx, s.cfg.PushDelay) {
		return
	}
	if cdr.RecordURL != "" && !s.cfg.DisableRecordParticipants {
		for _, who := range []string{cdr.Caller, s.cfg.Agent} {
			s.push(ctx, wire.PushRecord, "1", wire.RecordPush{SdkAppID: cdr.SdkAppID, RecordID: cdr.RecordID, SessionID: cdr.SessionID,
				Timestamp: cdr.EndedTimestamp, EndpointUser: who, RecordURL: recURL}, "")
		}
	}
	if c.Voicemail {
		s.push(ctx, wire.PushVoicemail, "", wire.VoicemailPush{SdkAppID: cdr.SdkAppID, SessionID: cdr.SessionID,
			Timestamp: cdr.EndedTimestamp, RecordURL: recURL, EndpointUser: cdr.Caller}, "")
	}
	if c.Lost {
		s.env.Record(Vendor, OpPush, cdr.SessionID, map[string]string{"action": wire.PushCDR, "lost": "true"}, nil)
		return
	}
	id := uuid.NewString()
	s.push(ctx, wire.PushCDR, "1", cdr, id)
	if c.DuplicatePush {
		s.push(ctx, wire.PushCDR, "1", cdr, id)
		s.push(ctx, wire.PushCDR, "1", cdr, "")
	}
}

// push POSTs one push as TCCC does: JSON, the action (and version) in the query, a push id,
// the console's auth; up to three attempts until the answer is {"ErrCode":0}.
func (s *Sim) push(ctx context.Context, action, version string, body any, id string) {
	b, err := json.Marshal(body)
	if err != nil {
		return
	}
	if id == "" {
		id = uuid.NewString()
	}
	q := url.Values{"action": {action}}
	if version != "" {
		q.Set("version", version)
	}
	f := s.env.Faults()[Vendor+" "+OpPush]
	if f.Latency > 0 && !sim.Sleep(ctx, f.Latency) {
		return
	}
	bad := f.Code == "bad_auth" && f.ErrorRatio > 0 && rand.Float64() < f.ErrorRatio
	if f.Code == "drop" && f.ErrorRatio > 0 && rand.Float64() < f.ErrorRatio {
		s.env.Record(Vendor, OpPush, id, map[string]string{"action": action, "dropped": "true"}, nil)
		return
	}
	u := s.cfg.PushURL + "?" + q.Encode()
	var last error
	for attempt := range 3 {
		if attempt > 0 && !sim.Sleep(ctx, time.Duration(attempt)*300*time.Millisecond) {
			return
		}
		last = s.pushOnce(ctx, u, b, id, bad)
		if last == nil {
			break
		}
	}
	s.env.Record(Vendor, OpPush, id, map[string]any{"action": action, "body": json.RawMessage(b), "bad_auth": bad}, last)
	if last != nil {
		s.cfg.Log.Warn("TCCC push not acknowledged", "action", action, "push_uuid", id, "err", last)
	}
}

func (s *Sim) pushOnce(ctx context.Context, u string, body []byte, id string, bad bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set(wire.HeaderPushUUID, id)
	switch s.cfg.PushAuth {
	case "basic":
		pw := s.cfg.PushPassword
		if bad {
			pw += "-wrong"
		}
		req.SetBasicAuth(s.cfg.PushUser, pw)
	case "oauth2":
		tok, err := s.bearer(ctx)
		if err != nil {
			return err
		}
		if bad {
			tok += "0"
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var ack wire.PushAck
	if resp.StatusCode/100 != 2 || json.Unmarshal(raw, &ack) != nil || ack.ErrCode != 0 {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			s.mu.Lock()
			s.token = "" // fetch a new token next time
			s.mu.Unlock()
		}
		return fmt.Errorf("push answered %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	return nil
}

// bearer returns the OAuth2 token, fetched from the connector with client credentials.
func (s *Sim) bearer(ctx context.Context) (string, error) {
	s.mu.Lock()
	tok, at := s.token, s.tokenAt
	s.mu.Unlock()
	if tok != "" && s.cfg.Now().Before(at) {
		return tok, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.TokenURL, strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.cfg.ClientID, s.cfg.ClientSecret)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %d", resp.StatusCode)
	}
	s.mu.Lock()
	s.token, s.tokenAt = out.AccessToken, s.cfg.Now().Add(time.Duration(out.ExpiresIn)*time.Second/2)
	s.mu.Unlock()
	return out.AccessToken, nil
}

// recording serves a call's recording.
func (s *Sim) recording(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	b, ok := s.records[name]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	s.env.Record(Vendor, OpRecording, name, map[string]int{"bytes": len(b)}, nil)
	sim.WriteBody(w, http.StatusOK, "audio/wav", b)
}

// ---- DescribeTelCdr ----

var messages = tencent.GatewayMessages.With(sim.Messages{
	"InvalidParameterValue":    "The parameter value is invalid.",
	"InternalError.DBError":    "Database error.",
	"FailedOperation":          "Operation failed.",
	"ResourceNotFound":         "The instance does not exist.",
	"InvalidParameter":         "Parameter error.",
	"AuthFailure.Unauthorized": "Unauthorized.",
})

func writeAPI(w http.ResponseWriter, v any) { sim.WriteJSON(w, http.StatusOK, "application/json", v) }

func writeErr(w http.ResponseWriter, e *sim.APIError) {
	writeAPI(w, map[string]any{"Response": map[string]any{"Error": wire.Error{Code: e.Code, Message: e.Message}, "RequestId": uuid.NewString()}})
}

func (s *Sim) failAPI(w http.ResponseWriter, _ *http.Request, code string) {
	if code == "" {
		code = "InternalError"
	}
	e := messages.Err(code)
	s.env.Record(Vendor, OpDescribeTelCdr, "", map[string]string{"Code": code, "injected": "true"}, e)
	writeErr(w, e)
}

func (s *Sim) describe(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		writeErr(w, messages.Err("InvalidParameter", err.Error()))
		return
	}
	_, err = wire.Verify(r, body, wire.CCCService, func(id string) (string, bool) { return s.cfg.SecretKey, id == s.cfg.SecretID },
		s.cfg.Now(), s.cfg.Window)
	var e *sim.APIError
	switch {
	case errors.Is(err, wire.ErrSecretIDNotFound):
		e = messages.Err("AuthFailure.SecretIdNotFound")
	case errors.Is(err, wire.ErrExpired):
		e = messages.Err("AuthFailure.SignatureExpire")
	case errors.Is(err, wire.ErrSignature):
		e = messages.Err("AuthFailure.SignatureFailure")
	case err != nil:
		e = messages.Err("AuthFailure.InvalidAuthorization", err.Error())
	case r.Header.Get(wire.HeaderAction) != wire.ActionDescribeTelCdr:
		e = messages.Err("InvalidAction")
	case r.Header.Get(wire.HeaderVersion) != wire.CCCVersion:
		e = messages.Err("NoSuchVersion")
	}
	var req wire.DescribeTelCdrRequest
	if e == nil {
		if err := json.Unmarshal(body, &req); err != nil {
			e = messages.Err("InvalidParameter", err.Error())
		}
	}
	now := s.cfg.Now().Unix()
	switch {
	case e != nil:
	case req.SdkAppID != s.cfg.SdkAppID:
		e = messages.Err("ResourceNotFound", "SdkAppId "+strconv.FormatInt(req.SdkAppID, 10))
	case req.PageSize <= 0 || req.PageSize > wire.MaxCdrPageSize || req.PageNumber < 0:
		e = messages.Err("InvalidParameterValue", "PageSize must be 1-100, PageNumber >= 0")
	case req.EndTimeStamp < req.StartTimeStamp || req.EndTimeStamp-req.StartTimeStamp >= 90*86400 || req.StartTimeStamp < now-180*86400:
		e = messages.Err("InvalidParameterValue", "the window must be under 90 days and start within 180 days")
	}
	if e != nil {
		s.env.Record(Vendor, OpDescribeTelCdr, "", req, e)
		writeErr(w, e)
		return
	}
	s.mu.Lock()
	var in []wire.TelCdrInfo
	for _, c := range s.calls {
		if c.Time >= req.StartTimeStamp && c.Time <= req.EndTimeStamp {
			in = append(in, c)
		}
	}
	s.mu.Unlock()
	sort.SliceStable(in, func(i, j int) bool { return in[i].Time < in[j].Time })
	from := min(len(in), req.PageNumber*req.PageSize)
	page := in[from:min(len(in), from+req.PageSize)]
	s.env.Record(Vendor, OpDescribeTelCdr, "", req, nil)
	writeAPI(w, map[string]any{"Response": map[string]any{"TotalCount": len(in), "TelCdrList": append([]wire.TelCdrInfo{}, page...),
		"RequestId": uuid.NewString()}})
}
