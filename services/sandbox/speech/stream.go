package speech

import (
	"context"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// What the ASR simulators share: their fault codes, the audio rate conversion and the
// WebSocket session skeleton (audio in, results out, idle timeout, a cut mid-stream).

// Fault codes of the ASR simulators (sim.Fault.Code), besides the vendor's own error codes.
const (
	// FaultDown refuses the WebSocket handshake with 503: the vendor is down.
	FaultDown = "down"
	// FaultCut ("cut" or "cut:<duration>") serves the stream normally and drops the connection
	// (no close frame, no last result) after that much audio, 1 s by default: a stream cut
	// mid-call.
	FaultCut = "cut"
)

// CutAfter reads a FaultCut code: the audio after which the stream is cut.
func CutAfter(code string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(code, FaultCut)
	if !ok || (rest != "" && rest[0] != ':') {
		return 0, false
	}
	if rest == "" {
		return time.Second, true
	}
	d, err := time.ParseDuration(rest[1:])
	if err != nil || d < 0 {
		return time.Second, true
	}
	return d, true
}

// Decimate2 halves the sample rate of 16-bit little-endian PCM by averaging sample pairs
// (16 kHz iFlytek audio to the recogniser's 8 kHz).
func Decimate2(pcm []byte) []byte {
	out := make([]byte, 0, len(pcm)/2)
	for i := 0; i+3 < len(pcm); i += 4 {
		a := int32(int16(binary.LittleEndian.Uint16(pcm[i:])))
		b := int32(int16(binary.LittleEndian.Uint16(pcm[i+2:])))
		out = binary.LittleEndian.AppendUint16(out, uint16(int16((a+b)/2)))
	}
	return out
}

// Session is one simulated recognition stream on a WebSocket: the vendor's decoder says what
// each message is, the session runs the recogniser and the fault injection.
type Session struct {
	Conn *websocket.Conn
	Rec  *Recognizer
	// Rate is the sample rate of the audio the client sends (8000 or 16000).
	Rate int
	// Idle ends the session when no message arrives this long.
	Idle time.Duration
	// Cut, when > 0, drops the connection after this much audio.
	Cut time.Duration

	audio time.Duration
	Bytes int64
}

// Message is what a vendor's decoder makes of a client message.
type Message struct {
	Audio []byte // audio to recognise
	End   bool   // the client's end of stream
}

// ErrIdle, ErrCut are the ways Run ends besides the client's end and a read error.
var (
	ErrIdle = &SessionEnd{"idle"}
	ErrCut  = &SessionEnd{"cut"}
)

// SessionEnd says why Run returned without the client's end marker.
type SessionEnd struct{ Why string }

func (e *SessionEnd) Error() string { return "asr session " + e.Why }

// Run reads messages until the client's end (nil, after emitting the last results), the idle
// timeout (ErrIdle), the cut fault (ErrCut: the connection is already dropped) or a read error.
// decode turns a message into audio or the end; emit sends results in the vendor's shape.
func (s *Session) Run(ctx context.Context, decode func(websocket.MessageType, []byte) (Message, error),
	emit func([]Result) error) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, s.Idle)
		typ, b, err := s.Conn.Read(rctx)
		idle := rctx.Err() != nil && ctx.Err() == nil
		cancel()
		if idle {
			return ErrIdle
		}
		if err != nil {
			return err
		}
		m, err := decode(typ, b)
		if err != nil {
			return err
		}
		if len(m.Audio) > 0 {
			s.Bytes += int64(len(m.Audio))
			pcm := m.Audio
			if s.Rate == 16000 {
				pcm = Decimate2(pcm)
			}
			s.audio += time.Duration(len(pcm)/2) * time.Second / Rate
			if err := emit(s.Rec.Write(pcm)); err != nil {
				return err
			}
			if s.Cut > 0 && s.audio >= s.Cut {
				_ = s.Conn.CloseNow()
				return ErrCut
			}
		}
		if m.End {
			return emit(s.Rec.Flush())
		}
	}
}

// Refuse answers a handshake the vendor refuses with an HTTP status and a body.
func Refuse(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
