// Package iflytek simulates iFlytek's real-time transcription (实时语音转写, RTASR) WebSocket API
// (vendors part 2 §1), mounted on a sim.Env:
//
//	GET /sandbox/iflytek/v1/ws?appid=..&ts=..&signa=..[&lang=..&pd=..]   op "rtasr"
//
// The handshake is checked as the vendor does: an unknown appid or a ts more than 5 minutes off
// is answered {"action":"error","code":"10105"}, a wrong signa (base64 HMAC-SHA1 of the hex MD5
// of appid+ts under the APIKey) or a lang the app has no licence for {"code":"10110"}, each
// followed by the close of the connection. Otherwise the server says {"action":"started"}, takes
// 16 kHz 16-bit PCM in binary frames and {"end": true} (text or binary), and answers what the
// sandbox's recogniser (package speech) hears as result frames whose data is the double-encoded
// {"cn":{"st":{"bg","ed","type","rt":[...]}},"seg_id"}: partials (type "1", ed "0") then a final
// (type "0"). 15 s without audio ends the stream with error 10700.
//
// Injected faults (sim.Fault.Code): "down" refuses the handshake with 503; "cut" or "cut:<d>"
// drops the connection after <d> of audio (1 s); any other code (e.g. "10800", over the
// connection limit) is an error frame with that code after the upgrade; "" is 10700. Latency
// delays the handshake.
package iflytek

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/wire/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "iflytek"

// OpRTASR is the op of the transcription stream (fault key "iflytek rtasr").
const OpRTASR = "rtasr"

// Config is the simulated app.
type Config struct {
	AppID, APIKey string
	// Langs are the lang values the app is licensed for; default cn and en (dialects such as
	// the console's Cantonese value must be listed to be accepted).
	Langs []string
	// Idle ends a stream without audio; default 15 s.
	Idle time.Duration
	Now  func() time.Time
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
	sid atomic.Int64
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AppID == "" || cfg.APIKey == "" {
		return nil, errors.New("iflytek sandbox: AppID and APIKey are required")
	}
	if len(cfg.Langs) == 0 {
		cfg.Langs = []string{"cn", "en"}
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpRTASR, Pattern: "GET /v1/ws",
		Handler: func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, 0) },
		Fail:    s.fail})
	return s, nil
}

