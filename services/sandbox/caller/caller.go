// Package caller is the sandbox's telephone: a SIP user agent client that calls a trunk
// endpoint (the voice connector) from a customer's number, plays 8 kHz speech to it as G.711
// RTP paced in real time, and hangs up with BYE — how simulated customers call in the demo, and
// what a load tool places calls with.
//
// One Dialer is one SIP user agent on one local UDP port; it places any number of concurrent
// calls, each with its own RTP socket. The offer is PCMU, PCMA and telephone-event/8000; the
// far end's answer picks the codec. Digest credentials, when set, answer a 401/407 challenge.
//
// A REFER in a call's dialog (RFC 3515: the far end transfers the call) is taken as a PBX takes
// it: 202 Accepted, a NOTIFY whose message/sipfrag says "SIP/2.0 100 Trying", one that says
// "SIP/2.0 200 OK" (the target answered, the subscription terminated), then the leg to the far
// end is ended with BYE: the call goes on with the target, which the sandbox does not simulate.
package caller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/zaf/g711"
)

// Config configures a Dialer.
type Config struct {
	// Target is the SIP endpoint called, host:port (UDP), e.g. the voice connector's
	// 127.0.0.1:5060.
	Target string
	// LocalIP is the address SIP and RTP bind to and advertise; default 127.0.0.1.
	LocalIP string
	// Username and Password answer a digest challenge; empty sends none.
	Username, Password string
	// Log, default slog.Default().
	Log *slog.Logger
}

// Dialer places calls.
type Dialer struct {
	cfg    Config
	calls  sync.Map // dialog id -> *liveCall, while answered
	host   string
	port   int
	local  net.IP
	ua     *sipgo.UserAgent
	dc     *sipgo.DialogClientCache
	conn   net.PacketConn
	closed atomic.Bool
	wg     sync.WaitGroup
}

// New starts a Dialer: its SIP socket listens on LocalIP (a free port) for in-dialog requests
// (the far end's BYE).
func New(cfg Config) (*Dialer, error) {
	if cfg.LocalIP == "" {
		cfg.LocalIP = "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	host, p, err := net.SplitHostPort(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("caller: target %q: %w", cfg.Target, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("caller: target %q: bad port", cfg.Target)
	}
	local := net.ParseIP(cfg.LocalIP)
	if local == nil {
		return nil, fmt.Errorf("caller: LocalIP %q is not an IP address", cfg.LocalIP)
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(cfg.LocalIP, "0"))
	if err != nil {
		return nil, fmt.Errorf("caller: %w", err)
	}
	sipPort := conn.LocalAddr().(*net.UDPAddr).Port
	d := &Dialer{cfg: cfg, host: host, port: port, local: local, conn: conn}
	fail := func(err error) (*Dialer, error) {
		_ = conn.Close()
		if d.ua != nil {
			_ = d.ua.Close()
		}
		return nil, fmt.Errorf("caller: %w", err)
	}
	if d.ua, err = sipgo.NewUA(sipgo.WithUserAgent("omnibus-sandbox-caller"), sipgo.WithUserAgentHostname(cfg.LocalIP)); err != nil {
		return fail(err)
	}
	srv, err := sipgo.NewServer(d.ua, sipgo.WithServerLogger(cfg.Log))
	if err != nil {
		return fail(err)
	}
	cli, err := sipgo.NewClient(d.ua, sipgo.WithClientAddr(conn.LocalAddr().String()), sipgo.WithClientLogger(cfg.Log))
	if err != nil {
		return fail(err)
	}
	d.dc = sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{User: "caller", Host: cfg.LocalIP, Port: sipPort}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := d.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		}
	})
	srv.OnRefer(d.onRefer)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := srv.ServeUDP(conn); err != nil && !d.closed.Load() {
			cfg.Log.Warn("caller: SIP socket stopped", "err", err)
		}
	}()
	return d, nil
}

