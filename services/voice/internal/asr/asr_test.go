package asr_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/services/sandbox/iflytek"
	"github.com/omnibus-dev/omnibus/services/sandbox/nls"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// vendors starts both simulated vendors on loopback and returns clients of them.
func vendors(t *testing.T) (*sim.Env, *asr.IFlytek, *asr.Aliyun) {
	t.Helper()
	mux := http.NewServeMux()
	env := sim.NewEnv(mux, "http://127.0.0.1:1/hooks", nil, 0, nil)
	if _, err := iflytek.New(env, iflytek.Config{AppID: "595f23df", APIKey: "d9f4aa7ea6d94faca62cd88a28fd5234"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nls.New(env, nls.Config{AccessKeyID: "LTAI5tSandboxNls", AccessKeySecret: "nls-secret", AppKey: "sandboxAppKey01"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ws := "ws" + strings.TrimPrefix(srv.URL, "http")
	return env, &asr.IFlytek{URL: ws + "/sandbox/iflytek/v1/ws", AppID: "595f23df", APIKey: "d9f4aa7ea6d94faca62cd88a28fd5234"},
		&asr.Aliyun{TokenURL: srv.URL + "/sandbox/nls/meta/", URL: ws + "/sandbox/nls/ws/v1", AccessKeyID: "LTAI5tSandboxNls",
			AccessKeySecret: "nls-secret", AppKey: "sandboxAppKey01"}
}

// say synthesises catalogue utterances with a second of silence around each, skipping without
// espeak-ng.
func say(t *testing.T, ids ...string) []byte {
	t.Helper()
	pcm := make([]byte, 2*8000)
	for _, id := range ids {
		u, ok := speech.Find(id)
		if !ok {
			t.Fatalf("no utterance %s", id)
		}
		b, err := speech.Synthesize(context.Background(), u.Voice, u.Text, "")
		if errors.Is(err, speech.ErrNoTTS) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(append(pcm, b...), make([]byte, 2*8000*3/2)...)
	}
	return pcm
}

// collector keeps a stream's results.
type collector struct {
	mu  sync.Mutex
	all []asr.Result
}

func (c *collector) add(r asr.Result) { c.mu.Lock(); c.all = append(c.all, r); c.mu.Unlock() }

func (c *collector) finals() []asr.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []asr.Result
	for _, r := range c.all {
		if r.Final {
			out = append(out, r)
		}
	}
	return out
}

// play feeds pcm to s in 20 ms frames at pace (0: as fast as it goes).
func play(s *asr.Stream, pcm []byte, pace time.Duration) {
	for off := 0; off < len(pcm); off += 320 {
		s.Frame(media.Frame{Leg: media.LegCaller, Offset: time.Duration(off/2) * time.Second / 8000, PCM: pcm[off:min(off+320, len(pcm))]})
		if pace > 0 {
			time.Sleep(pace)
		}
	}
}

func TestStream(t *testing.T) {
	t.Parallel()
	pcm := say(t, "zh-double-charge", "en-manager")
	_, fly, ali := vendors(t)
	for _, v := range []asr.Vendor{fly, ali} {
		t.Run(v.Name(), func(t *testing.T) {
			t.Parallel()
			var c collector
			s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{v}, OnResult: c.add, Queue: 2000})
			play(s, pcm, 0)
			if st := s.Close(context.Background()); st != asr.Complete {
				t.Errorf("transcript %s, want complete", st)
			}
			f := c.finals()
			if len(f) != 2 || f[0].Text != "我的银行卡被扣了两次钱，你们到底怎么回事！" || f[1].Text != "I want to speak to a manager, this is unacceptable." {
				t.Fatalf("finals %+v", f)
			}
			if f[0].Segment != 0 || f[1].Segment != 1 || f[0].Begin < 900*time.Millisecond || f[0].End <= f[0].Begin || f[1].Begin <= f[0].End {
				t.Errorf("segments and times: %+v", f)
			}
			if len(c.all) <= len(f) {
				t.Errorf("no partials: %+v", c.all)
			}
			if f[0].Vendor != v.Name() {
				t.Errorf("vendor %s", f[0].Vendor)
			}
		})
	}
}

// TestBadSignature: the simulated iFlytek refuses a wrong APIKey with 10110, Aliyun a wrong
// AccessKeySecret with SignatureDoesNotMatch.
func TestBadSignature(t *testing.T) {
	t.Parallel()
	_, fly, ali := vendors(t)
	fly.APIKey = "wrong"
	_, err := fly.Open(context.Background(), func(asr.Result) {})
	var ve *asr.VendorError
	if !errors.As(err, &ve) || ve.Code != "10110" {
		t.Errorf("iflytek with a wrong key: %v", err)
	}
	ali.AccessKeySecret = "wrong"
	_, err = ali.Open(context.Background(), func(asr.Result) {})
	if !errors.As(err, &ve) || ve.Code != "SignatureDoesNotMatch" {
		t.Errorf("aliyun with a wrong secret: %v", err)
	}
}

// TestFailover: iFlytek cuts the stream after a second of audio; the stream resumes on Aliyun
// with the audio since the last final, so the transcript is whole.
func TestFailover(t *testing.T) {
	t.Parallel()
	pcm := say(t, "en-order-number", "zh-parcel")
	env, fly, ali := vendors(t)
	if err := env.SetFault("iflytek rtasr", sim.Fault{ErrorRatio: 1, Code: "cut:2s"}); err != nil {
		t.Fatal(err)
	}
	var c collector
	s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{fly, ali}, OnResult: c.add, Queue: 2000})
	play(s, pcm, 0)
	st := s.Close(context.Background())
	f := c.finals()
	if len(f) != 2 || f[0].Text != "My order number is 5 5 8 8 1 2 3 4." || f[1].Text != "你好，我想查一下我的快递到哪里了。" {
		t.Fatalf("finals %+v", f)
	}
	if f[1].Vendor != "aliyun" || f[1].Segment <= f[0].Segment {
		t.Errorf("after the cut: %+v", f)
	}
	if st != asr.Complete {
		t.Errorf("transcript %s, want complete (the replay covered the cut)", st)
	}
}

