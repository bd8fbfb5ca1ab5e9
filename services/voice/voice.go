// Package voice is the phone-call channel: a SIP trunk (a PBX or a carrier) sends INVITEs to
// the connector's SIP user agent server, which answers with G.711 (µ-law or A-law, 8 kHz),
// receives the call's RTP on one port of a fixed range, records each leg, and publishes the
// call's life on omni.in.voice.call: omni.channel.call.started (INVITE accepted), .answered
// (200 OK acknowledged), .ended (durations, who hung up, the recording's URLs). An
// omni.channel.call.hangup.requested command on omni.out.voice.call.hangup ends a call; an
// omni.channel.call.transfer.requested on omni.out.voice.call.transfer sends the trunk a REFER
// (RFC 3515) to an agent extension and reports omni.channel.call.transferred or
// .transfer.failed on omni.in.voice.transfer (transfer.go); an
// omni.channel.call.prompt.requested on omni.out.voice.call.prompt plays text synthesised by
// Aliyun NLS TTS into the call, and into the recording's callee leg (prompt.go).
//
// Trunks are checked twice: the source address must be in VOICE_ALLOW (else 403), and when
// VOICE_DIGEST_USER is set, INVITE and REGISTER must carry its digest credentials (401 with a
// challenge, then 403 for a wrong password). BYE and CANCEL end a call; a re-INVITE that puts the
// call on hold (sendonly, inactive, c=0.0.0.0) pauses the media timeout; RFC 4733 DTMF digits
// are collected into the ended event.
//
// Recordings are WAV (16-bit PCM mono, 8 kHz), not Opus: a WAV leg is written to the spool
// directory packet by packet and stays playable up to the last packet if the process dies (the
// header's sizes are rewritten from the file size at the next start, which then stores it and
// publishes the call's ended event with reason "recovered"); Opus would need an encoder (cgo
// libopus; there is no maintained pure-Go one) and an Ogg page structure that a crash leaves
// torn. PCM is also what the ASR vendors take (iFlytek, Aliyun NLS, Tencent), losslessly. It
// costs 128 kbit/s, twice G.711: 58 MB per call-hour per leg, which retention bounds.
//
// Finished legs go to a gocloud.dev/blob bucket (VOICE_RECORDING_BUCKET: a directory in the
// all-in-one, S3-compatible storage in production, by URL) under <yyyy/mm/dd>/<call id>/<leg>.wav;
// recordings older than VOICE_RECORDING_RETENTION are deleted.
//
// Every decoded frame also goes to the call's sinks (media.Sink), among them, with VOICE_ASR set,
// the live transcription of the caller leg (internal/asr: iFlytek RTASR or Aliyun NLS, failing
// over to the other mid-call), whose partial and final results are published as
// omni.channel.call.segment.transcribed on omni.in.voice.transcript. ASR never holds up the
// recording: frames queue (bounded) and are dropped when the vendor falls behind, and the ended
// event says whether the transcript is complete, partial or none. Beside it a tone meter
// (pkg/voicetone, VOICE_TONE) measures the caller's voice, and each final segment carries its
// tone against the caller's first seconds of speech.
package voice

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// Event types, subjects and the Spec that declares them.
const (
	TypeCallStarted  = schemas.TypeChannelCallStarted
	TypeCallAnswered = schemas.TypeChannelCallAnswered
	TypeCallEnded    = schemas.TypeChannelCallEnded
	TypeSegment      = schemas.TypeChannelCallSegmentTranscribed
	// TypeTranscribed ends a TCCC call's after-call transcription (tccc_work.go).
	TypeTranscribed = schemas.TypeChannelCallTranscribed
	TypeHangup      = schemas.TypeChannelCallHangupRequested
	// The transfer command and its outcomes (transfer.go).
	TypeTransfer       = schemas.TypeChannelCallTransferRequested
	TypeTransferred    = schemas.TypeChannelCallTransferred
	TypeTransferFailed = schemas.TypeChannelCallTransferFailed
	TypePrompt         = schemas.TypeChannelCallPromptRequested // prompt.go

	SubjectCall       = "omni.in.voice.call"
	SubjectTranscript = "omni.in.voice.transcript"
	SubjectHangup     = "omni.out.voice.call.hangup"
	SubjectTransfer   = "omni.out.voice.call.transfer"
	SubjectPrompt     = "omni.out.voice.call.prompt"
	// SubjectTransferOutcome carries transferred and transfer.failed, beside the call's life
	// (the unifier's lane on SubjectCall takes only started, answered and ended).
	SubjectTransferOutcome = "omni.in.voice.transfer"
	// SubjectTranscription carries a TCCC call's after-call transcription outcome, beside its
	// segments (the unifier's lane on SubjectTranscript takes segments only).
	SubjectTranscription = "omni.in.voice.transcription"
)

