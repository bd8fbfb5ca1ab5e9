package voice

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"

	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// sourceIP is the address the request came from (the transport's, not the Via's, which the
// sender writes).
func sourceIP(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// admit applies the allow-list and, when configured, digest authentication. It answers the
// request itself (403, 401) and returns false when the request may not proceed.
func (s *server) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	if ip := sourceIP(req); !ip.IsValid() || !s.cfg.allowed(ip) {
		s.rt.Log.Warn("SIP request from an address not in VOICE_ALLOW refused", "method", req.Method, "source", req.Source())
		respond(tx, req, sip.StatusForbidden, "Forbidden")
		return false
	}
	if s.cfg.DigestUser == "" {
		return true
	}
	stale := false
	if h := req.GetHeader("Authorization"); h != nil {
		cred, err := digest.ParseCredentials(h.Value())
		switch {
		case err != nil:
		case !s.validNonce(cred.Nonce, time.Now()):
			stale = true
		case cred.Username == s.cfg.DigestUser && cred.Realm == s.cfg.Realm && s.digestOK(req, cred):
			return true
		default:
			s.rt.Log.Warn("SIP request with wrong digest credentials refused", "method", req.Method, "source", req.Source(), "user", cred.Username)
			respond(tx, req, sip.StatusForbidden, "Forbidden")
			return false
		}
	}
	chal := digest.Challenge{Realm: s.cfg.Realm, Nonce: s.nonce(time.Now()), Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	respond(tx, req, sip.StatusUnauthorized, "Unauthorized", sip.NewHeader("WWW-Authenticate", chal.String()))
	return false
}

func (s *server) digestOK(req *sip.Request, cred *digest.Credentials) bool {
	if cred.Algorithm != "" && cred.Algorithm != "MD5" {
		return false
	}
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		if cred.QOP != "auth" {
			return false
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: cred.URI, Username: s.cfg.DigestUser,
		Password: s.cfg.DigestPassword, Cnonce: cred.Cnonce, Count: cred.Nc})
	return err == nil && subtle.ConstantTimeCompare([]byte(want.Response), []byte(cred.Response)) == 1
}

// nonceTTL is how long a digest nonce is accepted.
const nonceTTL = 5 * time.Minute

// nonce is stateless: its issue time and an HMAC of it under the process's secret.
func (s *server) nonce(now time.Time) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(now.Unix()))
	m := hmac.New(sha256.New, s.secret)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(append(b, m.Sum(nil)[:16]...))
}

func (s *server) validNonce(n string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Sub(issued) < nonceTTL && !issued.After(now.Add(time.Minute))
}

// onRegister accepts a registering trunk (allow-list and digest) without keeping a binding: the
// connector never calls the trunk outside a dialog it holds.
func (s *server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !s.admit(req, tx) {
		return
	}
	res := sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil)
	if c := req.Contact(); c != nil {
		res.AppendHeader(c)
	}
	exp := "3600"
	if h := req.GetHeader("Expires"); h != nil {
		exp = h.Value()
	}
	res.AppendHeader(sip.NewHeader("Expires", exp))
	_ = tx.Respond(res)
}

func (s *server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = s.dialogs.ReadAck(req, tx)
}

func (s *server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dialogs.ReadBye(req, tx); err != nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
	}
}

