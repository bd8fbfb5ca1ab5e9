// Package alinlp simulates Aliyun NLP's GetSaChGeneral (alinlp 2020-06-29), the Chinese
// sentiment analysis, for the sandbox.
//
// GET or POST /sandbox/alinlp/ (the RPC endpoint https://alinlp.cn-hangzhou.aliyuncs.com/ under
// the sandbox prefix), parameters in the query or a form body, signed with RPC signature V1
// (HMAC-SHA1 over the percent-encoded parameters; pkg/wire/aliyun.VerifyV1). Checks and their
// Aliyun errors (HTTP status, Code): a bad signature → 400 SignatureDoesNotMatch (with the
// server's string to sign), an unknown AccessKeyId → 404 InvalidAccessKeyId.NotFound, a
// Timestamp outside 15 minutes → 400 InvalidTimeStamp.Expired, a reused SignatureNonce → 400
// SignatureNonceUsed, missing parts → 400 IncompleteSignature, another Action → 404
// InvalidAction.NotFound, another Version → 400 InvalidVersion, ServiceCode not alinlp or a
// Text empty or over 1000 characters → 400 InvalidParameter. Success is {"RequestId":..,
// "Data":"<JSON string>"} whose Data holds {"result":{"positive_prob","sentiment","negative_prob"},
// "success":true}, sentiment 正面, 负面 or 中性, decided deterministically by the built-in
// analyser (sim.Sentiment). Injected faults answer their code in the gateway's error shape
// (UserStatusInvalid, BasicServiceNotActivated: 400; Throttling.User: 400; ServiceUnavailable:
// 503; "" or InternalError: 500). Every call is recorded with Env.Record("alinlp", "GetSaChGeneral").
package alinlp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name: routes under /sandbox/alinlp, fault keys "alinlp <op>".
const Vendor = "alinlp"

// OpGetSaChGeneral is the fault key and record op ("alinlp GetSaChGeneral").
const OpGetSaChGeneral = "GetSaChGeneral"

// Config configures the simulator.
type Config struct {
	// AccessKeyID and AccessKeySecret are the key the simulator issued.
	AccessKeyID, AccessKeySecret string
	// Window bounds Timestamp skew and how long nonces are remembered; default 15m.
	Window time.Duration
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
}

// Sim is a running simulator.
type Sim struct {
	env    *sim.Env
	cfg    Config
	nonces *sim.Nonces
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("alinlp simulator: needs a key (SENTIMENT_ALIYUN_ACCESS_KEY_ID and SENTIMENT_ALIYUN_ACCESS_KEY_SECRET)")
	}
	if cfg.Window == 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg, nonces: sim.NewNonces(cfg.Window)}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpGetSaChGeneral, Pattern: "/{$}", Handler: s.serve, Fail: s.fail})
	return s, nil
}

var messages = aliyun.GatewayMessages.With(sim.Messages{
	"InvalidParameter":         "The specified parameter is not valid.",
	"UserStatusInvalid":        "The user status is invalid.",
	"BasicServiceNotActivated": "The basic service is not activated.",
})

var statusOf = map[string]int{"InvalidAccessKeyId.NotFound": 404, "InvalidAction.NotFound": 404, "ServiceUnavailable": 503, "InternalError": 500}

func writeErr(w http.ResponseWriter, e *sim.APIError) {
	status := statusOf[e.Code]
	if status == 0 {
		status = http.StatusBadRequest
	}
	id := strings.ToUpper(uuid.NewString())
	sim.WriteJSON(w, status, "application/json;charset=utf-8", wire.ErrorResponse{RequestID: id, HostID: wire.NLPHost, Code: e.Code,
		Message: e.Message, Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(e.Code) + "&product=alinlp&requestId=" + id})
}

// Record is the Data of a GetSaChGeneral record.
type Record struct {
	Text        string `json:"Text"`
	Sentiment   string `json:"sentiment,omitempty"`
	AccessKeyID string `json:"AccessKeyId,omitempty"`
}

func (s *Sim) secret(id string) (string, bool) { return s.cfg.AccessKeySecret, id == s.cfg.AccessKeyID }

// parse reads the parameters (query, plus a form body) and checks signature, timestamp, nonce
// and the action's parameters.
func (s *Sim) parse(r *http.Request) (url.Values, *sim.APIError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, messages.Err("InvalidParameter", "body: "+err.Error())
	}
	params := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") && len(body) > 0 {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, messages.Err("InvalidParameter", "form body: "+err.Error())
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	v, err := wire.VerifyV1(r.Method, params, s.secret)
	if e := aliyun.AuthError(v.StringToSign, err); e != nil {
		return params, e
	}
	at, err := wire.ParseTimestamp(params.Get("Timestamp"))
	if err != nil {
		return params, messages.Err("InvalidTimeStamp.Format")
	}
	now := s.cfg.Now()
	if d := now.Sub(at); d > s.cfg.Window || d < -s.cfg.Window {
		return params, messages.Err("InvalidTimeStamp.Expired")
	}
	switch nonce := params.Get("SignatureNonce"); {
	case nonce == "":
		return params, messages.Err("IncompleteSignature", "SignatureNonce is mandatory.")
	case !s.nonces.Use(nonce, now):
		return params, messages.Err("SignatureNonceUsed")
	}
	switch {
	case params.Get("Action") != wire.ActionGetSaChGeneral:
		return params, messages.Err("InvalidAction.NotFound")
	case params.Get("Version") != wire.NLPVersion:
		return params, messages.Err("InvalidVersion")
	case params.Get("ServiceCode") != wire.NLPServiceCode:
		return params, messages.Err("InvalidParameter", "ServiceCode must be alinlp")
	}
	if n := utf8.RuneCountInString(params.Get("Text")); n == 0 || n > wire.MaxSaText {
		return params, messages.Err("InvalidParameter", "Text must be 1 to 1000 characters")
	}
	return params, nil
}

var labels = map[string]string{"positive": wire.SaPositive, "negative": wire.SaNegative, "neutral": wire.SaNeutral}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	params, e := s.parse(r)
	if e != nil {
		s.env.Record(Vendor, OpGetSaChGeneral, "", Record{Text: params.Get("Text"), AccessKeyID: params.Get("AccessKeyId")}, e)
		writeErr(w, e)
		return
	}
	text := params.Get("Text")
	label, pos, _, neg := sim.Sentiment(text)
	data, _ := json.Marshal(wire.SaData{Result: wire.SaResult{PositiveProb: pos, Sentiment: labels[label], NegativeProb: neg}, Success: true})
	s.env.Record(Vendor, OpGetSaChGeneral, "", Record{Text: text, Sentiment: labels[label], AccessKeyID: params.Get("AccessKeyId")}, nil)
	sim.WriteJSON(w, http.StatusOK, "application/json;charset=utf-8", wire.GetSaChGeneralResponse{RequestID: strings.ToUpper(uuid.NewString()), Data: string(data)})
}

// fail answers an injected fault in the gateway's error shape ("" is InternalError).
func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	if code == "" {
		code = "InternalError"
	}
	e := messages.Err(code)
	s.env.Record(Vendor, OpGetSaChGeneral, "", map[string]string{"Code": code, "injected": "true"}, e)
	writeErr(w, e)
}
