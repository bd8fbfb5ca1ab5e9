package voice_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

const (
	customer = "+8613800138000"
	hotline  = "4008001234"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recordedMS returns the length of a leg's stored WAV.
func recordedMS(t *testing.T, tb *testBundle, url string) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(tb.records, strings.TrimPrefix(url, "file://"+tb.records+"/")))
	if err != nil {
		t.Fatalf("recording %s: %v", url, err)
	}
	defer f.Close()
	n, rate, err := wav.Info(f)
	if err != nil {
		t.Fatal(err)
	}
	return n * 1000 / int64(rate)
}

func TestDigestAuth(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_DIGEST_USER": "pbx", "VOICE_DIGEST_PASSWORD": "s3cret"})
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"no credentials", "", "", 401},
		{"wrong password", "pbx", "guess", 403},
		{"wrong user", "other", "s3cret", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrunk(t, tb.sipAddr)
			_, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, tc.user, tc.pass)
			if got := status(err); got != tc.want {
				t.Fatalf("INVITE answered %d (%v), want %d", got, err, tc.want)
			}
		})
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, voice.SubjectCall+".>"); n != 0 {
		t.Fatalf("%d call events published for refused INVITEs", n)
	}
	tr := newTrunk(t, tb.sipAddr)
	c, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, "pbx", "s3cret")
	if err != nil {
		t.Fatalf("INVITE with the right credentials: %v", err)
	}
	c.sendAudio(t, 200*time.Millisecond)
	if err := c.sess.Bye(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.Reason != "bye" || d.From.Value != customer || d.To.Value != "+86"+hotline {
		t.Fatalf("ended = %+v", d)
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_ALLOW": "192.0.2.10/32"})
	tr := newTrunk(t, tb.sipAddr)
	_, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, "", "")
	if got := status(err); got != 403 {
		t.Fatalf("INVITE from 127.0.0.1 answered %d (%v), want 403", got, err)
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, voice.SubjectCall+".>"); n != 0 {
		t.Fatalf("%d call events published for a refused INVITE", n)
	}
}