// onInvite handles a new call, or a re-INVITE of one in progress.
func (s *server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params != nil && to.Params.Has("tag") {
		s.onReinvite(req, tx)
		return
	}
	if !s.admit(req, tx) {
		return
	}
	if s.stopping.Load() {
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		s.rt.Log.Warn("INVITE refused", "err", err, "source", req.Source())
		respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	pt, ok := o.choose(s.cfg.codecs)
	if !ok {
		s.rt.Log.Warn("INVITE refused: no common codec", "offered", o.Formats, "source", req.Source())
		respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	conn, err := s.ports.Listen()
	if err != nil {
		s.rt.Log.Error("INVITE refused", "err", err)
		respond(tx, req, sip.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer s.ports.Release(conn)
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		s.rt.Log.Warn("INVITE refused", "err", err, "source", req.Source())
		respond(tx, req, sip.StatusBadRequest, "Bad Request")
		return
	}
	defer dlg.Close()
	info := callInfo{ID: uuid.NewString(), Direction: "inbound", Trunk: s.cfg.Trunk, Codec: codecName(pt),
		From: partyIdentity(req.From().Address, s.cfg.CountryCode), To: partyIdentity(req.Recipient, s.cfg.CountryCode),
		StartedAt: s.now().UTC()}
	if id := req.CallID(); id != nil {
		info.SIPCallID = id.Value()
	}
	c := &call{info: info, dlg: dlg, hangup: make(chan string, 1), source: sourceIP(req), notify: make(chan sipfrag, 8)}
	c.promptCtx, c.promptStop = context.WithCancel(context.Background())
	defer c.promptStop()
	c.rtpPeer.Store(rtpAddr(o))
	c.hold.Store(o.Hold())
	if !s.track(c) {
		_ = dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	defer s.untrack(c)
	s.run(c, o, pt, conn)
}

// run drives one call from INVITE to its ended event.
func (s *server) run(c *call, o offer, pt int, conn *net.UDPConn) {
	ctx := context.Background()
	log := s.rt.Log.With("call_id", c.info.ID, "sip_call_id", c.info.SIPCallID)
	data := c.info.data()
	data["at"], data["codec"] = c.info.StartedAt, c.info.Codec
	if err := s.publish(ctx, c.info, TypeCallStarted, "started", data, c.info.StartedAt); err != nil {
		log.Error("call refused: started event not published", "err", err)
		_ = c.dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	if err := s.rec.writeMeta(spoolMeta{Call: c.info}); err != nil {
		log.Error("call refused: spool", "err", err)
		_ = c.dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		s.end(ctx, c, nil, nil, sideSystem, reasonFailed, "")
		return
	}
	log.Info("call started", "from", c.info.From.Value, "to", c.info.To.Value, "codec", c.info.Codec)
	_ = c.dlg.Respond(sip.StatusTrying, "Trying", nil)
	_ = c.dlg.Respond(sip.StatusRinging, "Ringing", nil)
	ring := time.NewTimer(s.cfg.Ring)
	select {
	case <-ring.C:
	case <-c.dlg.Context().Done():
		s.end(ctx, c, nil, nil, sideCaller, reasonCancel, "")
		return
	case r := <-c.hangup:
		ring.Stop()
		_ = c.dlg.Respond(sip.StatusTemporarilyUnavailable, "Temporarily Unavailable", nil)
		s.end(ctx, c, nil, nil, sideOmnibus, r, "")
		return
	}

	lw, err := s.rec.create(c.info.ID, media.LegCaller)
	if err != nil {
		log.Error("call refused: recording", "err", err)
		_ = c.dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		s.end(ctx, c, nil, nil, sideSystem, reasonFailed, "")
		return
	}
	sinks := []media.Sink{lw}
	if s.sinks != nil {
		sinks = append(sinks, s.sinks(c.info)...)
	}
	var tr *asr.Stream
	var tone *toneMeter
	var transcript string // the transcript's state, once stopMedia closed it
	if s.asr != nil {
		if s.cfg.Tone {
			tone = startTone(media.LegCaller, s.cfg.ASRQueue)
			sinks = append(sinks, tone)
		}
		tr = s.asr.start(c.info, media.LegCaller, tone)
		sinks = append(sinks, tr)
	}
	recv := &media.Receiver{Conn: conn, Peer: o.IP, Signal: c.source, PT: pt, DTMF: o.DTMF, Sinks: sinks, Timeout: s.cfg.MediaTimeout,
		Paused: c.hold.Load}
	c.recv.Store(recv)
	recvDone := make(chan error, 1)
	go func() { recvDone <- recv.Run() }()
	stopMedia := func() media.Stats {
		recv.Stop()
		if err := <-recvDone; err != nil && !errors.Is(err, media.ErrTimeout) {
			log.Warn("RTP receive stopped", "err", err)
		}
		if err := lw.w.Close(); err != nil || lw.err != nil {
			log.Error("recording not finalised", "err", errors.Join(err, lw.err))
		}
		st := recv.Stats()
		if tone != nil {
			tone.endInput() // the last segments measure what came, without waiting for more
			defer tone.close()
		}
		if tr != nil {
			// The vendor's last results come before the ended event (within VOICE_ASR_FINISH_TIMEOUT).
			transcript = tr.Close(ctx)
			if n := tr.Dropped(); n > 0 {
				log.Warn("ASR queue overflowed", "frames_dropped", n)
			}
		}
		return st
	}

	port := conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	sdp := answer(s.cfg.mediaIP, int(port), pt, o, uint64(c.info.StartedAt.Unix()), 1)
	if err := c.dlg.RespondSDP(sdp); err != nil {
		st := stopMedia()
		side, reason := sideSystem, reasonFailed
		if c.dlg.Context().Err() != nil {
			side, reason = sideCaller, reasonCancel
		}
		log.Warn("call not answered", "err", err)
		s.end(ctx, c, nil, &st, side, reason, transcript)
		return
	}
	answered := s.now().UTC()
	c.answeredAt = answered
	c.answered.Store(true)
	_ = s.rec.writeMeta(spoolMeta{Call: c.info, AnsweredAt: &answered, Transcribed: tr != nil})
	data = c.info.data()
	data["at"], data["codec"] = answered, c.info.Codec
	if tr != nil {
		data["transcript"] = "live" // the desk says "Transcribing…" until the ended event's state
	}
	if err := s.publish(ctx, c.info, TypeCallAnswered, "answered", data, answered); err != nil {
		log.Error("answered event not published", "err", err)
	}
	log.Info("call answered")

	side, reason := sideCaller, reasonBye
	select {
	case <-c.dlg.Context().Done():
		if c.referred.Load() {
			reason = reasonTransferred // the trunk ended the leg it had transferred (a PBX does)
		}
	case reason = <-c.hangup:
		side = sideOmnibus
		s.bye(c, log)
	case err := <-recvDone:
		recvDone <- err // for stopMedia
		side, reason = sideSystem, reasonTimeout
		log.Warn("hanging up: media", "err", err)
		s.bye(c, log)
	}
	if err := c.stopPrompts(); err != nil {
		log.Error("callee leg (prompts) not finalised", "err", err)
	}
	st := stopMedia()
	s.end(ctx, c, &answered, &st, side, reason, transcript)
}

func (s *server) bye(c *call, log interface{ Warn(string, ...any) }) {
	ctx, cancel := context.WithTimeout(context.Background(), max(s.cfg.ShutdownGrace, time.Second))
	defer cancel()
	if err := c.dlg.Bye(ctx); err != nil {
		log.Warn("BYE not answered", "err", err)
	}
}

// end stores the call's legs and publishes its ended event (transcript: the live transcript's
// state, "" when there was none); the spool is cleared only once the
// event is published, so a failure leaves the call to the recovery of the next start.
func (s *server) end(ctx context.Context, c *call, answered *time.Time, st *media.Stats, side, reason, transcript string) {
	endAt := s.now().UTC()
	log := s.rt.Log.With("call_id", c.info.ID)
	legs, err := s.rec.store(ctx, c.info)
	if err != nil {
		log.Error("recording not stored; left in the spool for the next start", "err", err)
		return
	}
	if st != nil {
		log = log.With("rtp_packets", st.Packets, "rtp_lost", st.Lost, "foreign", st.Foreign, "invalid", st.Invalid, "samples", st.Samples)
	}
	if err := s.publishEnded(ctx, c.info, answered, endAt, side, reason, legs, st, transcript); err != nil {
		log.Error("ended event not published; left in the spool for the next start", "err", err)
		return
	}
	s.rec.remove(c.info.ID)
	log.Info("call ended", "side", side, "reason", reason, "legs", len(legs))
}

// onReinvite answers a re-INVITE of a call in progress: a new offer (hold, resume, a codec or
// address change) gets a new answer on the same RTP port.
func (s *server) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.callByDialog(req)
	if c == nil {
		respond(tx, req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist")
		return
	}
	if err := c.dlg.ReadRequest(req, tx); err != nil {
		respond(tx, req, sip.StatusInternalServerError, "Server Internal Error")
		return
	}
	recv := c.recv.Load()
	o, err := parseOffer(req.Body())
	var pt int
	ok := err == nil && recv != nil
	if ok {
		pt, ok = o.choose(s.cfg.codecs)
	}
	if !ok {
		respond(tx, req, sip.StatusNotAcceptableHere, "Not Acceptable Here")
		return
	}
	c.hold.Store(o.Hold())
	recv.SetCodec(pt, o.DTMF)
	if !o.Hold() {
		recv.SetPeer(o.IP)
		c.rtpPeer.Store(rtpAddr(o))
	}
	port := recv.Conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	ver := uint64(req.CSeq().SeqNo)
	res := sip.NewSDPResponseFromRequest(req, answer(s.cfg.mediaIP, int(port), pt, o, uint64(c.info.StartedAt.Unix()), ver+1))
	res.AppendHeader(sip.HeaderClone(&s.contact))
	_ = tx.Respond(res)
	s.rt.Log.Info("re-INVITE answered", "call_id", c.info.ID, "hold", o.Hold(), "codec", codecName(pt))
}
