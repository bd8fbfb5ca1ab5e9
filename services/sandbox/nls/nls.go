// Package nls simulates Aliyun Intelligent Speech Interaction (智能语音交互, NLS; vendors part 2
// §3), mounted on a sim.Env:
//
//	GET|POST /sandbox/nls/meta/     op "CreateToken"        (nls-meta.cn-shanghai.aliyuncs.com)
//	GET      /sandbox/nls/ws/v1     op "SpeechTranscriber"  (nls-gateway-cn-shanghai.aliyuncs.com)
//	POST|GET /sandbox/nls/filetrans/ ops "SubmitTask", "GetTaskResult" (recording files, filetrans.go)
//	GET|POST /sandbox/nls/stream/v1/tts op "SpeechSynthesizer" (TTS RESTful, tts.go)
//
// CreateToken checks the RPC V1 signature (HMAC-SHA1 with AccessKeySecret+"&"), the action,
// version and a timestamp within 15 minutes, and issues a token valid for a day; a bad
// signature is 400 SignatureDoesNotMatch, an unknown key 404 InvalidAccessKeyId.NotFound. The
// gateway takes the token in X-NLS-Token or ?token=; after the upgrade an unknown token gets
// TaskFailed 40000001, a wrong appkey 40020105, a format other than pcm or a rate other than
// 8000/16000 40000003. Then StartTranscription → TranscriptionStarted; binary audio goes to the
// sandbox's recogniser (package speech), whose results come back as SentenceBegin,
// TranscriptionResultChanged and SentenceEnd; StopTranscription → TranscriptionCompleted. 10 s
// without a message is TaskFailed 40000004.
//
// Injected faults (sim.Fault.Code) on "nls SpeechTranscriber": "down" refuses the handshake with
// 503; "cut" or "cut:<d>" drops the connection after <d> of audio (1 s); another code is a
// TaskFailed with that status ("" = 50000000). On "nls CreateToken": a 500 ServiceUnavailable
// ("" or a status).
package nls

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "nls"

// Ops (fault keys "nls CreateToken", "nls SpeechTranscriber").
const (
	OpToken       = "CreateToken"
	OpTranscriber = "SpeechTranscriber"
)

// Config is the simulated account and project.
type Config struct {
	AccessKeyID, AccessKeySecret, AppKey string
	// Idle ends a stream without messages; default 10 s.
	Idle time.Duration
	// FileTransDelay is the least time a recording-file task takes (filetrans.go); default 1s.
	FileTransDelay time.Duration
	Now            func() time.Time
}

// Sim is the running simulator.
type Sim struct {
	env    *sim.Env
	cfg    Config
	mu     sync.Mutex
	tokens map[string]time.Time
	files  map[string]*fileTask // recording-file tasks by TaskId
	g      *sim.Group
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" || cfg.AppKey == "" {
		return nil, errors.New("nls sandbox: AccessKeyID, AccessKeySecret and AppKey are required")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FileTransDelay == 0 {
		cfg.FileTransDelay = time.Second
	}
	s := &Sim{env: env, cfg: cfg, tokens: map[string]time.Time{}, files: map[string]*fileTask{}, g: sim.NewGroup()}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpToken, Pattern: "/meta/{$}", Handler: s.createToken,
		Fail: func(w http.ResponseWriter, _ *http.Request, code string) {
			st, _ := sim.FaultStatus(code)
			s.popError(w, st, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
		}})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpTranscriber, Pattern: "GET /ws/v1",
		Handler: func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, 0) }, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpTTS, Pattern: "/stream/v1/tts", Handler: s.tts, Fail: s.ttsFail}) // tts.go
	s.mountFileTrans()
	return s, nil
}

func hex32() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Sim) popError(w http.ResponseWriter, status int, code, msg string) {
	sim.WriteJSON(w, status, "application/json;charset=utf-8", aliyun.TokenResponse{RequestID: hex32(), Code: code, Message: msg})
}

