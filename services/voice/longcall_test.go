package voice_test

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

// TestTwoHourCall plays a 2-hour call: 360,000 packets of 20 ms µ-law from the trunk, sent as
// fast as loopback and the receiver take them (in windows of 100 packets, each sent once the
// spool's caller leg has grown by the previous one, so the kernel's socket buffer never
// overflows — that is the sender's pacing, not the connector's: the connector writes every
// packet as it arrives and neither paces nor drops what comes faster than real time). The
// sequence number starts near 65535 and wraps five times; the RTP timestamp starts a minute
// before 2^32 and wraps once.
//
// The call's times come from a test clock (voice.ServiceWithClock) that the test moves forward
// to answered + 2 h once the audio is in, as if it had been played in real time; the ended
// event's talk_ms is then 2 h plus the few ms the hang-up took, which the test measures.
//
// It checks: every packet counted, none lost or late; the caller leg exactly 2 h (57,600,000
// samples, 115,200,044 bytes: a 2 h 8 kHz 16-bit mono leg is 115 MB, far below the 4 GiB a
// RIFF header's 32-bit sizes allow, so WAV is fine for a call of any length a trunk allows —
// 74 h would reach it); the live heap bounded while it streams (a whole-call buffer would be
// 115 MB; the connector holds one packet).
func TestTwoHourCall(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-hour call (115 MB of recording) is not short")
	}
	t.Parallel()
	var skew atomic.Int64
	tb := startService(t, nil, map[string]string{"VOICE_MEDIA_TIMEOUT": "30s"},
		voice.ServiceWithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	_, c := dial(t, tb)
	const (
		packets = 360_000 // 2 h of 20 ms
		window  = 100
		samples = packets * 160
	)
	c.seq, c.ts = 65_000, ^uint32(0)-60*8000+1

	var leg string
	bustest.WaitFor(t, 10*time.Second, "the caller leg in the spool", func() bool {
		m, _ := filepath.Glob(filepath.Join(tb.spool, "*.caller.wav"))
		if len(m) == 1 {
			leg = m[0]
		}
		return leg != ""
	})
	live := liveHeap()
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				if h := liveHeap(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	})

	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(0x10 + i%32)
	}
	started := time.Now()
	pkt := make([]byte, 0, 172)
	for sent := 0; sent < packets; {
		for range min(window, packets-sent) {
			pkt = append(pkt[:0], rtpPacket(0, c.seq, c.ts, sent == 0, payload)...)
			if _, err := c.rtp.WriteToUDP(pkt, c.to); err != nil {
				t.Fatal(err)
			}
			c.seq++
			c.ts += 160
			sent++
		}
		want := int64(wav.HeaderSize + 2*160*sent)
		for {
			st, err := os.Stat(leg)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() >= want {
				break
			}
			runtime.Gosched()
		}
	}
	sendTook := time.Since(started)
	close(stopSampling)
	sampling.Wait()

	// The audio is in: as if two hours had passed since the answer.
	evs := tb.events(t)
	if len(evs[voice.TypeCallAnswered]) != 1 {
		t.Fatalf("%d answered events", len(evs[voice.TypeCallAnswered]))
	}
	var ans struct {
		At time.Time `json:"at"`
	}
	if err := event.DecodeData(evs[voice.TypeCallAnswered][0], &ans); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	skew.Store(int64(ans.At.Add(2 * time.Hour).Sub(before)))
	if err := c.sess.Bye(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	d := ended(t, tb.waitEnded(t, 1, 60*time.Second)[voice.TypeCallEnded][0])
	hangup := time.Since(before)

	t.Logf("2 h of RTP (%d packets) sent in %s (%.0fx real time); live heap %d MB at the start, peak %d MB while streaming; hang-up took %s",
		packets, sendTook.Round(time.Millisecond), (2*time.Hour).Seconds()/sendTook.Seconds(), live>>20, peak.Load()>>20, hangup.Round(time.Millisecond))
	if d.Media == nil || d.Media.Packets != packets || d.Media.Lost != 0 || d.Media.Late != 0 || d.Media.Invalid != 0 {
		t.Errorf("media = %+v, want %d packets, none lost, late or invalid", d.Media, packets)
	}
	if d.Recording == nil || len(d.Recording.Legs) != 1 || d.Recording.Legs[0].Leg != "caller" {
		t.Fatalf("recording = %+v, want the caller leg", d.Recording)
	}
	l := d.Recording.Legs[0]
	if l.DurationMS != 7_200_000 || l.Bytes != wav.HeaderSize+2*samples {
		t.Errorf("caller leg: %d ms, %d bytes; want 7,200,000 ms, %d bytes", l.DurationMS, l.Bytes, wav.HeaderSize+2*samples)
	}
	if ms := recordedMS(t, tb, l.URL); ms != 7_200_000 {
		t.Errorf("the stored WAV's header says %d ms, want 7,200,000", ms)
	}
	if st, err := os.Stat(filepath.Join(tb.records, l.URL[len("file://"+tb.records+"/"):])); err != nil || st.Size() != wav.HeaderSize+2*samples {
		t.Errorf("the stored WAV: %v, %v; want %d bytes", st, err, wav.HeaderSize+2*samples)
	}
	if d.TalkMS < 7_200_000 || d.TalkMS > 7_200_000+hangup.Milliseconds()+1 {
		t.Errorf("talk_ms = %d, want 7,200,000 plus at most the %s the hang-up took", d.TalkMS, hangup)
	}
	// A whole-call buffer would hold 115 MB of PCM (or 29 MB of G.711); the connector holds a packet.
	if grew := int64(peak.Load()) - int64(live); grew > 16<<20 {
		t.Errorf("live heap grew by %d MB while 2 h of audio streamed, want < 16 MB (no whole-call buffer)", grew>>20)
	}
}

// liveHeap returns the heap's live bytes as of the last GC.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