// Close stops the Dialer; calls in progress end with their contexts' errors.
func (d *Dialer) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	err := d.ua.Close()
	_ = d.conn.Close()
	d.wg.Wait()
	return err
}

// Call is what a call did.
type Call struct {
	Status   int    // the final SIP status of the INVITE (200 when answered)
	Codec    string // PCMU or PCMA, as answered
	Sent     int    // RTP packets sent
	Received int    // RTP packets received from the far end
	HungUpBy string // caller (we sent BYE) or callee (the far end did)
	// TransferredTo is the Refer-To URI of the far end's REFER when the call was transferred
	// (then the caller ended the leg after the NOTIFYs: HungUpBy caller, or callee when the far
	// end's BYE came first).
	TransferredTo string
	AnsweredIn    time.Duration // from INVITE to 200 OK
	Talk          time.Duration // from ACK to hang-up
	// Invited is when the INVITE was sent; FirstRTP when the first audio packet was: sample n of
	// the audio left at FirstRTP + n/8000 s.
	Invited, FirstRTP time.Time
}

// ErrRejected is wrapped when the far end refuses the call; Call.Status says how.
var ErrRejected = errors.New("call rejected")

// Call calls to (a number or user at the target) from from, plays audio (8 kHz, 16-bit signed
// mono samples) followed by tail of silence, then hangs up — sooner if the far end hangs up or
// ctx ends (then it still sends BYE). It returns what happened; an error when the call could
// not be set up (wrapping ErrRejected for a final non-2xx answer).
func (d *Dialer) Call(ctx context.Context, from, to string, audio []int16, tail time.Duration) (Call, error) {
	return d.CallWith(ctx, from, to, audio, tail, Options{})
}

// Options are a call's optional hooks.
type Options struct {
	// OnPacket, when set, is called as each RTP packet of the call has been sent: packet n
	// (from 0) carries samples n*160 to n*160+159 of the audio (then silence), and left at at.
	// It runs on the call's sending goroutine: it must be quick.
	OnPacket func(n int, at time.Time)
}

// CallWith is Call with options.
func (d *Dialer) CallWith(ctx context.Context, from, to string, audio []int16, tail time.Duration, opts Options) (res Call, err error) {
	rtpConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: d.local})
	if err != nil {
		return res, fmt.Errorf("caller: RTP socket: %w", err)
	}
	defer rtpConn.Close()
	fromH := &sip.FromHeader{Address: sip.Uri{User: from, Host: d.cfg.LocalIP}, Params: sip.NewParams()}
	fromH.Params.Add("tag", sip.GenerateTagN(16))
	began := time.Now()
	res.Invited = began
	sess, err := d.dc.Invite(ctx, sip.Uri{User: to, Host: d.host, Port: d.port}, offer(d.local, rtpConn.LocalAddr().(*net.UDPAddr).Port),
		sip.NewHeader("Content-Type", "application/sdp"), fromH)
	if err != nil {
		return res, fmt.Errorf("caller: INVITE: %w", err)
	}
	defer sess.Close()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: d.cfg.Username, Password: d.cfg.Password}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			res.Status = de.Res.StatusCode
			return res, fmt.Errorf("%w: %d %s", ErrRejected, de.Res.StatusCode, de.Res.Reason)
		}
		return res, fmt.Errorf("caller: waiting for the answer: %w", err)
	}
	res.Status, res.AnsweredIn = sess.InviteResponse.StatusCode, time.Since(began)
	if err := sess.Ack(ctx); err != nil {
		return res, fmt.Errorf("caller: ACK: %w", err)
	}
	lc := &liveCall{sess: sess, done: make(chan struct{})}
	d.calls.Store(sess.ID, lc)
	defer d.calls.Delete(sess.ID)
	defer func() {
		if to := lc.referTo.Load(); to != nil {
			res.TransferredTo = *to
			<-lc.done // the hand-off (NOTIFYs, BYE) is over
			if lc.byeSent.Load() {
				res.HungUpBy = "caller"
			}
		}
	}()
	talk := time.Now()
	defer func() { res.Talk = time.Since(talk) }()
	peer, pt, codec, err := answerMedia(sess.InviteResponse.Body())
	if err != nil {
		_ = sess.Bye(context.WithoutCancel(ctx))
		return res, fmt.Errorf("caller: %w", err)
	}
	res.Codec = codec

	var received atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := rtpConn.ReadFrom(buf); err != nil {
				return
			}
			received.Add(1)
		}
	}()
	ended := sess.Context().Done()
	res.Sent, res.FirstRTP, err = play(ctx, ended, rtpConn, peer, pt, audio, tail, lc.done, opts.OnPacket)
	res.Received = int(received.Load())
	select {
	case <-ended:
		res.HungUpBy = "callee"
		return res, nil
	case <-lc.done:
		return res, nil // transferred: the hand-off ended the leg
	default:
	}
	res.HungUpBy = "caller"
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if berr := sess.Bye(bctx); berr != nil {
		return res, errors.Join(err, fmt.Errorf("caller: BYE: %w", berr))
	}
	return res, err
}

