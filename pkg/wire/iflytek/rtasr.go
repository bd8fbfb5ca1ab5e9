// Package iflytek is the wire format of iFlytek's real-time transcription (实时语音转写, RTASR)
// WebSocket API that both the voice connector and the sandbox simulator speak: the handshake
// signature (signa), the server's text frames and the double-encoded result data, the audio
// framing and the end marker, and the vendor's error codes.
package iflytek

import (
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // signa is defined over an MD5
	"crypto/sha1" //nolint:gosec // and an HMAC-SHA1
	"encoding/base64"
	"encoding/hex"
)

// Signa is the handshake signature: base64(HMAC-SHA1(key apiKey, lowercase hex MD5(appid+ts))).
// The HMAC's message is the 32-character hex text, not the raw digest.
func Signa(appID, ts, apiKey string) string {
	sum := md5.Sum([]byte(appID + ts)) //nolint:gosec // the vendor's scheme
	m := hmac.New(sha1.New, []byte(apiKey))
	m.Write([]byte(hex.EncodeToString(sum[:])))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Audio framing: 16 kHz 16-bit mono PCM, FrameBytes (40 ms) per binary frame, then EndMarker
// (the SDK sends it as text; the server accepts text or binary).
const (
	SampleRate = 16000
	FrameBytes = 1280
	EndMarker  = `{"end": true}`
)

// Actions of the server's text frames.
const (
	ActionStarted = "started"
	ActionResult  = "result"
	ActionError   = "error"
)

// Error codes (strings on the wire; "0" is success).
const (
	CodeOK             = "0"
	CodeIllegalAccess  = "10105" // bad apiKey, IP not allowed, bad ts
	CodeInvalidParam   = "10106" // missing parameter, bad format
	CodeIllegalParam   = "10107" // value out of range
	CodeNoLicense      = "10110" // not licensed (a lang not enabled); also an illegal signa
	CodeEngine         = "10700"
	CodeWSRead         = "10205"
	CodeOverMaxConnect = "10800"
)

// Message is a text frame of the server.
type Message struct {
	Action string `json:"action"`
	Code   string `json:"code"`
	Data   string `json:"data"`
	Desc   string `json:"desc"`
	SID    string `json:"sid"`
}

// Data is the decoded Data of a transcription result (it travels JSON-encoded in a string).
type Data struct {
	CN    CN     `json:"cn"`
	SegID *int   `json:"seg_id"`
	Biz   string `json:"biz,omitempty"` // "trans" for translation results, which have another shape
}

// CN holds the sentence.
type CN struct {
	ST ST `json:"st"`
}

// ST is a sentence: BG and ED in ms within the stream (strings; ED is "0" in a partial), Type
// "0" final or "1" partial.
type ST struct {
	BG   string `json:"bg"`
	ED   string `json:"ed"`
	Type string `json:"type"`
	RT   []RT   `json:"rt"`
}

// RT is a run of words.
type RT struct {
	WS []WS `json:"ws"`
}

// WS is one word with its candidates; WB and WE in 10 ms frames from the sentence start.
type WS struct {
	CW []CW `json:"cw"`
	WB int  `json:"wb"`
	WE int  `json:"we"`
}

// CW is a candidate: W the text, WP n (word), s (filler) or p (punctuation).
type CW struct {
	W  string `json:"w"`
	WP string `json:"wp"`
}

// Text concatenates the first candidate of every word.
func (s ST) Text() string {
	var b []byte
	for _, rt := range s.RT {
		for _, ws := range rt.WS {
			if len(ws.CW) > 0 {
				b = append(b, ws.CW[0].W...)
			}
		}
	}
	return string(b)
}