// TestMalformedSIP sends datagrams that are not SIP, SIP without the headers a transaction
// needs, and INVITEs with unusable SDP: each is refused or dropped, and the connector still
// answers a good call afterwards.
func TestMalformedSIP(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, nil)
	conn, err := net.Dial("udp", tb.sipAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	invite := func(callID, ctype, body string) string {
		return "INVITE sip:" + hotline + "@" + tb.sipAddr + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bK" + callID + "\r\n" +
			"From: <sip:" + customer + "@127.0.0.1>;tag=a" + callID + "\r\nTo: <sip:" + hotline + "@127.0.0.1>\r\n" +
			"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContact: <sip:trunk@" + conn.LocalAddr().String() + ">\r\n" +
			"Max-Forwards: 70\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	for _, tc := range []struct {
		name, msg string
		want      string // status line prefix, "" = no answer expected
	}{
		{"garbage", "\x00\x01hello\xff\r\n\r\n", ""},
		{"no headers", "INVITE sip:x@127.0.0.1 SIP/2.0\r\n\r\n", "SIP/2.0 400"},
		{"bad content length", strings.Replace(invite("c1", "application/sdp", "v=0\r\n"), "Content-Length: 5", "Content-Length: 99999", 1), ""},
		{"no SDP", invite("c2", "application/sdp", ""), "SIP/2.0 488"},
		{"SDP garbage", invite("c3", "application/sdp", "this is not SDP"), "SIP/2.0 488"},
		{"no common codec", invite("c4", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"), "SIP/2.0 488"},
		{"video only", invite("c5", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\n"), "SIP/2.0 488"},
		{"port out of range", invite("c6", "application/sdp", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n"), "SIP/2.0 488"},
	} {
		if _, err := conn.Write([]byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		if tc.want == "" {
			continue
		}
		buf := make([]byte, 4096)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("%s: no answer: %v", tc.name, err)
			}
			if strings.HasPrefix(string(buf[:n]), "SIP/2.0 100") {
				continue
			}
			if !strings.HasPrefix(string(buf[:n]), tc.want) {
				t.Fatalf("%s: answered %q, want %s", tc.name, buf[:n], tc.want)
			}
			break
		}
	}
	if n := tb.bus.StoredCount(t, bus.StreamIn, voice.SubjectCall+".>"); n != 0 {
		t.Fatalf("%d call events published for malformed INVITEs", n)
	}
	tr := newTrunk(t, tb.sipAddr)
	c, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, "", "")
	if err != nil {
		t.Fatalf("a good call after the bad input: %v", err)
	}
	_ = c.sess.Bye(ctxFor(t, 5*time.Second))
	tb.waitEnded(t, 1, 10*time.Second)
}

// TestForeignAndMisdirectedRTP sends RTP from an address that is neither the trunk's nor its
// SDP's, and to ports of the range that no call holds: none of it is recorded, and the call's
// own audio is.
func TestForeignAndMisdirectedRTP(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, nil)
	_, c := dial(t, tb)
	// 127.0.0.2 is loopback too on Linux, but not the trunk's address.
	if foreign, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}); err == nil {
		for i := range 50 {
			_, _ = foreign.WriteToUDP(rtpPacket(0, uint16(i), uint32(i*160), false, make([]byte, 160)), c.to)
		}
		_ = foreign.Close()
	} else {
		t.Logf("no 127.0.0.2 on this machine (%v): foreign source not tested", err)
	}
	for off := 2; off <= 10; off += 2 { // ports of the range no call holds: nothing listens
		to := &net.UDPAddr{IP: c.to.IP, Port: c.to.Port + off}
		for i := range 10 {
			_, _ = c.rtp.WriteToUDP(rtpPacket(0, uint16(i), uint32(i*160), false, make([]byte, 160)), to)
		}
	}
	_, _ = c.rtp.WriteToUDP([]byte("not rtp"), c.to)
	c.sendAudio(t, time.Second)
	if err := c.sess.Bye(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.Recording == nil || len(d.Recording.Legs) != 1 {
		t.Fatalf("recording = %+v", d.Recording)
	}
	if ms := recordedMS(t, tb, d.Recording.Legs[0].URL); ms != 1000 {
		t.Fatalf("recorded %d ms, want the 1000 ms the trunk sent to its port", ms)
	}
}

// TestCancelWhileRinging: the trunk gives up before the answer (CANCEL): the call ends
// unanswered, by the caller, with reason cancel.
func TestCancelWhileRinging(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_RING": "10s"})
	tr := newTrunk(t, tb.sipAddr)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		bustestWait(t, tb, voice.TypeCallStarted)
		time.Sleep(200 * time.Millisecond) // ringing
		cancel()                           // WaitAnswer sends CANCEL
	}()
	_, err := tr.invite(ctx, t, customer, hotline, "", "")
	if err == nil {
		t.Fatal("the call was answered")
	}
	got := tb.waitEnded(t, 1, 10*time.Second)
	d := ended(t, got[voice.TypeCallEnded][0])
	if d.HangupSide != "caller" || d.Reason != "cancel" || d.AnsweredAt != "" || d.TalkMS != 0 || d.Recording != nil {
		t.Fatalf("ended = %+v", d)
	}
	if len(got[voice.TypeCallAnswered]) != 0 {
		t.Fatal("answered event for a cancelled call")
	}
}

func bustestWait(t *testing.T, tb *testBundle, typ string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(tb.events(t)[typ]) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHoldResumeAndDTMF: a re-INVITE puts the call on hold (sendonly → recvonly answer), which
// keeps the media timeout from hanging up while no RTP flows; a second one resumes it; RFC 4733
// digits end up in the ended event.
func TestHoldResumeAndDTMF(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_MEDIA_TIMEOUT": "1s"})
	tr := newTrunk(t, tb.sipAddr)
	ctx := ctxFor(t, 30*time.Second)
	c, err := tr.invite(ctx, t, customer, hotline, "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.sendAudio(t, 400*time.Millisecond)
	if a := c.reinvite(ctx, t, "sendonly"); !strings.Contains(a, "a=recvonly") {
		t.Fatalf("hold answered without a=recvonly:\n%s", a)
	}
	time.Sleep(2500 * time.Millisecond) // on hold, silent, past the media timeout
	select {
	case <-tr.byes:
		t.Fatal("the connector hung up a call on hold")
	default:
	}
	if a := c.reinvite(ctx, t, "sendrecv"); !strings.Contains(a, "a=sendrecv") {
		t.Fatalf("resume answered without a=sendrecv:\n%s", a)
	}
	c.sendAudio(t, 200*time.Millisecond)
	for _, e := range []byte{1, 11, 10, 0} { // 1 # * 0
		c.sendDigit(t, e)
	}
	c.sendAudio(t, 200*time.Millisecond)
	if err := c.sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.Reason != "bye" || d.HangupSide != "caller" || d.DTMF != "1#*0" {
		t.Fatalf("ended = %+v, want bye by the caller with digits 1#*0", d)
	}
}

// TestMediaTimeout: an answered call that sends no RTP is hung up (BYE) by the connector.
func TestMediaTimeout(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_MEDIA_TIMEOUT": "1s"})
	tr := newTrunk(t, tb.sipAddr)
	if _, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, "", ""); err != nil {
		t.Fatal(err)
	}
	tr.waitBye(t, 10*time.Second, "no BYE after the media timeout")
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.HangupSide != "system" || d.Reason != "media_timeout" {
		t.Fatalf("ended = %+v", d)
	}
}

// TestHangupCommand: omni.channel.call.hangup.requested ends the call with a BYE.
func TestHangupCommand(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, nil)
	tr, c := dial(t, tb)
	c.sendAudio(t, 300*time.Millisecond)
	if s := answeredTranscript(t, tb); s != "" {
		t.Errorf("answered event's transcript %q, want none said without VOICE_ASR", s)
	}
	var callID string
	for _, e := range tb.events(t)[voice.TypeCallAnswered] {
		var d struct {
			CallID string `json:"call_id"`
		}
		_ = event.DecodeData(e, &d)
		callID = d.CallID
	}
	cmd, err := event.New(voice.TypeHangup, "/desk", map[string]any{"channel": "voice", "call_id": callID, "reason": "agent ended the call"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.bus.Client.Publish(ctxFor(t, 5*time.Second), voice.SubjectHangup, cmd); err != nil {
		t.Fatal(err)
	}
	tr.waitBye(t, 10*time.Second, "no BYE after the hang-up command")
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.HangupSide != "omnibus" || d.Reason != "hangup_requested" || d.Recording == nil {
		t.Fatalf("ended = %+v", d)
	}
}

// TestShutdownHangsUp: stopping the connector hangs up the calls in progress and stores their
// recordings before it returns.
func TestShutdownHangsUp(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, nil)
	tr, c := dial(t, tb)
	c.sendAudio(t, 500*time.Millisecond)
	tb.stop()
	tr.waitBye(t, 5*time.Second, "no BYE at shutdown")
	d := ended(t, tb.waitEnded(t, 1, 5*time.Second)[voice.TypeCallEnded][0])
	if d.HangupSide != "omnibus" || d.Reason != "shutdown" || d.Recording == nil {
		t.Fatalf("ended = %+v", d)
	}
	if ms := recordedMS(t, tb, d.Recording.Legs[0].URL); ms != 500 {
		t.Fatalf("recorded %d ms of 500", ms)
	}
}

// TestTCPTransport: with VOICE_SIP_TRANSPORT=tcp the server answers over TCP, and a REGISTER
// from an allowed trunk without digest configured is accepted.
func TestTCPTransport(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_SIP_TRANSPORT": "tcp"})
	conn, err := net.DialTimeout("tcp", tb.sipAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{"OPTIONS", "REGISTER"} {
		msg := method + " sip:" + tb.sipAddr + " SIP/2.0\r\nVia: SIP/2.0/TCP " + conn.LocalAddr().String() + ";branch=z9hG4bK" + method + "\r\n" +
			"From: <sip:pbx@127.0.0.1>;tag=t1\r\nTo: <sip:pbx@127.0.0.1>\r\nCall-ID: tcp-" + method + "\r\nCSeq: 1 " + method + "\r\n" +
			"Contact: <sip:pbx@" + conn.LocalAddr().String() + ";transport=tcp>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			t.Fatalf("%s over TCP: %q, %v", method, buf[:n], err)
		}
	}
}

// TestHangupWhileRinging: a hang-up command for a call that still rings answers the INVITE
// with 480; the call ends unanswered, by omnibus.
func TestHangupWhileRinging(t *testing.T) {
	t.Parallel()
	tb := start(t, nil, map[string]string{"VOICE_RING": "20s"})
	tr := newTrunk(t, tb.sipAddr)
	go func() {
		bustestWait(t, tb, voice.TypeCallStarted)
		started := tb.events(t)[voice.TypeCallStarted]
		if len(started) == 0 {
			return
		}
		var d struct {
			CallID string `json:"call_id"`
		}
		_ = event.DecodeData(started[0], &d)
		cmd, err := event.New(voice.TypeHangup, "/desk", map[string]any{"channel": "voice", "call_id": d.CallID})
		if err == nil {
			_ = tb.bus.Client.Publish(context.Background(), voice.SubjectHangup, cmd)
		}
	}()
	_, err := tr.invite(ctxFor(t, 15*time.Second), t, customer, hotline, "", "")
	if got := status(err); got != 480 {
		t.Fatalf("INVITE answered %d (%v), want 480", got, err)
	}
	d := ended(t, tb.waitEnded(t, 1, 10*time.Second)[voice.TypeCallEnded][0])
	if d.HangupSide != "omnibus" || d.Reason != "hangup_requested" || d.AnsweredAt != "" {
		t.Fatalf("ended = %+v", d)
	}
}