func (s *Sim) createToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.popError(w, http.StatusMethodNotAllowed, "UnsupportedHTTPMethod", "Specified method is not supported.")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.popError(w, http.StatusBadRequest, "InvalidParameter", err.Error())
		return
	}
	p := r.Form
	_, err := aliyun.VerifyV1(r.Method, p, func(id string) (string, bool) {
		return s.cfg.AccessKeySecret, id == s.cfg.AccessKeyID
	})
	ts, terr := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	switch {
	case errors.Is(err, aliyun.ErrUnknownAccessKey):
		s.popError(w, http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	case errors.Is(err, aliyun.ErrSignature):
		s.popError(w, http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature does not match our calculation. server string to sign is:"+aliyun.StringToSignV1(r.Method, p))
	case err != nil:
		s.popError(w, http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	case terr != nil || s.cfg.Now().Sub(ts).Abs() > 15*time.Minute:
		s.popError(w, http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	case p.Get("Action") != aliyun.NLSTokenAction || p.Get("Version") != aliyun.NLSTokenVersion:
		s.popError(w, http.StatusBadRequest, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	default:
		tok, exp := hex32(), s.cfg.Now().Add(24*time.Hour)
		s.mu.Lock()
		s.tokens[tok] = exp
		s.mu.Unlock()
		resp := aliyun.TokenResponse{NlsRequestID: hex32(), RequestID: hex32(),
			Token: &aliyun.NLSToken{ExpireTime: exp.Unix(), ID: tok, UserID: "1000000000000000"}}
		sim.WriteJSON(w, http.StatusOK, "application/json;charset=utf-8", resp)
		s.env.Record(Vendor, OpToken, s.cfg.AccessKeyID, map[string]string{"token": tok}, nil)
		return
	}
	s.env.Record(Vendor, OpToken, p.Get("AccessKeyId"), map[string]string{"action": p.Get("Action")}, errors.New("refused"))
}

func (s *Sim) validToken(t string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[t]
	return ok && s.cfg.Now().Before(exp)
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
	status, err := strconv.Atoi(code)
	if err != nil {
		status = aliyun.NLSStatusServer
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.taskFailed(r.Context(), conn, "", status, "injected fault")
}

// stream is one transcription's state.
type stream struct {
	conn   *websocket.Conn
	task   string
	appKey string
}

func (st *stream) event(ctx context.Context, name string, status int, text string, payload any) error {
	m := aliyun.NLSMessage{Header: aliyun.NLSHeader{MessageID: hex32(), TaskID: st.task, Namespace: aliyun.NLSNamespace,
		Name: name, Status: status, StatusText: text}}
	if payload != nil {
		m.Payload, _ = json.Marshal(payload)
	}
	b, _ := json.Marshal(m)
	return st.conn.Write(ctx, websocket.MessageText, b)
}

func (s *Sim) taskFailed(ctx context.Context, conn *websocket.Conn, task string, status int, text string) {
	st := &stream{conn: conn, task: task}
	_ = st.event(ctx, aliyun.NLSTaskFailed, status, text, nil)
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

type sessionRecord struct {
	Task    string   `json:"task_id"`
	Rate    int      `json:"sample_rate"`
	Bytes   int64    `json:"bytes"`
	Finals  []string `json:"finals"`
	Matches []string `json:"matches"`
	End     string   `json:"end"`
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request, cut time.Duration) {
	tok := r.Header.Get(aliyun.NLSTokenHeader)
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ctx := r.Context()
	if !s.validToken(tok) {
		s.taskFailed(ctx, conn, "", aliyun.NLSStatusBadToken, fmt.Sprintf("Gateway:ACCESS_DENIED:The token '%s' is invalid!", tok))
		s.env.Record(Vendor, OpTranscriber, s.cfg.AppKey, nil, errors.New("invalid token"))
		return
	}
	// The first message must be StartTranscription.
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Idle)
	_, b, err := conn.Read(rctx)
	cancel()
	if err != nil {
		s.taskFailed(ctx, conn, "", aliyun.NLSStatusIdle, "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time")
		return
	}
	var m aliyun.NLSMessage
	var start aliyun.NLSStartPayload
	if json.Unmarshal(b, &m) != nil || m.Header.Name != aliyun.NLSStart || m.Header.Namespace != aliyun.NLSNamespace ||
		json.Unmarshal(m.Payload, &start) != nil {
		s.taskFailed(ctx, conn, m.Header.TaskID, aliyun.NLSStatusInvalid, "Gateway:MESSAGE_INVALID:StartTranscription expected")
		return
	}
	st := &stream{conn: conn, task: m.Header.TaskID, appKey: m.Header.AppKey}
	rec := sessionRecord{Task: st.task, Rate: start.SampleRate}
	switch {
	case m.Header.AppKey != s.cfg.AppKey:
		s.taskFailed(ctx, conn, st.task, 40020105, "Meta:APPKEY_NOT_EXIST:Appkey not exist!")
		return
	case start.Format != "pcm" || (start.SampleRate != 8000 && start.SampleRate != 16000):
		s.taskFailed(ctx, conn, st.task, aliyun.NLSStatusParam, "Gateway:PARAMETER_INVALID:format must be pcm, sample_rate 8000 or 16000")
		return
	}
	if st.event(ctx, aliyun.NLSStarted, aliyun.NLSStatusOK, aliyun.NLSStatusTextSuccess, nil) != nil {
		_ = conn.CloseNow()
		return
	}
	sess := &speech.Session{Conn: conn, Rec: speech.NewRecognizer(speech.Catalogue()), Rate: start.SampleRate, Idle: s.cfg.Idle, Cut: cut}
	begun := -1
	err = sess.Run(ctx, func(typ websocket.MessageType, b []byte) (speech.Message, error) {
		if typ == websocket.MessageBinary {
			return speech.Message{Audio: b}, nil
		}
		var c aliyun.NLSMessage
		if json.Unmarshal(b, &c) != nil {
			return speech.Message{}, errInvalid
		}
		return speech.Message{End: c.Header.Name == aliyun.NLSStop}, nil
	}, func(res []speech.Result) error {
		for _, x := range res {
			p := aliyun.NLSResult{Index: x.Segment + 1, Time: x.End.Milliseconds(), BeginTime: x.Begin.Milliseconds(),
				Result: x.Text, Words: []any{}}
			if x.Segment != begun {
				begun = x.Segment
				if err := st.event(ctx, aliyun.NLSSentenceBegin, aliyun.NLSStatusOK, aliyun.NLSStatusTextSuccess,
					map[string]any{"index": p.Index, "time": p.BeginTime}); err != nil {
					return err
				}
			}
			name := aliyun.NLSResultChanged
			if x.Final {
				name, p.Confidence = aliyun.NLSSentenceEnd, &x.Confidence
				rec.Finals, rec.Matches = append(rec.Finals, x.Text), append(rec.Matches, x.Match)
			}
			if err := st.event(ctx, name, aliyun.NLSStatusOK, aliyun.NLSStatusTextSuccess, p); err != nil {
				return err
			}
		}
		return nil
	})
	rec.Bytes = sess.Bytes
	switch {
	case err == nil:
		rec.End = "end"
		_ = st.event(ctx, aliyun.NLSCompleted, aliyun.NLSStatusOK, aliyun.NLSStatusTextSuccess, nil)
		_ = conn.Close(websocket.StatusNormalClosure, "")
	case errors.Is(err, speech.ErrIdle):
		rec.End = "idle"
		s.taskFailed(ctx, conn, st.task, aliyun.NLSStatusIdle, "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time")
	case errors.Is(err, speech.ErrCut):
		rec.End = "cut"
	case errors.Is(err, errInvalid):
		rec.End = "invalid message"
		s.taskFailed(ctx, conn, st.task, aliyun.NLSStatusInvalid, "Gateway:MESSAGE_INVALID:invalid message")
	default:
		rec.End = "error: " + err.Error()
		_ = conn.CloseNow()
	}
	s.env.Record(Vendor, OpTranscriber, s.cfg.AppKey, rec, nil)
}

var errInvalid = errors.New("invalid message")

// Close stops the recording-file tasks in progress.
func (s *Sim) Close() { s.g.Close() }
