// Package media receives a call's RTP: one UDP socket per call from a fixed port range, G.711
// µ-law/A-law decoded to 16-bit PCM at 8 kHz, gaps in the stream (lost packets, silence
// suppression) filled with silence by RTP timestamp, RFC 4733 DTMF events collected, and every
// decoded frame handed to the call's sinks: the recorder and, later, a real-time ASR client.
package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Payload types of the codecs this package decodes (RFC 3551 static assignments).
const (
	PCMU = 0
	PCMA = 8
)

// Rate is the sample rate of G.711 and of every frame this package emits.
const Rate = 8000

// Leg tells whose audio a frame carries.
type Leg string

// Legs of a call: caller is what the trunk sends (the customer), callee what omnibus sends.
const (
	LegCaller Leg = "caller"
	LegCallee Leg = "callee"
)

// Frame is a run of decoded audio of one leg: little-endian 16-bit mono PCM at Rate, starting
// Offset into the leg (gap-filled silence counts). PCM is only valid during the call to Sink.
type Frame struct {
	Leg    Leg
	Offset time.Duration
	PCM    []byte
}

// Sink receives a call's frames in order, on the call's receive goroutine: it must not block
// for long (an ASR client queues and drops when its vendor falls behind, it does not stall the
// recording).
type Sink interface {
	Frame(f Frame)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Frame)

// Frame calls f.
func (f SinkFunc) Frame(fr Frame) { f(fr) }

// ErrNoPort is returned by Ports.Listen when every port of the range is in use.
var ErrNoPort = errors.New("no free RTP port")

// Ports hands out UDP sockets from a port range, one per call. RTP uses even ports (RFC 3550);
// the odd port above each is left for RTCP, which this package does not read.
type Ports struct {
	ip       netip.Addr
	min, max int
	mu       sync.Mutex
	used     map[int]bool
	next     int
}

// NewPorts returns a pool of the even ports in [min, max] on ip.
func NewPorts(ip netip.Addr, min, max int) (*Ports, error) {
	if min < 1024 || max > 65534 || min > max {
		return nil, fmt.Errorf("RTP port range %d-%d: want 1024 <= min <= max <= 65534", min, max)
	}
	if min%2 != 0 {
		min++
	}
	return &Ports{ip: ip, min: min, max: max, used: map[int]bool{}, next: min}, nil
}

