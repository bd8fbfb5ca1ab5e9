// Package tencentnlp simulates Tencent Cloud NLP's AnalyzeSentiment (nlp 2019-04-08) for the
// sandbox.
//
// POST /sandbox/tencentnlp/ (the endpoint https://nlp.tencentcloudapi.com/ under the sandbox
// prefix), dispatched by X-TC-Action, with the TC3-HMAC-SHA256 signature verified as the API
// gateway does (pkg/wire/tencent.Verify with service nlp: content-type and host signed, the
// credential's date the UTC date of X-TC-Timestamp, five minutes of skew). Every answer is HTTP
// 200 with {"Response":{...}}: the three class probabilities and Sentiment, or Error with
// AuthFailure.SignatureFailure, AuthFailure.SignatureExpire, AuthFailure.SecretIdNotFound,
// AuthFailure.InvalidAuthorization, InvalidAction, NoSuchVersion, UnsupportedRegion,
// InvalidParameter, InvalidParameterValue (empty Text, or more than 200 characters).
// The label is decided deterministically by the built-in analyser (sim.Sentiment). Injected
// faults answer their code as the API error (FailedOperation.ResourceBusy,
// FailedOperation.RequestTimeout, InternalError.ServiceError, RequestLimitExceeded, ...; ""
// is InternalError). Every call is recorded with Env.Record("tencentnlp", "AnalyzeSentiment").
package tencentnlp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/tencent"
)

// Vendor is the simulator's name: routes under /sandbox/tencentnlp, fault keys "tencentnlp <op>".
const Vendor = "tencentnlp"

// OpAnalyzeSentiment is the fault key and record op ("tencentnlp AnalyzeSentiment").
const OpAnalyzeSentiment = "AnalyzeSentiment"

// Config configures the simulator.
type Config struct {
	// SecretID and SecretKey are the key pair the simulator issued.
	SecretID, SecretKey string
	// Window bounds X-TC-Timestamp skew; default 5m.
	Window time.Duration
	// Now is the simulator's clock; default time.Now.
	Now func() time.Time
}

// Sim is a running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, errors.New("tencentnlp simulator: needs a key pair (SENTIMENT_TENCENT_SECRET_ID and SENTIMENT_TENCENT_SECRET_KEY)")
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpAnalyzeSentiment, Pattern: "POST /{$}", Handler: s.serve, Fail: s.fail})
	return s, nil
}

var messages = tencent.GatewayMessages.With(sim.Messages{
	"InvalidParameterValue":          "The parameter value is invalid.",
	"InternalError.ServiceError":     "Service error.",
	"FailedOperation.ResourceBusy":   "Resource busy.",
	"FailedOperation.RequestTimeout": "Backend request timed out.",
	"FailedOperation.RpcFail":        "RPC request failed.",
})

var regions = map[string]bool{"ap-guangzhou": true, "ap-beijing": true, "ap-shanghai": true}

func writeErr(w http.ResponseWriter, e *sim.APIError) {
	sim.WriteJSON(w, http.StatusOK, "application/json", wire.AnalyzeSentimentResponse{Response: wire.SentimentResult{
		Error: &wire.Error{Code: e.Code, Message: e.Message}, RequestID: uuid.NewString()}})
}

// Record is the Data of an AnalyzeSentiment record.
type Record struct {
	Text      string `json:"Text"`
	Sentiment string `json:"Sentiment,omitempty"`
	SecretID  string `json:"SecretId,omitempty"`
}

func (s *Sim) secret(id string) (string, bool) { return s.cfg.SecretKey, id == s.cfg.SecretID }

// parse verifies the request and decodes its Text.
func (s *Sim) parse(r *http.Request) (text, secretID string, e *sim.APIError) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return "", "", messages.Err("InvalidParameter", "body: "+err.Error())
	}
	v, err := wire.Verify(r, body, wire.NLPService, s.secret, s.cfg.Now(), s.cfg.Window)
	switch {
	case errors.Is(err, wire.ErrSecretIDNotFound):
		return "", "", messages.Err("AuthFailure.SecretIdNotFound")
	case errors.Is(err, wire.ErrExpired):
		return "", "", messages.Err("AuthFailure.SignatureExpire")
	case errors.Is(err, wire.ErrSignature):
		return "", v.SecretID, messages.Err("AuthFailure.SignatureFailure")
	case err != nil:
		return "", "", messages.Err("AuthFailure.InvalidAuthorization", err.Error())
	}
	switch {
	case r.Header.Get(wire.HeaderAction) != wire.ActionAnalyzeSentiment:
		return "", v.SecretID, messages.Err("InvalidAction")
	case r.Header.Get(wire.HeaderVersion) != wire.NLPVersion:
		return "", v.SecretID, messages.Err("NoSuchVersion")
	case r.Header.Get(wire.HeaderRegion) != "" && !regions[r.Header.Get(wire.HeaderRegion)]:
		return "", v.SecretID, messages.Err("UnsupportedRegion")
	}
	var req wire.AnalyzeSentimentRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "", v.SecretID, messages.Err("InvalidParameter", err.Error())
	}
	if n := utf8.RuneCountInString(req.Text); n == 0 || n > wire.MaxSentimentText {
		return req.Text, v.SecretID, messages.Err("InvalidParameterValue", "Text must be 1 to 200 characters")
	}
	return req.Text, v.SecretID, nil
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	text, id, e := s.parse(r)
	if e != nil {
		s.env.Record(Vendor, OpAnalyzeSentiment, "", Record{Text: text, SecretID: id}, e)
		writeErr(w, e)
		return
	}
	label, pos, neu, neg := sim.Sentiment(text)
	s.env.Record(Vendor, OpAnalyzeSentiment, "", Record{Text: text, Sentiment: label, SecretID: id}, nil)
	sim.WriteJSON(w, http.StatusOK, "application/json", wire.AnalyzeSentimentResponse{Response: wire.SentimentResult{
		Positive: pos, Neutral: neu, Negative: neg, Sentiment: label, RequestID: uuid.NewString()}})
}

// fail answers an injected fault as the API error ("" is InternalError).
func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	if code == "" {
		code = "InternalError"
	}
	e := messages.Err(code)
	s.env.Record(Vendor, OpAnalyzeSentiment, "", map[string]string{"Code": code, "injected": "true"}, e)
	writeErr(w, e)
}