var (
	RouteHangup   = connector.Route{Subject: SubjectHangup, Type: TypeHangup}
	RouteTransfer = connector.Route{Subject: SubjectTransfer, Type: TypeTransfer}
	RoutePrompt   = connector.Route{Subject: SubjectPrompt, Type: TypePrompt}
	Spec          = connector.Spec{
		Name:        "voice",
		Buckets:     []string{tcccBucket},
		Description: "phone calls from a SIP trunk (G.711 over RTP, recorded legs in blob storage, live transcripts) and from Tencent Cloud Contact Center (after-call records, recordings, file transcripts): call events",
		Produces: append([]connector.Route{
			{Subject: SubjectCall, Type: TypeCallStarted},
			{Subject: SubjectCall, Type: TypeCallAnswered},
			{Subject: SubjectCall, Type: TypeCallEnded},
			{Subject: SubjectTranscript, Type: TypeSegment},
			{Subject: SubjectTranscription, Type: TypeTranscribed},
			{Subject: SubjectTransferOutcome, Type: TypeTransferred},
			{Subject: SubjectTransferOutcome, Type: TypeTransferFailed},
		}, connector.ResilienceRoutes("voice")...), // audit records and alerts of the ASR and TTS vendor calls
		Consumes: []connector.Route{RouteHangup, RouteTransfer, RoutePrompt},
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	return setupWith(ctx, rt, cfg, time.Now)
}

// Hang-up sides and reasons of the ended event.
const (
	sideCaller  = "caller"
	sideOmnibus = "omnibus"
	sideSystem  = "system"

	reasonBye         = "bye"
	reasonCancel      = "cancel"
	reasonCommand     = "hangup_requested"
	reasonShutdown    = "shutdown"
	reasonTimeout     = "media_timeout"
	reasonFailed      = "failed"
	reasonRecovered   = "recovered"
	reasonTransferred = "transferred"
)

// callInfo is what every event of a call carries; the spool keeps it for recovery.
type callInfo struct {
	ID        string    `json:"id"`
	SIPCallID string    `json:"sip_call_id"`
	Direction string    `json:"direction"`
	From      identity  `json:"from"`
	To        identity  `json:"to"`
	Trunk     string    `json:"trunk"`
	Codec     string    `json:"codec"`
	StartedAt time.Time `json:"started_at"`
}

func (c callInfo) partitionKey() string { return c.From.Kind + ":" + c.From.Value }

// data returns the fields every call event has.
func (c callInfo) data() map[string]any {
	return map[string]any{"channel": "voice", "call_id": c.ID, "sip_call_id": c.SIPCallID, "direction": c.Direction,
		"from": c.From, "to": c.To, "trunk": c.Trunk}
}

// call is one call in progress.
type call struct {
	info   callInfo
	dlg    *sipgo.DialogServerSession
	hold   atomic.Bool
	hangup chan string // a reason; buffered 1, the first wins
	source netip.Addr  // where the INVITE came from
	recv   atomic.Pointer[media.Receiver]
	// answered is set once the 200 OK is sent; a transfer needs it.
	answered atomic.Bool
	// transferring is set while a REFER's outcome is awaited; notify carries its NOTIFYs.
	transferring atomic.Bool
	notify       chan sipfrag
	// referred is set when a NOTIFY reported the transfer's target answered, before it is
	// answered: a trunk that ends the leg itself right after (as a PBX does) ended it for that.
	referred atomic.Bool
	// rtpPeer is where the caller's RTP goes (the offer's c= and m=; a re-INVITE may move it).
	rtpPeer    atomic.Pointer[netip.AddrPort]
	answeredAt time.Time // set before answered
	// Prompts (prompt.go): promptCtx ends when the call does; prompts counts those playing.
	promptMu   sync.Mutex
	promptCtx  context.Context
	promptStop context.CancelFunc
	prompts    sync.WaitGroup
	// playMu serialises prompts and guards the callee leg and the RTP stream's state.
	playMu        sync.Mutex
	callee        *legWriter
	calleeSamples int64
	rtpSSRC       uint32
	rtpSeq        uint16
	rtpTS         uint32
}

func (c *call) requestHangup(reason string) {
	select {
	case c.hangup <- reason:
	default:
	}
}

// server is the running connector.
type server struct {
	cfg   *Config
	rt    *connector.Runtime
	ports *media.Ports
	rec   *recordings
	// Sinks, when set, returns extra frame sinks for a call.
	sinks func(callInfo) []media.Sink
	// now is the clock of a call's times (started, answered, ended; durations derive from them):
	// time.Now, except in tests that play hours of RTP in seconds and advance it (export_test.go).
	now func() time.Time
	// asr transcribes the caller leg live (nil: VOICE_ASR=none).
	asr *transcriber
	// tts synthesises prompts (nil: Aliyun NLS not configured).
	tts *prompter

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	dialogs *sipgo.DialogServerCache
	contact sip.ContactHeader
	secret  []byte

	mu        sync.Mutex
	calls     map[string]*call // by call id
	handlers  sync.WaitGroup
	transfers sync.WaitGroup // awaitTransfer goroutines
	stopping  atomic.Bool
}

// setupWith starts the connector with the clock now for its calls' times.
func setupWith(ctx context.Context, rt *connector.Runtime, cfg *Config, now func() time.Time) error {
	s := &server{cfg: cfg, rt: rt, calls: map[string]*call{}, secret: make([]byte, 32), now: now}
	_, _ = rand.Read(s.secret)
	var err error
	if s.ports, err = media.NewPorts(cfg.bindIP, cfg.rtpMin, cfg.rtpMax); err != nil {
		return err
	}
	if s.rec, err = newRecordings(ctx, cfg.SpoolDir, cfg.Bucket, rt.Log); err != nil {
		return err
	}
	if s.asr, err = newTranscriber(s); err != nil {
		_ = s.rec.Close()
		return err
	}
	if s.tts, err = newPrompter(s); err != nil {
		_ = s.rec.Close()
		return err
	}
	if err := s.checkVendor(ctx); err != nil {
		_ = s.rec.Close()
		return err
	}
	if err := s.recover(ctx); err != nil {
		_ = s.rec.Close()
		return err
	}
	if err := s.listen(ctx); err != nil {
		_ = s.rec.Close()
		return err
	}
	if cfg.Retention > 0 {
		rt.Go(ctx, "recording-retention", s.retention)
	}
	if cfg.TCCC.enabled() {
		if err := startTCCC(ctx, s); err != nil { // tccc.go
			return err
		}
	}
	if err := rt.Consume(ctx, RouteHangup, s.onHangupCommand, bus.ConsumerConfig{}); err != nil {
		return err
	}
	if err := rt.Consume(ctx, RouteTransfer, s.onTransferCommand, bus.ConsumerConfig{}); err != nil { // transfer.go
		return err
	}
	return rt.Consume(ctx, RoutePrompt, s.onPromptCommand, bus.ConsumerConfig{}) // prompt.go
}

// listen binds the SIP socket (so a taken port fails setup) and serves it until ctx ends, then
// hangs up every call and waits for their recordings to be stored.
func (s *server) listen(ctx context.Context) error {
	var err error
	s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("omnibus-voice"), sipgo.WithUserAgentHostname(s.cfg.mediaIP.String()))
	if err != nil {
		return err
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(s.rt.Log)); err != nil {
		return err
	}
	cli, err := sipgo.NewClient(s.ua, sipgo.WithClientLogger(s.rt.Log))
	if err != nil {
		return err
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnRegister(s.onRegister)
	s.srv.OnNotify(s.onNotify) // transfer.go
	s.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, req, sip.StatusOK, "OK")
	})
	var closer func() error
	var serve func() error
	var bound net.Addr
	if s.cfg.Transport == "tcp" {
		l, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("VOICE_SIP_LISTEN: %w", err)
		}
		closer, serve, bound = l.Close, func() error { return s.srv.ServeTCP(l) }, l.Addr()
	} else {
		l, err := net.ListenPacket("udp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("VOICE_SIP_LISTEN: %w", err)
		}
		closer, serve, bound = l.Close, func() error { return s.srv.ServeUDP(l) }, l.LocalAddr()
	}
	// The Contact of our responses names the bound port (VOICE_SIP_LISTEN may say port 0).
	ap, err := netip.ParseAddrPort(bound.String())
	if err != nil {
		_ = closer()
		return err
	}
	s.contact = sip.ContactHeader{Address: sip.Uri{User: "omnibus", Host: s.cfg.mediaIP.String(), Port: int(ap.Port())}}
	s.dialogs = sipgo.NewDialogServerCache(cli, s.contact)
	s.rt.Log.Info("SIP trunk listening", "addr", bound.String(), "transport", s.cfg.Transport,
		"rtp", s.cfg.RTPPorts, "media_ip", s.cfg.mediaIP, "digest", s.cfg.DigestUser != "")
	s.rt.Go(ctx, "sip", func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() { done <- serve() }()
		select {
		case err := <-done:
			s.drain()
			_ = s.ua.Close()
			_ = s.rec.Close()
			return err
		case <-ctx.Done():
		}
		s.drain()
		_ = closer()
		if err := <-done; err != nil {
			s.rt.Log.Debug("SIP server stopped", "err", err)
		}
		_ = s.ua.Close()
		return s.rec.Close()
	})
	return nil
}

