package aliyun

import (
	"encoding/json"
	"net/url"
	"time"
)

// Aliyun Intelligent Speech Interaction (智能语音交互, NLS): the CreateToken OpenAPI call (RPC
// V1 signature) and the real-time transcription WebSocket (namespace SpeechTranscriber).

// CreateToken's fixed parameters.
const (
	NLSTokenAction  = "CreateToken"
	NLSTokenVersion = "2019-02-28"
	NLSRegion       = "cn-shanghai"
)

// CreateTokenParams returns the signed query of a CreateToken GET at ts with nonce.
func CreateTokenParams(accessKeyID, secret string, ts time.Time, nonce string) url.Values {
	p := url.Values{
		"AccessKeyId": {accessKeyID}, "Action": {NLSTokenAction}, "Version": {NLSTokenVersion}, "Format": {"JSON"},
		"RegionId": {NLSRegion}, "Timestamp": {ts.UTC().Format("2006-01-02T15:04:05Z")}, "SignatureMethod": {"HMAC-SHA1"},
		"SignatureVersion": {"1.0"}, "SignatureNonce": {nonce},
	}
	p.Set("Signature", SignV1("GET", p, secret))
	return p
}

// TokenResponse is CreateToken's answer; ExpireTime is in unix seconds.
type TokenResponse struct {
	NlsRequestID string    `json:"NlsRequestId,omitempty"`
	RequestID    string    `json:"RequestId,omitempty"`
	Token        *NLSToken `json:"Token,omitempty"`
	ErrMsg       string    `json:"ErrMsg"`
	Code         string    `json:"Code,omitempty"`
	Message      string    `json:"Message,omitempty"`
}

// NLSToken is the token CreateToken issued.
type NLSToken struct {
	ExpireTime int64  `json:"ExpireTime"`
	ID         string `json:"Id"`
	UserID     string `json:"UserId"`
}

// The transcriber's namespace, commands and events.
const (
	NLSNamespace = "SpeechTranscriber"

	NLSStart = "StartTranscription"
	NLSStop  = "StopTranscription"

	NLSStarted       = "TranscriptionStarted"
	NLSSentenceBegin = "SentenceBegin"
	NLSResultChanged = "TranscriptionResultChanged"
	NLSSentenceEnd   = "SentenceEnd"
	NLSCompleted     = "TranscriptionCompleted"
	NLSTaskFailed    = "TaskFailed"
)

// NLS status codes (header.status).
const (
	NLSStatusOK           = 20000000
	NLSStatusClient       = 40000000
	NLSStatusBadToken     = 40000001
	NLSStatusInvalid      = 40000002
	NLSStatusParam        = 40000003
	NLSStatusIdle         = 40000004
	NLSStatusTooMany      = 40000005
	NLSStatusServer       = 50000000
	NLSTokenHeader        = "X-NLS-Token"
	NLSStatusTextSuccess  = "Gateway:SUCCESS:Success."
	NLSMaxSentenceSilence = 800
)

// NLSHeader is the header of every command and event.
type NLSHeader struct {
	AppKey     string `json:"appkey,omitempty"`
	MessageID  string `json:"message_id"`
	TaskID     string `json:"task_id"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Status     int    `json:"status,omitempty"`
	StatusText string `json:"status_text,omitempty"`
}

// NLSStartPayload is StartTranscription's payload.
type NLSStartPayload struct {
	Format                         string `json:"format"`
	SampleRate                     int    `json:"sample_rate"`
	EnableIntermediateResult       bool   `json:"enable_intermediate_result"`
	EnablePunctuationPrediction    bool   `json:"enable_punctuation_prediction"`
	EnableInverseTextNormalization bool   `json:"enable_inverse_text_normalization"`
	MaxSentenceSilence             int    `json:"max_sentence_silence,omitempty"`
}

// NLSMessage is a command (client → server) or an event (server → client).
type NLSMessage struct {
	Header  NLSHeader       `json:"header"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// NLSResult is the payload of SentenceBegin, TranscriptionResultChanged and SentenceEnd: Index
// the sentence number from 1, Time the current (end) offset and BeginTime the sentence start,
// in ms.
type NLSResult struct {
	Index      int      `json:"index"`
	Time       int64    `json:"time"`
	BeginTime  int64    `json:"begin_time"`
	Result     string   `json:"result"`
	Confidence *float64 `json:"confidence,omitempty"`
	Words      []any    `json:"words"`
	Status     int      `json:"status"`
	SentenceID string   `json:"sentence_id,omitempty"`
}
