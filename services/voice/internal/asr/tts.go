package asr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
)

// maxTTSBytes bounds a synthesis answer: 300 characters at 8 kHz 16-bit are well under a minute
// (960 kB).
const maxTTSBytes = 4 << 20

// Synthesize asks Aliyun NLS speech synthesis (TTS RESTful, POST JSON to url, e.g.
// https://nls-gateway-cn-shanghai.aliyuncs.com/stream/v1/tts) to speak text with voice as 8 kHz
// 16-bit little-endian mono PCM (format pcm, sample_rate 8000: G.711's rate, so nothing is
// resampled), with the token CreateToken gave (cached as for transcription). The service
// truncates text after 300 characters. A JSON answer is the vendor's error: a *HandshakeError
// wrapping a *VendorError with its status code (a bad token also drops the cached one).
func (c *Aliyun) Synthesize(ctx context.Context, url, text, voice string) ([]byte, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"appkey": c.AppKey, "text": text, "format": "pcm", "sample_rate": 8000, "voice": voice})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(aliyun.NLSTokenHeader, tok)
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTTSBytes+1))
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct == "application/json" {
		var e struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &e) != nil {
			return nil, &HandshakeError{Status: resp.StatusCode, Err: fmt.Errorf("TTS (task %s): %w: HTTP %d", resp.Header.Get("task_id"), ErrMalformed, resp.StatusCode)}
		}
		if e.Status == aliyun.NLSStatusBadToken {
			c.forget(tok)
		}
		return nil, &HandshakeError{Status: resp.StatusCode, Err: &VendorError{Vendor: "aliyun", Code: strconv.Itoa(e.Status), Desc: e.Message}}
	}
	if len(b) > maxTTSBytes || len(b)%2 != 0 {
		return nil, fmt.Errorf("TTS (task %s): %w: %d bytes of 16-bit PCM", resp.Header.Get("task_id"), ErrMalformed, len(b))
	}
	return b, nil
}