// drain refuses new calls, hangs up the ones in progress and waits (VOICE_SHUTDOWN_GRACE, plus
// the time to store) for their ended events.
func (s *server) drain() {
	s.stopping.Store(true)
	s.mu.Lock()
	n := len(s.calls)
	for _, c := range s.calls {
		c.requestHangup(reasonShutdown)
	}
	s.mu.Unlock()
	if n > 0 {
		s.rt.Log.Info("hanging up calls in progress", "calls", n)
	}
	s.handlers.Wait()
	s.transfers.Wait() // their calls ended: each publishes its outcome and returns
}

func (s *server) track(c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	s.calls[c.info.ID] = c
	s.handlers.Add(1)
	return true
}

func (s *server) untrack(c *call) {
	s.mu.Lock()
	delete(s.calls, c.info.ID)
	s.mu.Unlock()
	s.handlers.Done()
}

// held returns call id if this connector holds it, else nil.
func (s *server) held(id string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// callByDialog finds the call of an in-dialog request.
func (s *server) callByDialog(req *sip.Request) *call {
	d, err := s.dialogs.MatchDialogRequest(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.dlg == d {
			return c
		}
	}
	return nil
}

// publish publishes one event of a call. It uses its own deadline: a call ending at shutdown
// still reports.
func (s *server) publish(ctx context.Context, c callInfo, typ, suffix string, data map[string]any, at time.Time) error {
	return s.publishOn(ctx, SubjectCall, c, typ, suffix, data, at)
}

// publishOn publishes one event of a call on subject, id voice:<call id>:<suffix>.
func (s *server) publishOn(ctx context.Context, subject string, c callInfo, typ, suffix string, data map[string]any, at time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	e, err := s.rt.NewEvent(typ, data, event.WithID("voice:"+c.ID+":"+suffix), event.WithPartitionKey(c.partitionKey()),
		event.WithTime(at), event.WithSubject(c.ID))
	if err != nil {
		return err
	}
	return s.rt.Publish(ctx, bus.Outgoing{Subject: subject, Event: e})
}

// onHangupCommand ends the call the command names, if this connector holds it.
func (s *server) onHangupCommand(_ context.Context, d bus.Delivery) error {
	var cmd struct {
		CallID string `json:"call_id"`
		Reason string `json:"reason"`
	}
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable hang-up command: %w", err))
	}
	c := s.held(cmd.CallID)
	if c == nil {
		s.rt.Log.Info("hang-up of a call not held here ignored", "call_id", cmd.CallID)
		return nil
	}
	s.rt.Log.Info("hanging up on command", "call_id", cmd.CallID, "reason", cmd.Reason)
	c.requestHangup(reasonCommand)
	return nil
}

