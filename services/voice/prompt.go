package voice

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// Prompts: an omni.channel.call.prompt.requested command names an answered call and a text;
// Aliyun NLS speech synthesis (TTS RESTful, through the aliyun/tts resilience route) speaks it as
// 8 kHz PCM, which is encoded to the call's G.711 law and sent to the caller's RTP address from
// the call's RTP socket (symmetric RTP), one 20 ms packet every 20 ms, and written into the
// callee leg of the recording at its time in the call (the leg is silence before it). Prompts of
// one call play one after the other; the call's end cuts the one playing.

// ttsSettings: one synthesis within 5 s, retried once (it is idempotent).
var ttsSettings = resilience.Settings{Timeout: 5 * time.Second, Budget: 8 * time.Second, MaxAttempts: 2,
	BreakerMinCalls: 5, BreakerOpenFor: 30 * time.Second}

// packetSamples is the samples of one 20 ms RTP packet.
const packetSamples = media.Rate / 50

// prompter synthesises prompts; nil when Aliyun NLS is not configured.
type prompter struct {
	ali   *asr.Aliyun
	route *resilience.Route
}

func newPrompter(s *server) (*prompter, error) {
	if !s.cfg.hasAliyun() {
		return nil, nil
	}
	reg, err := s.rt.Resilience()
	if err != nil {
		return nil, err
	}
	rt, err := reg.Route(resilience.RouteSpec{Vendor: "aliyun", Op: "tts", Idempotent: true, Settings: ttsSettings, Classify: classifyHandshake})
	if err != nil {
		return nil, err
	}
	return &prompter{route: rt, ali: &asr.Aliyun{TokenURL: s.cfg.AliyunTokenURL, AccessKeyID: s.cfg.AliyunAccessKeyID,
		AccessKeySecret: s.cfg.AliyunAccessSecret, AppKey: s.cfg.AliyunAppKey}}, nil
}

// synthesize returns text spoken as 8 kHz 16-bit little-endian PCM.
func (p *prompter) synthesize(ctx context.Context, s *server, callID, text, voice string) ([]byte, error) {
	return resilience.Do(ctx, p.route, resilience.Call{CorrelationID: callID},
		func(ctx context.Context, a *resilience.Attempt) ([]byte, error) {
			pcm, err := p.ali.Synthesize(ctx, s.cfg.AliyunTTSURL, text, voice)
			reportVendorError(a, err)
			return pcm, err
		})
}

// onPromptCommand synthesises the prompt and starts playing it into the call.
func (s *server) onPromptCommand(ctx context.Context, d bus.Delivery) error {
	var cmd struct {
		CallID  string `json:"call_id"`
		Text    string `json:"text"`
		Voice   string `json:"voice"`
		AgentID string `json:"agent_id"`
	}
	if err := event.DecodeData(d.Event, &cmd); err != nil {
		return bus.Permanent(fmt.Errorf("undecodable prompt command: %w", err))
	}
	c := s.held(cmd.CallID)
	log := s.rt.Log.With("call_id", cmd.CallID, "agent_id", cmd.AgentID)
	switch {
	case c == nil:
		log.Info("prompt for a call not held here ignored")
		return nil
	case s.tts == nil:
		log.Warn("prompt ignored: Aliyun NLS (VOICE_ALIYUN_*) is not configured")
		return nil
	case !c.answered.Load():
		log.Info("prompt for a call not answered ignored")
		return nil
	}
	if cmd.Voice == "" {
		cmd.Voice = s.cfg.TTSVoice
	}
	pcm, err := s.tts.synthesize(ctx, s, c.info.ID, cmd.Text, cmd.Voice)
	if err != nil {
		// The route has retried; a prompt played later is worse than none: dead-letter it now,
		// with the reason, for the ops page.
		log.Warn("prompt not synthesised", "err", err)
		return bus.Permanent(fmt.Errorf("prompt not synthesised: %w", err))
	}
	if !c.startPrompt() {
		log.Info("prompt synthesised after the call ended: not played")
		return nil
	}
	log.Info("playing prompt", "ms", len(pcm)/2*1000/media.Rate, "voice", cmd.Voice)
	go func() {
		defer c.prompts.Done()
		if err := s.play(c, pcm); err != nil {
			log.Warn("prompt not played to the end", "err", err)
		}
	}()
	return nil
}

