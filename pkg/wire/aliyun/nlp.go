package aliyun

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"
)

// NLP (alinlp 2020-06-29) constants: the Chinese sentiment analysis GetSaChGeneral, an RPC
// style API signed with V1 (HMAC-SHA1), which the sentiment connector calls and the sandbox
// simulates.
const (
	NLPHost              = "alinlp.cn-hangzhou.aliyuncs.com"
	NLPVersion           = "2020-06-29"
	NLPServiceCode       = "alinlp"
	ActionGetSaChGeneral = "GetSaChGeneral"
	// MaxSaText is how many characters of Text GetSaChGeneral reads.
	MaxSaText = 1000
)

// GetSaChGeneral's labels.
const (
	SaPositive = "正面"
	SaNegative = "负面"
	SaNeutral  = "中性"
)

// ErrMalformedResponse is wrapped by ParseGetSaChGeneral for an answer that is not the
// documented shape.
var ErrMalformedResponse = errors.New("aliyun: malformed response")

// RPCParams returns the common parameters of a V1-signed RPC call (JSON answers), to which the
// caller adds the action's own and then Signature (SignV1).
func RPCParams(action, version, accessKeyID, nonce string, at time.Time) url.Values {
	return url.Values{
		"Action": {action}, "Version": {version}, "Format": {"JSON"}, "AccessKeyId": {accessKeyID},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureVersion": {"1.0"}, "SignatureNonce": {nonce},
		"Timestamp": {FormatTimestamp(at)},
	}
}

// GetSaChGeneralResponse is GetSaChGeneral's answer. Data is itself JSON, as a string (SaData).
type GetSaChGeneralResponse struct {
	RequestID string `json:"RequestId"`
	Data      string `json:"Data"`
}

// SaData is the JSON inside GetSaChGeneralResponse.Data.
type SaData struct {
	Result  SaResult `json:"result"`
	Success bool     `json:"success"`
}

// SaResult is the sentiment of the text: a label (正面, 负面, 中性) and the probabilities of
// positive and negative, four decimals.
type SaResult struct {
	PositiveProb float64 `json:"positive_prob"`
	Sentiment    string  `json:"sentiment"`
	NegativeProb float64 `json:"negative_prob"`
}

// ParseGetSaChGeneral decodes a successful (HTTP 200) GetSaChGeneral answer and the JSON in its
// Data. Anything else — no Data, Data that is not the documented JSON, success false, a label
// other than 正面, 负面 or 中性, a probability outside [0, 1] — fails with ErrMalformedResponse.
// Error answers (HTTP 4xx/5xx) are ErrorResponse.
func ParseGetSaChGeneral(body []byte) (requestID string, r SaResult, err error) {
	var resp GetSaChGeneralResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return "", SaResult{}, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
	}
	if resp.Data == "" {
		return resp.RequestID, SaResult{}, fmt.Errorf("%w: no Data", ErrMalformedResponse)
	}
	var d SaData
	if err := json.Unmarshal([]byte(resp.Data), &d); err != nil {
		return resp.RequestID, SaResult{}, fmt.Errorf("%w: Data: %w", ErrMalformedResponse, err)
	}
	if !d.Success {
		return resp.RequestID, d.Result, fmt.Errorf("%w: Data says success false", ErrMalformedResponse)
	}
	switch d.Result.Sentiment {
	case SaPositive, SaNegative, SaNeutral:
	default:
		return resp.RequestID, d.Result, fmt.Errorf("%w: sentiment %q", ErrMalformedResponse, d.Result.Sentiment)
	}
	for _, p := range []float64{d.Result.PositiveProb, d.Result.NegativeProb} {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return resp.RequestID, d.Result, fmt.Errorf("%w: probability %v outside [0, 1]", ErrMalformedResponse, p)
		}
	}
	return resp.RequestID, d.Result, nil
}