// retention deletes expired recordings hourly.
func (s *server) retention(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.rec.expire(ctx, s.cfg.Retention, time.Now())
		if err != nil && ctx.Err() == nil {
			s.rt.Log.Warn("recording retention", "err", err)
		} else if n > 0 {
			s.rt.Log.Info("expired recordings deleted", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// recover stores what a crash left in the spool and publishes those calls' ended events.
func (s *server) recover(ctx context.Context) error {
	orphans, err := s.rec.orphans()
	if err != nil {
		return err
	}
	for _, m := range orphans {
		legs, err := s.rec.store(ctx, m.Call)
		if err != nil {
			return fmt.Errorf("recover call %s: %w", m.Call.ID, err)
		}
		end := s.rec.lastWrite(m.Call.ID, m.Call.StartedAt)
		// A call transcribed live lost the transcript of the audio after the last final segment
		// published before the crash (and of the rest of the call): partial, or none without one.
		transcript := ""
		if m.Transcribed {
			transcript = asr.None
			if s.rec.transcribed(m.Call.ID) {
				transcript = asr.Partial
			}
		}
		if err := s.publishEnded(ctx, m.Call, m.AnsweredAt, end, sideSystem, reasonRecovered, legs, nil, transcript); err != nil {
			return fmt.Errorf("recover call %s: %w", m.Call.ID, err)
		}
		s.rec.remove(m.Call.ID)
		s.rt.Log.Warn("call interrupted by a restart recovered", "call_id", m.Call.ID, "legs", len(legs))
	}
	return nil
}

// publishEnded publishes a call's ended event; st is what the caller leg's RTP receiver counted
// (nil for a call recovered after a crash); transcript is the state of its live transcript
// (asr.Complete, Partial, None), "" when the call was not transcribed.
func (s *server) publishEnded(ctx context.Context, c callInfo, answered *time.Time, end time.Time, side, reason string,
	legs []recordedLeg, st *media.Stats, transcript string) error {
	d := c.data()
	d["started_at"], d["ended_at"] = c.StartedAt.UTC(), end.UTC()
	d["duration_ms"] = max(0, end.Sub(c.StartedAt).Milliseconds())
	d["talk_ms"] = int64(0)
	if answered != nil {
		d["answered_at"] = answered.UTC()
		d["talk_ms"] = max(0, end.Sub(*answered).Milliseconds())
	}
	d["hangup_side"], d["reason"] = side, reason
	if c.Codec != "" {
		d["codec"] = c.Codec
	}
	if st != nil {
		if st.Digits != "" {
			d["dtmf"] = st.Digits
		}
		d["media"] = map[string]int{"packets": st.Packets, "lost": st.Lost, "late": st.Late, "invalid": st.Invalid + st.Unknown, "foreign": st.Foreign}
	}
	if len(legs) > 0 {
		d["recording"] = map[string]any{"legs": legs}
	}
	if transcript != "" {
		d["transcript"] = transcript
	}
	return s.publish(ctx, c, TypeCallEnded, "ended", d, end)
}
