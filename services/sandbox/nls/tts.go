package nls

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// OpTTS is the speech synthesis op (fault key "nls SpeechSynthesizer").
const OpTTS = "SpeechSynthesizer"

// TTS (RESTful, vendors part 2 §3.4): GET /stream/v1/tts with query parameters, or POST with a
// JSON body; the token in X-NLS-Token or the token parameter. The simulator does not speak: the
// audio is deterministic, a sine tone of TTSMSPerRune per character of the text (after
// truncation to 300 characters, as the service does) at a frequency hashed from the text, so a
// test knows the prompt's exact length and can recognise it. Only format pcm (16-bit
// little-endian mono) is served; sample_rate is 8000 or 16000 (default). Errors are JSON
// {task_id, result, status, message}: 40000001 a bad token, 40020105 a wrong appkey, 40000002
// a missing text or another format or rate. Injected faults: "down" is 503, another code a
// JSON error with that status.

// TTSMSPerRune is how long the simulated voice speaks one character.
const TTSMSPerRune = 60

// TTSTone returns the samples the simulator synthesises for text at rate.
func TTSTone(text string, rate int) []int16 {
	text = truncateRunes(text, 300)
	h := fnv.New32a()
	_, _ = h.Write([]byte(text))
	freq := 300 + float64(h.Sum32()%500)
	n := utf8.RuneCountInString(text) * TTSMSPerRune * rate / 1000
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(6000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return out
}

func truncateRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

type ttsRequest struct {
	AppKey     string `json:"appkey"`
	Text       string `json:"text"`
	Token      string `json:"token"`
	Format     string `json:"format"`
	SampleRate int    `json:"sample_rate"`
	Voice      string `json:"voice"`
}

func (s *Sim) ttsError(w http.ResponseWriter, httpStatus, status int, msg string) {
	w.Header().Set("task_id", hex32())
	sim.WriteJSON(w, httpStatus, "application/json;charset=utf-8", map[string]any{"task_id": hex32(), "result": "", "status": status, "message": msg})
}

func (s *Sim) tts(w http.ResponseWriter, r *http.Request) {
	var q ttsRequest
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&q); err != nil {
			s.ttsError(w, http.StatusBadRequest, 40000002, "invalid json body: "+err.Error())
			return
		}
	} else {
		p := r.URL.Query()
		q = ttsRequest{AppKey: p.Get("appkey"), Text: p.Get("text"), Token: p.Get("token"), Format: p.Get("format"), Voice: p.Get("voice")}
		if sr := p.Get("sample_rate"); sr != "" {
			q.SampleRate, _ = strconv.Atoi(sr)
		}
	}
	if tok := r.Header.Get(aliyun.NLSTokenHeader); tok != "" {
		q.Token = tok
	}
	if q.Format == "" {
		q.Format = "pcm"
	}
	if q.SampleRate == 0 {
		q.SampleRate = 16000
	}
	rec := map[string]string{"appkey": q.AppKey, "text": q.Text, "format": q.Format, "sample_rate": strconv.Itoa(q.SampleRate), "voice": q.Voice}
	switch {
	case !s.validToken(q.Token):
		s.ttsError(w, http.StatusUnauthorized, 40000001, "Gateway:ACCESS_DENIED:The token '"+q.Token+"' is invalid!")
	case q.AppKey != s.cfg.AppKey:
		s.ttsError(w, http.StatusBadRequest, 40020105, "Meta:APPKEY_NOT_EXIST:Appkey not exist!")
	case strings.TrimSpace(q.Text) == "":
		s.ttsError(w, http.StatusBadRequest, 40000002, "Gateway:MESSAGE_INVALID:text is empty")
	case q.Format != "pcm" || (q.SampleRate != 8000 && q.SampleRate != 16000):
		s.ttsError(w, http.StatusBadRequest, 40000002, "Gateway:MESSAGE_INVALID:the sandbox serves format pcm at 8000 or 16000 Hz")
	default:
		pcm := TTSTone(q.Text, q.SampleRate)
		b := make([]byte, 2*len(pcm))
		for i, v := range pcm {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		w.Header().Set("task_id", hex32())
		w.Header().Set("Content-Type", "audio/mpeg") // what the service labels its audio with
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		s.env.Record(Vendor, OpTTS, q.AppKey, rec, nil)
		return
	}
	s.env.Record(Vendor, OpTTS, q.AppKey, rec, errors.New("refused"))
}

func (s *Sim) ttsFail(w http.ResponseWriter, _ *http.Request, code string) {
	if code == speech.FaultDown {
		s.ttsError(w, http.StatusServiceUnavailable, aliyun.NLSStatusServer, "service unavailable")
		return
	}
	st, err := strconv.Atoi(code)
	if err != nil {
		st = aliyun.NLSStatusServer
	}
	s.ttsError(w, http.StatusInternalServerError, st, "injected fault")
}