func (s *Sim) fail(w http.ResponseWriter, r *http.Request, code string) {
	if code == speech.FaultDown {
		speech.Refuse(w, http.StatusServiceUnavailable, `{"message":"service unavailable"}`)
		return
	}
	if cut, ok := speech.CutAfter(code); ok {
		s.serve(w, r, cut)
		return
	}
	if code == "" {
		code = iflytek.CodeEngine
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.refuse(r.Context(), conn, code, "injected fault")
}

func (s *Sim) newSID() string { return fmt.Sprintf("rta%08x@sandbox", s.sid.Add(1)) }

// refuse sends an error frame and closes.
func (s *Sim) refuse(ctx context.Context, conn *websocket.Conn, code, desc string) {
	_ = s.send(ctx, conn, iflytek.Message{Action: iflytek.ActionError, Code: code, Desc: desc, SID: s.newSID()}) // the close below ends it either way
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

func (s *Sim) send(ctx context.Context, conn *websocket.Conn, m iflytek.Message) error {
	b, _ := json.Marshal(m)
	return conn.Write(ctx, websocket.MessageText, b)
}

// check returns the error code and description of a bad handshake ("" when it is good).
func (s *Sim) check(r *http.Request) (code, desc string) {
	q := r.URL.Query()
	appID, ts, signa := q.Get("appid"), q.Get("ts"), q.Get("signa")
	if appID == "" || ts == "" || signa == "" {
		return iflytek.CodeInvalidParam, "invalid parameter|missing appid, ts or signa"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if appID != s.cfg.AppID || err != nil || s.cfg.Now().Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return iflytek.CodeIllegalAccess, "illegal access|illegal appid or ts"
	}
	if signa != iflytek.Signa(appID, ts, s.cfg.APIKey) {
		return iflytek.CodeNoLicense, "invalid authorization|illegal signa"
	}
	if lang := q.Get("lang"); lang != "" && !slices.Contains(s.cfg.Langs, lang) {
		return iflytek.CodeNoLicense, "no license|lang " + lang + " is not enabled"
	}
	return "", ""
}

// sessionRecord is what the simulator records of a stream.
type sessionRecord struct {
	SID     string   `json:"sid"`
	Lang    string   `json:"lang,omitempty"`
	PD      string   `json:"pd,omitempty"`
	Bytes   int64    `json:"bytes"`
	Finals  []string `json:"finals"`
	Matches []string `json:"matches"`
	End     string   `json:"end"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request, cut time.Duration) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx := r.Context()
	rec := sessionRecord{SID: s.newSID(), Lang: r.URL.Query().Get("lang"), PD: r.URL.Query().Get("pd")}
	if code, desc := s.check(r); code != "" {
		s.refuse(ctx, conn, code, desc)
		s.env.Record(Vendor, OpRTASR, s.cfg.AppID, rec, fmt.Errorf("%s %s", code, desc))
		return
	}
	if s.send(ctx, conn, iflytek.Message{Action: iflytek.ActionStarted, Code: iflytek.CodeOK, Desc: "success", SID: rec.SID}) != nil {
		_ = conn.CloseNow()
		return
	}
	sess := &speech.Session{Conn: conn, Rec: speech.NewRecognizer(speech.Catalogue()), Rate: iflytek.SampleRate,
		Idle: s.cfg.Idle, Cut: cut}
	err = sess.Run(ctx, func(typ websocket.MessageType, b []byte) (speech.Message, error) {
		if isEnd(b) {
			return speech.Message{End: true}, nil
		}
		if typ == websocket.MessageText {
			return speech.Message{}, nil // the vendor ignores other text
		}
		return speech.Message{Audio: b}, nil
	}, func(res []speech.Result) error {
		for _, x := range res {
			if x.Final {
				rec.Finals, rec.Matches = append(rec.Finals, x.Text), append(rec.Matches, x.Match)
			}
			if err := s.send(ctx, conn, resultMessage(rec.SID, x)); err != nil {
				return err
			}
		}
		return nil
	})
	rec.Bytes = sess.Bytes
	switch {
	case err == nil:
		rec.End = "end"
		_ = conn.Close(websocket.StatusNormalClosure, "")
	case errors.Is(err, speech.ErrIdle):
		rec.End = "idle"
		s.refuse(ctx, conn, iflytek.CodeEngine, "engine error|no audio for 15s")
	case errors.Is(err, speech.ErrCut):
		rec.End = "cut"
	default:
		rec.End = "error: " + err.Error()
		_ = conn.CloseNow()
	}
	s.env.Record(Vendor, OpRTASR, s.cfg.AppID, rec, nil)
}

// isEnd reports whether a message is the end marker, {"end": true}, in any spacing.
func isEnd(b []byte) bool {
	if len(b) > 64 || len(b) == 0 || b[0] != '{' {
		return false
	}
	var m struct {
		End bool `json:"end"`
	}
	return json.Unmarshal(b, &m) == nil && m.End
}

// resultMessage is a result frame of x.
func resultMessage(sid string, x speech.Result) iflytek.Message {
	seg := x.Segment
	st := iflytek.ST{BG: strconv.FormatInt(x.Begin.Milliseconds(), 10), ED: "0", Type: "1",
		RT: []iflytek.RT{{WS: []iflytek.WS{{CW: []iflytek.CW{{W: x.Text, WP: "n"}}}}}}}
	if x.Final {
		st.ED, st.Type = strconv.FormatInt(x.End.Milliseconds(), 10), "0"
		st.RT[0].WS[0].WE = int((x.End - x.Begin).Milliseconds() / 10)
	}
	data, _ := json.Marshal(iflytek.Data{CN: iflytek.CN{ST: st}, SegID: &seg})
	return iflytek.Message{Action: iflytek.ActionResult, Code: iflytek.CodeOK, Data: string(data) + "\n", Desc: "success", SID: sid}
}
