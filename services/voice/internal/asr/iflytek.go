package asr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/wire/iflytek"
)

// IFlytek is iFlytek's real-time transcription (实时语音转写, RTASR) over its WebSocket API:
// the handshake URL carries appid, ts and signa; audio goes as 16 kHz 16-bit PCM in binary
// frames of 1280 bytes (40 ms), the end as {"end": true}; results come as
// {"action":"result","data":"<JSON>"} text frames.
type IFlytek struct {
	// URL is the endpoint, wss://rtasr.xfyun.cn/v1/ws.
	URL           string
	AppID, APIKey string
	// Lang is the lang parameter: cn (Chinese, Chinese-English mixed; default), en, or a dialect
	// enabled in the console (方言, e.g. the value it shows for Cantonese); PD the vertical
	// domain (pd: finance, ecom, ...); both optional.
	Lang, PD string
	// HTTP dials the WebSocket; default http.DefaultClient.
	HTTP *http.Client
	// Now is the clock of ts; default time.Now.
	Now func() time.Time
}

// Name returns "iflytek".
func (*IFlytek) Name() string { return "iflytek" }

// Model returns "rtasr".
func (*IFlytek) Model() string { return "rtasr" }

// HandshakeURL returns the URL of a session started at now.
func (c *IFlytek) HandshakeURL(now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	q := url.Values{"appid": {c.AppID}, "ts": {ts}, "signa": {iflytek.Signa(c.AppID, ts, c.APIKey)}}
	if c.Lang != "" {
		q.Set("lang", c.Lang)
	}
	if c.PD != "" {
		q.Set("pd", c.PD)
	}
	sep := "?"
	if strings.Contains(c.URL, "?") {
		sep = "&"
	}
	return c.URL + sep + q.Encode()
}

// ErrMalformed wraps a vendor message that cannot be decoded.
var ErrMalformed = errors.New("malformed ASR vendor message")

// DecodeRTASR decodes a text frame of the RTASR server. It returns the result of an
// action "result" frame (ok=false for frames that carry none: "started", a translation), a
// *VendorError for an "error" frame, and an error wrapping ErrMalformed for anything else.
func DecodeRTASR(b []byte) (r Result, ok bool, err error) {
	var m iflytek.Message
	if err := json.Unmarshal(b, &m); err != nil {
		return r, false, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch m.Action {
	case iflytek.ActionStarted:
		return r, false, nil
	case iflytek.ActionError:
		return r, false, &VendorError{Vendor: "iflytek", Code: m.Code, Desc: m.Desc}
	case iflytek.ActionResult:
	default:
		return r, false, fmt.Errorf("%w: action %q", ErrMalformed, m.Action)
	}
	if m.Code != "0" && m.Code != "" {
		return r, false, &VendorError{Vendor: "iflytek", Code: m.Code, Desc: m.Desc}
	}
	var d iflytek.Data
	if err := json.Unmarshal([]byte(m.Data), &d); err != nil {
		return r, false, fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	if d.Biz == "trans" {
		return r, false, nil
	}
	if d.SegID == nil || *d.SegID < 0 {
		return r, false, fmt.Errorf("%w: result without seg_id", ErrMalformed)
	}
	st := d.CN.ST
	bg, err1 := strconv.Atoi(st.BG)
	ed, err2 := strconv.Atoi(st.ED)
	if err1 != nil || err2 != nil || bg < 0 || ed < 0 {
		return r, false, fmt.Errorf("%w: bg %q ed %q", ErrMalformed, st.BG, st.ED)
	}
	switch st.Type {
	case "0":
		r.Final = true
	case "1":
	default:
		return r, false, fmt.Errorf("%w: type %q", ErrMalformed, st.Type)
	}
	r.Segment, r.Text, r.Confidence = *d.SegID, st.Text(), -1
	r.Begin = time.Duration(bg) * time.Millisecond
	r.End = max(r.Begin, time.Duration(ed)*time.Millisecond)
	return r, true, nil
}

// Open connects and waits for the "started" frame.
func (c *IFlytek) Open(ctx context.Context, results func(Result)) (Session, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	conn, resp, err := websocket.Dial(ctx, c.HandshakeURL(now()), &websocket.DialOptions{HTTPClient: c.HTTP}) //nolint:bodyclose // coder/websocket owns the handshake response: its docs say never to close resp.Body
	if err != nil {
		if resp != nil {
			return nil, &HandshakeError{Status: resp.StatusCode, Err: err}
		}
		return nil, err
	}
	_, b, err := conn.Read(ctx)
	if err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("iflytek handshake: %w", err)
	}
	var m iflytek.Message
	if err := json.Unmarshal(b, &m); err != nil || m.Action != iflytek.ActionStarted {
		_ = conn.CloseNow()
		if err == nil && m.Action == iflytek.ActionError {
			return nil, &VendorError{Vendor: "iflytek", Code: m.Code, Desc: m.Desc}
		}
		return nil, fmt.Errorf("iflytek handshake: %w: %.200s", ErrMalformed, b)
	}
	s := &iflytekSession{wsSession: newWSSession(conn)}
	s.read(func(typ websocket.MessageType, b []byte) (bool, error) {
		if typ != websocket.MessageText {
			return false, nil
		}
		r, ok, err := DecodeRTASR(b)
		if err != nil {
			return false, err
		}
		if ok {
			results(r)
		}
		return false, nil
	})
	return s, nil
}

// HandshakeError is a WebSocket upgrade the vendor refused with an HTTP status.
type HandshakeError struct {
	Status int
	Err    error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("handshake refused with %d: %v", e.Status, e.Err)
}
func (e *HandshakeError) Unwrap() error { return e.Err }

type iflytekSession struct {
	*wsSession
	buf  []byte // 16 kHz audio not yet sent (less than a frame)
	prev int16
}

func (s *iflytekSession) Send(ctx context.Context, pcm []byte) error {
	up, prev := Upsample2(pcm, s.prev)
	s.prev = prev
	s.buf = append(s.buf, up...)
	for len(s.buf) >= iflytek.FrameBytes {
		if err := s.write(ctx, websocket.MessageBinary, s.buf[:iflytek.FrameBytes]); err != nil {
			return err
		}
		s.buf = s.buf[iflytek.FrameBytes:]
	}
	return nil
}

// Finish sends the rest of the audio and {"end": true}; the server closes the stream once its
// last result is out.
func (s *iflytekSession) Finish(ctx context.Context) error {
	if len(s.buf) > 0 {
		if err := s.write(ctx, websocket.MessageBinary, s.buf); err != nil {
			return err
		}
		s.buf = nil
	}
	if err := s.write(ctx, websocket.MessageText, []byte(iflytek.EndMarker)); err != nil {
		return err
	}
	err := s.finish(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.StatusNormalClosure {
		return nil
	}
	return err
}
