package media

import (
	"encoding/binary"
	"testing"
	"time"
)

func packet(pt byte, seq uint16, ts uint32, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 12, 12+len(payload))
	b[0], b[1] = 0x80, pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	return append(b, payload...)
}

type counter struct{ samples int64 }

func (c *counter) Frame(f Frame) {
	if f.Offset != time.Duration(c.samples)*time.Second/Rate {
		panic("frame offset out of step")
	}
	c.samples += int64(len(f.PCM) / 2)
}

func TestReceiverGapsAndLate(t *testing.T) {
	t.Parallel()
	c := &counter{}
	r := &Receiver{PT: PCMU, DTMF: 101, Sinks: []Sink{c}}
	p := make([]byte, 160)
	r.Handle(packet(0, 1, 1000, 7, p))
	r.Handle(packet(0, 3, 1320, 7, p))         // one packet lost: 160 samples of silence
	r.Handle(packet(0, 2, 1160, 7, p))         // it arrives late: dropped
	r.Handle(packet(0, 4, 1480, 8, p))         // new SSRC: continues without a gap
	r.Handle(packet(0, 5, 1480+8000*60, 8, p)) // a jump of 60 s: capped at MaxGap (10 s)
	r.Handle(packet(96, 6, 0, 8, p))           // not negotiated
	r.Handle([]byte{1, 2, 3})                  // not RTP
	st := r.Stats()
	want := int64(160 + 160 + 160 + 160 + 10*8000 + 160)
	if st.Samples != want || c.samples != want || st.Late != 1 || st.Unknown != 1 || st.Invalid != 1 || st.Packets != 4 {
		t.Fatalf("stats %+v, sink %d, want %d samples", st, c.samples, want)
	}
}

func TestDigits(t *testing.T) {
	t.Parallel()
	r := &Receiver{PT: PCMU, DTMF: 101}
	ts := uint32(0)
	for _, e := range []byte{5, 11, 10, 15, 16} { // 5 # * D, then 16 (flash): not a digit
		for i := range 4 {
			end := byte(0)
			if i >= 2 {
				end = 0x80
			}
			r.Handle(packet(101, uint16(i), ts, 1, []byte{e, end, 0, 160}))
		}
		ts += 800
	}
	if d := r.Stats().Digits; d != "5#*D" {
		t.Fatalf("digits %q", d)
	}
}

// FuzzReceiver: any datagram is handled without a panic; samples only grow, by at most MaxGap
// plus the payload per datagram; the sink sees exactly the samples counted.
func FuzzReceiver(f *testing.F) {
	f.Add(packet(0, 1, 160, 1, make([]byte, 160)))
	f.Add(packet(8, 1, 160, 1, make([]byte, 160)))
	f.Add(packet(101, 1, 160, 1, []byte{1, 0x80, 0, 160}))
	f.Add(packet(101, 1, 160, 1, []byte{1}))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0xde, 0xad}) // extension header
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9})                      // padding bit, bad length
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &counter{}
		r := &Receiver{PT: PCMU, DTMF: 101, Sinks: []Sink{c}, MaxGap: time.Second}
		// The datagram alone, then after a packet that sets the stream's clock.
		r.Handle(packet(0, 1, 0, 1, make([]byte, 160)))
		before := r.Stats().Samples
		r.Handle(b)
		r.Handle(b) // a duplicate is late, or a second event end, and must not double the digit
		after := r.Stats()
		if after.Samples < before || after.Samples-before > 2*(8000+int64(len(b))) {
			t.Fatalf("samples %d -> %d for a %d-byte datagram", before, after.Samples, len(b))
		}
		if c.samples != after.Samples {
			t.Fatalf("sink saw %d samples, stats say %d", c.samples, after.Samples)
		}
		if len(after.Digits) > 1 {
			t.Fatalf("one event reported %d times", len(after.Digits))
		}
	})
}

// Lost counts the audio packets that never arrived (RFC 3550 A.3): a gap, a late packet that
// fills it, a sequence number wrapping past 65535, and a new stream after a re-INVITE.
func TestReceiverLoss(t *testing.T) {
	t.Parallel()
	r := &Receiver{PT: PCMU, DTMF: 101}
	p := make([]byte, 160)
	ts, first := uint32(0), uint16(65530)
	send := func(ssrc uint32, seqs ...uint16) {
		for _, s := range seqs {
			r.Handle(packet(0, s, ts+uint32(s-first)*160, ssrc, p)) // timestamps follow the sequence across the wrap
		}
	}
	send(1, 65530, 65531, 65533, 65534) // 65532 lost
	if got := r.Stats().Lost; got != 1 {
		t.Fatalf("lost %d after a gap, want 1", got)
	}
	send(1, 65532) // arrives late: not lost after all
	if got := r.Stats().Lost; got != 0 {
		t.Fatalf("lost %d after the late packet, want 0", got)
	}
	send(1, 65535, 0, 1, 4) // wraps; 2 and 3 lost
	if got := r.Stats().Lost; got != 2 {
		t.Fatalf("lost %d across the wrap, want 2", got)
	}
	ts, first = 1<<20, 100
	send(2, 100, 101, 103) // a new stream: its own loss, 102, on top
	if st := r.Stats(); st.Lost != 3 || st.Late != 1 {
		t.Fatalf("stats %+v, want 3 lost, 1 late", st)
	}
}
