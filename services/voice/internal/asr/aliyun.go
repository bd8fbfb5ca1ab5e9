package asr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
)

// Aliyun is Aliyun NLS real-time transcription (SpeechTranscriber): a token from the CreateToken
// OpenAPI (RPC V1 signature; reused until shortly before it expires), a WebSocket carrying it in
// X-NLS-Token, StartTranscription → TranscriptionStarted, audio in binary frames (8 kHz PCM, as
// received), StopTranscription → TranscriptionCompleted; results are SentenceBegin,
// TranscriptionResultChanged (partials) and SentenceEnd (finals); errors TaskFailed.
type Aliyun struct {
	// TokenURL is the CreateToken endpoint, https://nls-meta.cn-shanghai.aliyuncs.com/.
	TokenURL string
	// URL is the gateway, wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1.
	URL                          string
	AccessKeyID, AccessKeySecret string
	// AppKey is the NLS project's appkey (it fixes the language model).
	AppKey string
	HTTP   *http.Client
	Now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// Name returns "aliyun".
func (*Aliyun) Name() string { return "aliyun" }

// Model returns "nls_8k".
func (*Aliyun) Model() string { return "nls_8k" }

func (c *Aliyun) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Aliyun) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func hex32() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Token returns a valid token, from CreateToken when the last one expires within a minute.
func (c *Aliyun) Token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.now().Add(time.Minute).Before(c.expires) {
		return c.token, nil
	}
	nonce := hex32()
	nonce = nonce[:8] + "-" + nonce[8:12] + "-" + nonce[12:16] + "-" + nonce[16:20] + "-" + nonce[20:]
	q := aliyun.CreateTokenParams(c.AccessKeyID, c.AccessKeySecret, c.now(), nonce)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.TokenURL+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	var tr aliyun.TokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		return "", &HandshakeError{Status: resp.StatusCode, Err: fmt.Errorf("CreateToken: %w: %w", ErrMalformed, err)}
	}
	if resp.StatusCode != http.StatusOK || tr.Token == nil || tr.Token.ID == "" {
		return "", &HandshakeError{Status: resp.StatusCode,
			Err: &VendorError{Vendor: "aliyun", Code: tr.Code, Desc: tr.Message + tr.ErrMsg}}
	}
	c.token, c.expires = tr.Token.ID, time.Unix(tr.Token.ExpireTime, 0)
	return c.token, nil
}

// forget drops the cached token if it is still tok.
func (c *Aliyun) forget(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// DecodeNLS decodes an event of the transcriber. It returns the result of SentenceEnd (final) or
// TranscriptionResultChanged (partial), last=true for TranscriptionCompleted, a *VendorError for
// TaskFailed or any status other than 20000000, and an error wrapping ErrMalformed for anything
// undecodable.
func DecodeNLS(b []byte) (r Result, ok, last bool, err error) {
	var m aliyun.NLSMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return r, false, false, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	h := m.Header
	if h.Name == aliyun.NLSTaskFailed || (h.Status != 0 && h.Status != aliyun.NLSStatusOK) {
		return r, false, false, &VendorError{Vendor: "aliyun", Code: strconv.Itoa(h.Status), Desc: h.StatusText}
	}
	switch h.Name {
	case aliyun.NLSStarted, aliyun.NLSSentenceBegin:
		return r, false, false, nil
	case aliyun.NLSCompleted:
		return r, false, true, nil
	case aliyun.NLSResultChanged, aliyun.NLSSentenceEnd:
	default:
		return r, false, false, fmt.Errorf("%w: event %q", ErrMalformed, h.Name)
	}
	var p aliyun.NLSResult
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return r, false, false, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if p.Index < 1 || p.Time < 0 || p.BeginTime < 0 {
		return r, false, false, fmt.Errorf("%w: index %d time %d begin_time %d", ErrMalformed, p.Index, p.Time, p.BeginTime)
	}
	r = Result{Segment: p.Index - 1, Text: p.Result, Confidence: -1, Final: h.Name == aliyun.NLSSentenceEnd}
	if p.Confidence != nil && *p.Confidence >= 0 && *p.Confidence <= 1 {
		r.Confidence = *p.Confidence
	}
	r.Begin = time.Duration(p.BeginTime) * time.Millisecond
	r.End = max(r.Begin, time.Duration(p.Time)*time.Millisecond)
	if !r.Final {
		r.End = r.Begin // a partial's end is not known yet
	}
	return r, true, false, nil
}

// Open gets a token, connects and starts a transcription.
func (c *Aliyun) Open(ctx context.Context, results func(Result)) (Session, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	//nolint:bodyclose // coder/websocket owns the handshake response: its docs say never to close resp.Body
	conn, resp, err := websocket.Dial(ctx, c.URL, &websocket.DialOptions{HTTPClient: c.HTTP,
		HTTPHeader: http.Header{aliyun.NLSTokenHeader: {tok}}})
	if err != nil {
		if resp != nil {
			return nil, &HandshakeError{Status: resp.StatusCode, Err: err}
		}
		return nil, err
	}
	s := &aliyunSession{wsSession: newWSSession(conn), appKey: c.AppKey, task: hex32()}
	start, _ := json.Marshal(aliyun.NLSStartPayload{Format: "pcm", SampleRate: 8000, EnableIntermediateResult: true,
		EnablePunctuationPrediction: true, EnableInverseTextNormalization: true, MaxSentenceSilence: aliyun.NLSMaxSentenceSilence})
	if err := s.command(ctx, aliyun.NLSStart, start); err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	_, b, err := conn.Read(ctx)
	if err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("aliyun handshake: %w", err)
	}
	var m aliyun.NLSMessage
	if err := json.Unmarshal(b, &m); err != nil || m.Header.Name != aliyun.NLSStarted {
		_ = conn.CloseNow()
		if _, _, _, derr := DecodeNLS(b); derr != nil {
			var ve *VendorError
			if errors.As(derr, &ve) && ve.Code == strconv.Itoa(aliyun.NLSStatusBadToken) {
				c.forget(tok) // revoked or expired early: the next session asks for a new one
			}
			return nil, derr
		}
		return nil, fmt.Errorf("aliyun handshake: %w: %.200s", ErrMalformed, b)
	}
	s.read(func(typ websocket.MessageType, b []byte) (bool, error) {
		if typ != websocket.MessageText {
			return false, nil
		}
		r, ok, last, err := DecodeNLS(b)
		if err != nil {
			return false, err
		}
		if ok {
			results(r)
		}
		return last, nil
	})
	return s, nil
}

type aliyunSession struct {
	*wsSession
	appKey, task string
}

func (s *aliyunSession) command(ctx context.Context, name string, payload json.RawMessage) error {
	b, err := json.Marshal(aliyun.NLSMessage{Header: aliyun.NLSHeader{AppKey: s.appKey, MessageID: hex32(), TaskID: s.task,
		Namespace: aliyun.NLSNamespace, Name: name}, Payload: payload})
	if err != nil {
		return err
	}
	return s.write(ctx, websocket.MessageText, b)
}

func (s *aliyunSession) Send(ctx context.Context, pcm []byte) error {
	return s.write(ctx, websocket.MessageBinary, pcm)
}

// Finish sends StopTranscription and waits for TranscriptionCompleted.
func (s *aliyunSession) Finish(ctx context.Context) error {
	if err := s.command(ctx, aliyun.NLSStop, nil); err != nil {
		return err
	}
	return s.finish(ctx)
}