// startPrompt registers a prompt to play; false once the call is ending.
func (c *call) startPrompt() bool {
	c.promptMu.Lock()
	defer c.promptMu.Unlock()
	if c.promptCtx.Err() != nil {
		return false
	}
	c.prompts.Add(1)
	return true
}

// stopPrompts cuts the prompt playing, waits for it and closes the callee leg (before the
// recording is stored).
func (c *call) stopPrompts() error {
	c.promptMu.Lock()
	c.promptStop()
	c.promptMu.Unlock()
	c.prompts.Wait()
	c.playMu.Lock()
	defer c.playMu.Unlock()
	if c.callee == nil {
		return nil
	}
	if err := c.callee.w.Close(); err != nil {
		return err
	}
	return c.callee.err
}

// play sends pcm to the caller as RTP, paced in real time, and writes what it sent into the
// callee leg, after silence up to the prompt's time in the call.
func (s *server) play(c *call, pcm []byte) error {
	c.playMu.Lock()
	defer c.playMu.Unlock()
	recv, peer := c.recv.Load(), c.rtpPeer.Load()
	if recv == nil || peer == nil {
		return fmt.Errorf("the call has no media")
	}
	if c.callee == nil {
		lw, err := s.rec.create(c.info.ID, media.LegCallee)
		if err != nil {
			return fmt.Errorf("callee leg: %w", err)
		}
		c.callee = lw
		var b [12]byte
		_, _ = rand.Read(b[:])
		c.rtpSSRC, c.rtpSeq, c.rtpTS = binary.BigEndian.Uint32(b[:4]), binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint32(b[8:])
	}
	at := int64(time.Since(c.answeredAt) * media.Rate / time.Second)
	for pad := at - c.calleeSamples; pad > 0; { // silence before the prompt, a second at a time
		n := min(pad, media.Rate)
		c.callee.Frame(media.Frame{Leg: media.LegCallee, PCM: make([]byte, 2*n)})
		c.calleeSamples += n
		pad -= n
	}
	pt := recv.PayloadType()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for off := 0; off < len(pcm); off += 2 * packetSamples {
		frame := pcm[off:min(off+2*packetSamples, len(pcm))]
		var payload, heard []byte
		if pt == media.PCMA {
			payload = g711.EncodeAlaw(frame)
			heard = g711.DecodeAlaw(payload)
		} else {
			payload = g711.EncodeUlaw(frame)
			heard = g711.DecodeUlaw(payload)
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: uint8(pt), SequenceNumber: c.rtpSeq, Timestamp: c.rtpTS,
			SSRC: c.rtpSSRC, Marker: off == 0}, Payload: payload}
		b, err := pkt.Marshal()
		if err != nil {
			return err
		}
		if _, err := recv.Conn.WriteToUDPAddrPort(b, *peer); err != nil {
			return fmt.Errorf("RTP to %s: %w", peer, err)
		}
		c.rtpSeq++
		c.rtpTS += uint32(len(payload))
		c.callee.Frame(media.Frame{Leg: media.LegCallee, PCM: heard})
		c.calleeSamples += int64(len(heard) / 2)
		select {
		case <-tick.C:
		case <-c.promptCtx.Done():
			return fmt.Errorf("the call ended %d ms into the prompt", off/2*1000/media.Rate)
		}
	}
	return nil
}

// rtpAddr is where the caller's RTP goes: the offer's address and port.
func rtpAddr(o offer) *netip.AddrPort {
	ap := netip.AddrPortFrom(o.IP, uint16(o.Port))
	return &ap
}