// Listen opens a socket on the next free port. Ports some other process holds are skipped.
func (p *Ports) Listen() (*net.UDPConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := (p.max-p.min)/2 + 1
	for i := 0; i < n; i++ {
		port := p.next
		p.next += 2
		if p.next > p.max {
			p.next = p.min
		}
		if p.used[port] {
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err != nil {
			continue
		}
		p.used[port] = true
		return c, nil
	}
	return nil, ErrNoPort
}

// Release closes c and returns its port to the pool.
func (p *Ports) Release(c *net.UDPConn) {
	port := c.LocalAddr().(*net.UDPAddr).Port
	_ = c.Close()
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// InUse returns how many ports are held.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// Stats counts what a Receiver saw.
type Stats struct {
	Packets int // RTP packets of the negotiated codec, decoded
	Foreign int // datagrams from an address other than the peer's, dropped
	Invalid int // datagrams that were not RTP version 2, dropped
	Unknown int // RTP packets of a payload type not negotiated, dropped
	Late    int // packets older than what was already written, dropped
	// Lost is the audio packets the sender sent that never arrived: the extended sequence
	// numbers expected minus those received (RFC 3550 A.3), per stream; never negative.
	Lost     int
	Samples  int64
	Digits   string // RFC 4733 DTMF digits, in order
	LastRecv time.Time
}

// Receiver reads one call's RTP. Configure it, then call Run on its own goroutine.
type Receiver struct {
	Conn *net.UDPConn
	// Peer is the address the SDP offer said the media comes from, and Signal the address the
	// SIP request came from (an allowed trunk): datagrams from any other IP are dropped. The
	// trunk's media may come from its signalling address rather than the one its SDP names
	// (NAT, a media server on another interface). Ports are not checked.
	Peer, Signal netip.Addr
	// PT is the negotiated audio payload type (PCMU or PCMA); DTMF is the telephone-event payload
	// type, or -1 when none was negotiated.
	PT, DTMF int
	// Sinks get every decoded frame of the caller leg.
	Sinks []Sink
	// MaxGap caps the silence inserted for one jump of the RTP timestamp (a sender that restarts
	// its clock must not make the recording hours long). Default 10 s.
	MaxGap time.Duration
	// Timeout is how long Run waits without a packet before it returns ErrTimeout, unless
	// Paused reports true (the call is on hold). 0 = never.
	Timeout time.Duration
	Paused  func() bool

	stopped atomic.Bool
	mu      sync.Mutex
	stats   Stats
	started bool
	ssrc    uint32
	nextTS  uint32
	// RFC 3550 A.3 loss accounting of the current stream: its first sequence number, the highest
	// extended one seen, and the packets received; lostBefore is the loss of earlier streams.
	baseSeq, maxSeq uint32
	recvd           int
	lostBefore      int
	lastDTMF        uint32 // RTP timestamp of the last DTMF event reported
	haveDTMF        bool
}

// ErrTimeout is returned by Run when no RTP arrived for Timeout.
var ErrTimeout = errors.New("no RTP received")

// SetCodec changes the payload types (a re-INVITE may renegotiate).
func (r *Receiver) SetCodec(pt, dtmf int) {
	r.mu.Lock()
	r.PT, r.DTMF = pt, dtmf
	r.mu.Unlock()
}

// PayloadType returns the negotiated audio payload type (PCMU or PCMA).
func (r *Receiver) PayloadType() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.PT
}

// SetPeer changes the address media is accepted from (a re-INVITE may move it).
func (r *Receiver) SetPeer(ip netip.Addr) {
	r.mu.Lock()
	r.Peer = ip
	r.mu.Unlock()
}

// Stop makes Run return nil promptly; the caller still owns (and closes) Conn.
func (r *Receiver) Stop() {
	r.stopped.Store(true)
	_ = r.Conn.SetReadDeadline(time.Unix(1, 0))
}

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Run reads until the socket is closed (it returns nil) or Timeout passes without a packet.
func (r *Receiver) Run() error {
	buf := make([]byte, 1500)
	for {
		if r.Timeout > 0 {
			_ = r.Conn.SetReadDeadline(time.Now().Add(r.Timeout))
		}
		n, from, err := r.Conn.ReadFromUDPAddrPort(buf)
		if r.stopped.Load() {
			return nil
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if r.Paused != nil && r.Paused() {
					continue
				}
				return ErrTimeout
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		r.mu.Lock()
		src := from.Addr().Unmap()
		foreign := src != r.Peer.Unmap() && src != r.Signal.Unmap()
		if foreign {
			r.stats.Foreign++
		}
		r.mu.Unlock()
		if foreign {
			continue
		}
		r.Handle(buf[:n])
	}
}

// Handle processes one datagram as if it had arrived from the peer. Run calls it; fuzz tests
// call it directly.
func (r *Receiver) Handle(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.LastRecv = time.Now()
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil || p.Version != 2 {
		r.stats.Invalid++
		return
	}
	switch int(p.PayloadType) {
	case r.PT:
		r.audio(&p)
	case r.DTMF:
		r.dtmf(&p)
	default:
		r.stats.Unknown++
	}
}

func (r *Receiver) audio(p *rtp.Packet) {
	if r.MaxGap <= 0 {
		r.MaxGap = 10 * time.Second
	}
	if len(p.Payload) == 0 {
		return
	}
	if !r.started || p.SSRC != r.ssrc {
		// A new stream (the first, or the sender restarted it after a re-INVITE): continue the
		// recording where it is, without a gap.
		if r.started {
			r.lostBefore = r.stats.Lost
		}
		r.started, r.ssrc, r.nextTS = true, p.SSRC, p.Timestamp
		r.baseSeq, r.maxSeq, r.recvd = uint32(p.SequenceNumber), uint32(p.SequenceNumber), 0
	}
	r.countSeq(p.SequenceNumber)
	d := int32(p.Timestamp - r.nextTS)
	if d < 0 {
		r.stats.Late++
		return
	}
	if d > 0 {
		gap := min(int64(d), int64(r.MaxGap/time.Second)*Rate)
		r.emit(make([]byte, 2*gap))
	}
	var pcm []byte
	if r.PT == PCMA {
		pcm = g711.DecodeAlaw(p.Payload)
	} else {
		pcm = g711.DecodeUlaw(p.Payload)
	}
	r.emit(pcm)
	r.stats.Packets++
	r.nextTS = p.Timestamp + uint32(len(p.Payload))
}

// countSeq does RFC 3550 A.3's loss accounting for a packet of the current stream with sequence
// number seq: the highest extended sequence number (16-bit wraps counted) and the packets
// received; Lost is what was expected up to the highest minus what arrived.
func (r *Receiver) countSeq(seq uint16) {
	r.recvd++
	hi := uint16(r.maxSeq)
	if d := seq - hi; d != 0 && d < 0x8000 { // ahead (modulo 2^16): a new highest
		if seq < hi {
			r.maxSeq += 1 << 16 // wrapped
		}
		r.maxSeq = r.maxSeq&^0xffff | uint32(seq)
	}
	expected := int(r.maxSeq - r.baseSeq + 1)
	r.stats.Lost = r.lostBefore + max(0, expected-r.recvd)
}

func (r *Receiver) emit(pcm []byte) {
	off := time.Duration(r.stats.Samples) * time.Second / Rate
	r.stats.Samples += int64(len(pcm) / 2)
	for _, s := range r.Sinks {
		s.Frame(Frame{Leg: LegCaller, Offset: off, PCM: pcm})
	}
}

// dtmf reads an RFC 4733 telephone-event: event (1 byte), E|R|volume (1), duration (2). An event
// is reported once, on its first end packet (senders repeat the end packet three times, all with
// the event's timestamp).
func (r *Receiver) dtmf(p *rtp.Packet) {
	if len(p.Payload) < 4 {
		r.stats.Invalid++
		return
	}
	if p.Payload[1]&0x80 == 0 {
		return // not the end of the event yet
	}
	if r.haveDTMF && p.Timestamp == r.lastDTMF {
		return
	}
	r.haveDTMF, r.lastDTMF = true, p.Timestamp
	if d := Digit(p.Payload[0]); d != 0 && len(r.stats.Digits) < 256 {
		r.stats.Digits += string(d)
	}
}

// Digit returns the character of RFC 4733 event code e (0-9, *, #, A-D), or 0 for other events.
func Digit(e byte) byte {
	switch {
	case e <= 9:
		return '0' + e
	case e == 10:
		return '*'
	case e == 11:
		return '#'
	case e >= 12 && e <= 15:
		return 'A' + e - 12
	}
	return 0
}