// offer is the SDP offer: PCMU, PCMA and RFC 4733 events, media at ip:port.
func offer(ip net.IP, port int) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=caller %d 1 IN IP4 %s\r\ns=omnibus sandbox call\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n", time.Now().Unix(), ip, ip, port))
}

// answerMedia reads the answer's media address and the first G.711 payload type it accepted.
func answerMedia(body []byte) (*net.UDPAddr, uint8, string, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, 0, "", fmt.Errorf("the answer's SDP: %w", err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		c := sd.ConnectionInformation
		if m.ConnectionInformation != nil {
			c = m.ConnectionInformation
		}
		if c == nil || c.Address == nil {
			return nil, 0, "", errors.New("the answer has no connection address")
		}
		ip := net.ParseIP(c.Address.Address)
		if ip == nil {
			return nil, 0, "", fmt.Errorf("the answer's address %q is not an IP", c.Address.Address)
		}
		for _, f := range m.MediaName.Formats {
			switch f {
			case "0":
				return &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value}, 0, "PCMU", nil
			case "8":
				return &net.UDPAddr{IP: ip, Port: m.MediaName.Port.Value}, 8, "PCMA", nil
			}
		}
	}
	return nil, 0, "", errors.New("the answer accepts neither PCMU nor PCMA")
}

// samplesPerPacket is 20 ms at 8 kHz.
const samplesPerPacket = 160

// play sends audio then tail of silence as RTP to peer, one packet each 20 ms, until done, the
// far end hangs up (ended), the call is handed off (stop) or ctx ends; it returns the packets
// sent and when the first was. onPacket, when set, gets each packet's number and send time.
func play(ctx context.Context, ended <-chan struct{}, conn *net.UDPConn, peer *net.UDPAddr, pt uint8, audio []int16, tail time.Duration,
	stop <-chan struct{}, onPacket func(int, time.Time)) (sent int, first time.Time, err error) {
	total := (len(audio) + samplesPerPacket - 1) / samplesPerPacket
	total += int(tail / (20 * time.Millisecond))
	var ssrc [4]byte
	now := time.Now().UnixNano()
	for i := range ssrc {
		ssrc[i] = byte(now >> (8 * i))
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: uint32(ssrc[0])<<24 | uint32(ssrc[1])<<16 | uint32(ssrc[2])<<8 | uint32(ssrc[3])}}
	pcm := make([]int16, samplesPerPacket)
	payload := make([]byte, samplesPerPacket)
	buf := make([]byte, 12+samplesPerPacket)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := range total {
		clear(pcm)
		if off := n * samplesPerPacket; off < len(audio) {
			copy(pcm, audio[off:])
		}
		for i, s := range pcm {
			if pt == 8 {
				payload[i] = g711.EncodeAlawFrame(s)
			} else {
				payload[i] = g711.EncodeUlawFrame(s)
			}
		}
		pkt.Marker = n == 0
		pkt.SequenceNumber = uint16(n)
		pkt.Timestamp = uint32(n * samplesPerPacket)
		pkt.Payload = payload
		m, err := pkt.MarshalTo(buf)
		if err != nil {
			return sent, first, err
		}
		if _, err := conn.WriteToUDP(buf[:m], peer); err != nil {
			return sent, first, fmt.Errorf("RTP: %w", err)
		}
		at := time.Now()
		if n == 0 {
			first = at
		}
		if onPacket != nil {
			onPacket(n, at)
		}
		sent++
		select {
		case <-ctx.Done():
			return sent, first, ctx.Err()
		case <-ended:
			return sent, first, nil
		case <-stop:
			return sent, first, nil
		case <-tick.C:
		}
	}
	return sent, first, nil
}