// TestBothDown: with both vendors refusing, the transcript is none and Close does not hang.
func TestBothDown(t *testing.T) {
	t.Parallel()
	env, fly, ali := vendors(t)
	for _, k := range []string{"iflytek rtasr", "nls SpeechTranscriber"} {
		if err := env.SetFault(k, sim.Fault{ErrorRatio: 1, Code: speech.FaultDown}); err != nil {
			t.Fatal(err)
		}
	}
	s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{fly, ali}, Retry: 50 * time.Millisecond})
	play(s, make([]byte, 2*8000), time.Millisecond)
	if st := s.Close(context.Background()); st != asr.None {
		t.Errorf("transcript %s, want none", st)
	}
}

// TestSlowHandshake: a leg that ends while the vendor is still shaking hands closes at once.
func TestSlowHandshake(t *testing.T) {
	t.Parallel()
	env, fly, _ := vendors(t)
	if err := env.SetFault("iflytek rtasr", sim.Fault{Latency: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{fly}})
	play(s, make([]byte, 3200), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if st := s.Close(ctx); st != asr.None {
		t.Errorf("transcript %s, want none", st)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
}

// TestQueueDrops: a full queue drops frames, counts them, and never blocks.
func TestQueueDrops(t *testing.T) {
	t.Parallel()
	env, fly, _ := vendors(t)
	if err := env.SetFault("iflytek rtasr", sim.Fault{Latency: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{fly}, Queue: 10})
	play(s, make([]byte, 320*50), 0)
	if s.Dropped() < 30 {
		t.Errorf("dropped %d of 50 frames into a queue of 10", s.Dropped())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if st := s.Close(ctx); st != asr.None {
		t.Errorf("transcript %s", st)
	}
}

// TestBothDownRetries: while both vendors are down the stream tries them once per Retry, not
// once per frame.
func TestBothDownRetries(t *testing.T) {
	t.Parallel()
	env, fly, ali := vendors(t)
	for _, k := range []string{"iflytek rtasr", "nls SpeechTranscriber"} {
		if err := env.SetFault(k, sim.Fault{ErrorRatio: 1, Code: speech.FaultDown}); err != nil {
			t.Fatal(err)
		}
	}
	begin := time.Now()
	s := asr.Start(media.LegCaller, asr.Options{Vendors: []asr.Vendor{fly, ali}, Retry: 500 * time.Millisecond})
	play(s, make([]byte, 320*50), 20*time.Millisecond) // 50 frames, a second of audio
	s.Close(context.Background())
	took := time.Since(begin)
	if calls := env.Stats()["iflytek rtasr"].Calls; calls > int64(took/(500*time.Millisecond))+2 {
		t.Errorf("iflytek tried %d times in %s with a retry every 500ms (50 frames)", calls, took)
	}
}
