package voice_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// trunk is a SIP trunk in Go (sipgo as a UAC with a server for in-dialog requests), for the
// cases baresip cannot script: wrong credentials, CANCEL, re-INVITE, DTMF, foreign RTP.
type trunk struct {
	dc   *sipgo.DialogClientCache
	cli  *sipgo.Client
	port int
	byes chan struct{} // a BYE from the connector arrived
	uas  string        // host:port of the connector

	// REFER (transfer): the trunk answers refer.status (202 when 0) and then sends one NOTIFY
	// per refer.frags line (message/sipfrag) in the call's dialog; refers gets each REFER.
	mu     sync.Mutex
	refer  referScript
	sess   *sipgo.DialogClientSession // the last call's dialog
	refers chan *sip.Request
}

type referScript struct {
	status int
	frags  []string
}

// scriptRefer sets how the trunk answers the next REFERs.
func (tr *trunk) scriptRefer(status int, frags ...string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.refer = referScript{status: status, frags: frags}
}

// onRefer answers a REFER as scripted and reports the transfer's progress with NOTIFYs.
func (tr *trunk) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	tr.mu.Lock()
	sc, sess := tr.refer, tr.sess
	tr.mu.Unlock()
	if sc.status == 0 {
		sc.status = sip.StatusAccepted
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, sc.status, "", nil))
	tr.refers <- req
	if sc.status >= 300 || sess == nil {
		return
	}
	go func() {
		for i, f := range sc.frags {
			n := sip.NewRequest(sip.NOTIFY, sess.InviteResponse.Contact().Address)
			n.AppendHeader(sip.NewHeader("Event", "refer"))
			state := "active;expires=60"
			if i == len(sc.frags)-1 {
				state = "terminated;reason=noresource"
			}
			n.AppendHeader(sip.NewHeader("Subscription-State", state))
			n.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
			n.SetBody([]byte(f + "\r\n"))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = sess.Do(ctx, n)
			cancel()
		}
	}()
}

func newTrunk(t *testing.T, uas string) *trunk {
	t.Helper()
	tr := &trunk{port: freePort(t), byes: make(chan struct{}, 4), uas: uas, refers: make(chan *sip.Request, 4)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-trunk"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(tr.port)
	tr.cli, err = sipgo.NewClient(ua, sipgo.WithClientAddr(addr), sipgo.WithClientLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	tr.dc = sipgo.NewDialogClientCache(tr.cli, sip.ContactHeader{Address: sip.Uri{User: "trunk", Host: "127.0.0.1", Port: tr.port}})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := tr.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
		}
		tr.byes <- struct{}{}
	})
	srv.OnRefer(tr.onRefer)
	l, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(l) }()
	t.Cleanup(func() { _ = ua.Close(); _ = l.Close() })
	return tr
}

// offer is an SDP offer of PCMU and PCMA with telephone-event 101, media from rtpPort.
func offer(rtpPort int, dir string) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=trunk 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=%s\r\n", rtpPort, dir))
}

// call is one call of the trunk.
type call struct {
	sess   *sipgo.DialogClientSession
	rtp    *net.UDPConn
	to     *net.UDPAddr // the connector's RTP port
	seq    uint16
	ts     uint32
	answer string
}

func (tr *trunk) invite(ctx context.Context, t *testing.T, from, to string, user, pass string) (*call, error) {
	t.Helper()
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rtp.Close() })
	host, port := splitAddr(t, tr.uas)
	fromH := &sip.FromHeader{Address: sip.Uri{User: from, Host: "127.0.0.1", Port: tr.port}, Params: sip.NewParams()}
	fromH.Params.Add("tag", sip.GenerateTagN(16))
	sess, err := tr.dc.Invite(ctx, sip.Uri{User: to, Host: host, Port: port}, offer(rtp.LocalAddr().(*net.UDPAddr).Port, "sendrecv"),
		sip.NewHeader("Content-Type", "application/sdp"), fromH)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = sess.Close() })
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: pass}); err != nil {
		return nil, err
	}
	if err := sess.Ack(ctx); err != nil {
		return nil, err
	}
	tr.mu.Lock()
	tr.sess = sess // answered: REFERs may come
	tr.mu.Unlock()
	c := &call{sess: sess, rtp: rtp, answer: string(sess.InviteResponse.Body())}
	m := regexp.MustCompile(`m=audio (\d+) `).FindStringSubmatch(c.answer)
	if m == nil {
		t.Fatalf("no m=audio in the answer:\n%s", c.answer)
	}
	p, _ := strconv.Atoi(m[1])
	c.to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p}
	return c, nil
}

func splitAddr(t *testing.T, hp string) (string, int) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// rtpPacket returns an RTP packet (version 2, SSRC 0x1234).
func rtpPacket(pt byte, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0] = 0x80
	b[1] = pt
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0x1234)
	return append(b, payload...)
}

// sendAudio sends d of µ-law audio (a tone-ish pattern) in 20 ms packets, paced.
func (c *call) sendAudio(t *testing.T, d time.Duration) {
	t.Helper()
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(0x10 + i%32)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for range int(d / (20 * time.Millisecond)) {
		if _, err := c.rtp.WriteToUDP(rtpPacket(0, c.seq, c.ts, c.seq == 0, payload), c.to); err != nil {
			t.Fatal(err)
		}
		c.seq++
		c.ts += 160
		<-tick.C
	}
}

// sendDigit sends an RFC 4733 event: three progress packets and the end packet three times.
func (c *call) sendDigit(t *testing.T, event byte) {
	t.Helper()
	for i := range 6 {
		end := byte(0)
		if i >= 3 {
			end = 0x80
		}
		dur := uint16(160 * (min(i, 3) + 1))
		payload := []byte{event, end | 10, byte(dur >> 8), byte(dur)}
		if _, err := c.rtp.WriteToUDP(rtpPacket(101, c.seq, c.ts, i == 0, payload), c.to); err != nil {
			t.Fatal(err)
		}
		c.seq++
		time.Sleep(5 * time.Millisecond)
	}
	c.ts += 640
}

// reinvite sends an in-dialog INVITE with direction dir, ACKs its 200 and returns the answer.
func (c *call) reinvite(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	contact := c.sess.InviteResponse.Contact()
	req := sip.NewRequest(sip.INVITE, contact.Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer(c.rtp.LocalAddr().(*net.UDPAddr).Port, dir))
	res, err := c.sess.Do(ctx, req)
	if err != nil {
		t.Fatalf("re-INVITE: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("re-INVITE answered %d", res.StatusCode)
	}
	ack := sip.NewRequest(sip.ACK, contact.Address)
	if err := c.sess.WriteRequest(ack); err != nil {
		t.Fatalf("ACK of re-INVITE: %v", err)
	}
	return string(res.Body())
}

// status returns the SIP status of a failed WaitAnswer, or 0.
func status(err error) int {
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return de.Res.StatusCode
	}
	var dv sipgo.ErrDialogResponse
	if errors.As(err, &dv) {
		return dv.Res.StatusCode
	}
	return 0
}

// waitBye fails the test with msg unless the connector sends a BYE within d.
func (tr *trunk) waitBye(t *testing.T, d time.Duration, msg string) {
	t.Helper()
	select {
	case <-tr.byes:
	case <-time.After(d):
		t.Fatal(msg)
	}
}

// dial places an answered call from a new trunk.
func dial(t *testing.T, tb *testBundle) (*trunk, *call) {
	t.Helper()
	tr := newTrunk(t, tb.sipAddr)
	c, err := tr.invite(ctxFor(t, 10*time.Second), t, customer, hotline, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return tr, c
}