// liveCall is an answered call a REFER may transfer.
type liveCall struct {
	sess    *sipgo.DialogClientSession
	referTo atomic.Pointer[string] // set by the first accepted REFER
	byeSent atomic.Bool            // the hand-off's BYE was answered
	done    chan struct{}          // closed when the hand-off is over
}

// onRefer takes a REFER in an answered call's dialog as a PBX does: 202 Accepted, NOTIFYs
// "SIP/2.0 100 Trying" then "SIP/2.0 200 OK", and BYE to end the transferred leg. A REFER
// outside a call is answered 481, one without a Refer-To 400, a second one while the first is
// handed off 491.
func (d *Dialer) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	sess, err := d.dc.MatchRequestDialog(req)
	if err != nil {
		respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	v, ok := d.calls.Load(sess.ID)
	if !ok {
		respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	lc := v.(*liveCall)
	h := req.GetHeader("Refer-To")
	var target sip.Uri
	if h == nil || sip.ParseUri(strings.Trim(strings.TrimSpace(h.Value()), "<>"), &target) != nil {
		respond(sip.StatusBadRequest, "Bad Refer-To")
		return
	}
	if err := sess.ReadRequest(req, tx); err != nil {
		respond(sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	to := target.String()
	if !lc.referTo.CompareAndSwap(nil, &to) {
		respond(491, "Request Pending")
		return
	}
	respond(sip.StatusAccepted, "Accepted")
	d.cfg.Log.Info("caller: call transferred by the far end", "refer_to", to)
	go d.handOff(lc)
}

// handOff reports the transfer's progress to the far end and ends the leg to it.
func (d *Dialer) handOff(lc *liveCall) {
	defer close(lc.done)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, frag := range []string{"SIP/2.0 100 Trying", "SIP/2.0 200 OK"} {
		target := lc.sess.InviteRequest.Recipient
		if c := lc.sess.InviteResponse.Contact(); c != nil {
			target = c.Address
		}
		n := sip.NewRequest(sip.NOTIFY, target)
		n.AppendHeader(sip.NewHeader("Event", "refer"))
		state := "active;expires=60"
		if i == 1 {
			state = "terminated;reason=noresource"
		}
		n.AppendHeader(sip.NewHeader("Subscription-State", state))
		n.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		n.SetBody([]byte(frag + "\r\n"))
		res, err := lc.sess.Do(ctx, n)
		if err != nil || !res.IsSuccess() {
			d.cfg.Log.Warn("caller: NOTIFY of the transfer not accepted", "sipfrag", frag, "err", err, "response", res)
		}
	}
	if lc.sess.Context().Err() != nil {
		return // the far end left first
	}
	if err := lc.sess.Bye(ctx); err != nil {
		d.cfg.Log.Debug("caller: BYE after the transfer", "err", err)
		return
	}
	lc.byeSent.Store(true)
}
