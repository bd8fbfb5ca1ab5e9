package voice_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

// need returns the path of each tool, skipping the test when one is missing locally. CI
// (.ci/run) installs them, and there a missing tool fails the test instead.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs baresip-core, espeak-ng and sox)", tool)
			}
			t.Skipf("%s is not installed: apt-get install baresip-core espeak-ng sox to run this real-SIP-client test", tool)
		}
	}
}

// speech writes espeak-ng speech as an 8 kHz mono 16-bit WAV (what baresip's aufile needs for
// G.711) and returns its path and duration.
func speech(t *testing.T, dir, text string) (string, time.Duration) {
	t.Helper()
	raw, out := filepath.Join(dir, "speech.wav"), filepath.Join(dir, "in8k.wav")
	if b, err := exec.Command("espeak-ng", "-w", raw, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, b)
	}
	if b, err := exec.Command("sox", raw, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", out).CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, rate, err := soxInfo(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, time.Duration(samples) * time.Second / time.Duration(rate)
}

// soxInfo reads the sample count and rate of a WAV sox wrote (its header may carry extra chunks).
func soxInfo(path string) (int64, int, error) {
	b, err := exec.Command("soxi", "-s", path).Output()
	if err != nil {
		// soxi is part of sox; fall back to the size for a plain header.
		st, serr := os.Stat(path)
		if serr != nil {
			return 0, 0, err
		}
		return (st.Size() - wav.HeaderSize) / 2, 8000, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, 8000, err
}

// caller is a headless baresip driven over its ctrl_tcp socket (netstring-framed JSON).
type caller struct {
	cmd  *exec.Cmd
	conn net.Conn
	rd   *bufio.Reader
	log  string
}

// baresip starts a headless baresip (config written to dir) registered as user, playing the WAV
// as its audio source, and connects to its control socket. baresip binds its SIP port for UDP,
// TCP and TLS (the next port): a port another test took between freePort and the bind makes it
// fail at start, and it is started again on other ports.
func baresip(t *testing.T, dir, user, wavPath, codec string, account ...string) *caller {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, busy := startBaresip(t, dir, user, wavPath, codec, account...)
		if !busy {
			return c
		}
		if attempt == 3 {
			t.Fatalf("baresip: its ports were taken at start three times:\n%s", c.logText())
		}
	}
}

// startBaresip is one attempt of baresip; busy says it could not bind its ports.
func startBaresip(t *testing.T, dir, user, wavPath, codec string, account ...string) (c *caller, busy bool) {
	t.Helper()
	ctrl := freePort(t)
	conf := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
audio_source aufile,%s
call_local_timeout 120
`, freePort(t), ctrl, wavPath)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	params := strings.Join(account, "")
	if !strings.Contains(params, "regint=") {
		params += ";regint=0" // no REGISTER
	}
	acct := fmt.Sprintf("<sip:%s@127.0.0.1>;audio_codecs=%s%s\n", user, codec, params)
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(acct), 0o600); err != nil {
		t.Fatal(err)
	}
	c = &caller{cmd: exec.Command("baresip", "-f", dir, "-4", "-t", "120"), log: filepath.Join(dir, "baresip.log")}
	out, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		_ = out.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ctrl))
		if err == nil {
			break
		}
		if strings.Contains(c.logText(), "Address already in use") {
			stop()
			return c, true
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("baresip control socket: %v\nbaresip log:\n%s", err, c.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = c.conn.Close()
		stop()
		if t.Failed() {
			t.Logf("baresip log:\n%s", c.logText())
		}
	})
	c.rd = bufio.NewReader(c.conn)
	return c, false
}

// logText is what baresip has logged so far.
func (c *caller) logText() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// waitLog waits until baresip's log holds s.
func (c *caller) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(c.log)
		if strings.Contains(string(b), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip never logged %q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// send sends one command.
func (c *caller) send(t *testing.T, command, params string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": command})
	if _, err := fmt.Fprintf(c.conn, "%d:%s,", len(b), b); err != nil {
		t.Fatalf("baresip %s: %v", command, err)
	}
}

// await reads messages until one contains want (an event type such as CALL_ESTABLISHED).
func (c *caller) await(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, err := c.rd.ReadString(':')
		if err != nil {
			t.Fatalf("waiting for baresip %s: %v", want, err)
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
		if err != nil || size > 1<<20 {
			t.Fatalf("baresip control: bad netstring length %q", n)
		}
		msg := make([]byte, size+1)
		if _, err := io.ReadFull(c.rd, msg); err != nil {
			t.Fatalf("waiting for baresip %s: %v", want, err)
		}
		if strings.Contains(string(msg), want) {
			return
		}
	}
}

// TestBaresipCall places a real SIP call: baresip dials the connector over loopback, plays
// espeak-ng speech as G.711 — a Chinese complaint, then an English one —, and hangs up (BYE).
// The call's events are published in order, the caller leg's recording is as long as the
// speech, within 5 %, and the live transcript (the sandbox's iFlytek) has both sentences, in
// order, with the catalogue's text.
func TestBaresipCall(t *testing.T) {
	t.Parallel()
	need(t, "baresip", "espeak-ng", "sox")
	for _, codec := range []string{"PCMU", "PCMA"} {
		t.Run(codec, func(t *testing.T) {
			t.Parallel()
			_, vars := asrSandbox(t)
			tb := start(t, nil, vars)
			dir := t.TempDir()
			pcm := utterances(t, "zh-double-charge", "en-manager")
			in, played := filepath.Join(dir, "in8k.wav"), time.Duration(len(pcm)/2)*time.Second/8000
			w, err := wav.Create(in, 8000)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pcm); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			bs := baresip(t, dir, "+8613800138000", in, codec)
			bs.send(t, "dial", "sip:4008001234@"+tb.sipAddr)
			bs.await(t, "CALL_ESTABLISHED", 10*time.Second)
			// aufile plays from the moment the call is established, then sends silence: hang up
			// when the speech is over.
			time.Sleep(played)
			bs.send(t, "hangup", "")
			bs.await(t, "CALL_CLOSED", 10*time.Second)
			got := tb.waitEnded(t, 1, 15*time.Second)
			if len(got[voice.TypeCallStarted]) != 1 || len(got[voice.TypeCallAnswered]) != 1 {
				t.Fatalf("want one started and one answered event, got %d and %d", len(got[voice.TypeCallStarted]), len(got[voice.TypeCallAnswered]))
			}
			d := ended(t, got[voice.TypeCallEnded][0])
			if d.HangupSide != "caller" || d.Reason != "bye" {
				t.Errorf("hang-up %s/%s, want caller/bye", d.HangupSide, d.Reason)
			}
			if d.From.Kind != "phone" || d.From.Value != "+8613800138000" {
				t.Errorf("from = %+v", d.From)
			}
			if d.Recording == nil || len(d.Recording.Legs) != 1 || d.Recording.Legs[0].Leg != "caller" {
				t.Fatalf("recording = %+v, want the caller leg", d.Recording)
			}
			leg := d.Recording.Legs[0]
			rec := filepath.Join(tb.records, strings.TrimPrefix(leg.URL, "file://"+tb.records+"/"))
			f, err := os.Open(rec)
			if err != nil {
				t.Fatalf("recording %s: %v", leg.URL, err)
			}
			defer f.Close()
			samples, rate, err := wav.Info(f)
			if err != nil {
				t.Fatal(err)
			}
			recorded := time.Duration(samples) * time.Second / time.Duration(rate)
			diff := math.Abs(float64(recorded-played)) / float64(played)
			t.Logf("%s: played %s, recorded %s (%.2f %%), event says %d ms", codec, played, recorded, 100*diff, leg.DurationMS)
			if diff > 0.05 {
				t.Errorf("recorded %s of %s played: off by %.1f %%, want within 5 %%", recorded, played, 100*diff)
			}
			// The recording is the speech, not silence: its loudness matches the played file's
			// (G.711 keeps RMS within a few per cent).
			recPCM, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := exec.Command("sox", in, "-t", "raw", "-").Output()
			if err != nil {
				t.Fatalf("sox raw: %v", err)
			}
			if a, b := rms(recPCM), rms(raw); b == 0 || a/b < 0.8 || a/b > 1.25 {
				t.Errorf("recording RMS %.0f, played %.0f: not the speech", a, b)
			}
			if leg.DurationMS != recorded.Milliseconds() {
				t.Errorf("event duration_ms %d, file %d ms", leg.DurationMS, recorded.Milliseconds())
			}
			if entries, _ := os.ReadDir(tb.spool); len(entries) != 0 {
				t.Errorf("spool not emptied: %d files", len(entries))
			}
			all, finals := tb.segments(t)
			checkTranscript(t, all, finals, "zh-double-charge", "en-manager")
			if d.Transcript != "complete" || finals[0].Vendor != "iflytek" {
				t.Errorf("transcript %q from %s, want complete from iflytek", d.Transcript, finals[0].Vendor)
			}
		})
	}
}

// rms returns the root mean square of little-endian 16-bit samples.
func rms(pcm []byte) float64 {
	var sum float64
	n := len(pcm) / 2
	for i := range n {
		v := float64(int16(binary.LittleEndian.Uint16(pcm[2*i:])))
		sum += v * v
	}
	if n == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(n))
}

// TestBaresipDigest: a trunk that must authenticate. baresip registers (REGISTER with digest)
// and its INVITE, challenged with 401, is retried with credentials and answered; the same
// baresip with a wrong password gets no call through.
func TestBaresipDigest(t *testing.T) {
	t.Parallel()
	need(t, "baresip", "espeak-ng", "sox")
	tb := start(t, nil, map[string]string{"VOICE_DIGEST_USER": "pbx", "VOICE_DIGEST_PASSWORD": "s3cret"})
	for _, tc := range []struct {
		name, pass string
		answered   bool
	}{{"right password", "s3cret", true}, {"wrong password", "guess", false}} {
		dir := t.TempDir()
		in, _ := speech(t, dir, "Authenticated call.")
		_, port := splitAddr(t, tb.sipAddr)
		bs := baresip(t, dir, "pbx", in, "PCMU", fmt.Sprintf(";auth_user=pbx;auth_pass=%s;outbound=\"sip:127.0.0.1:%d\";regint=600", tc.pass, port))
		// Registration may finish before the control socket connects: read baresip's log.
		if tc.answered {
			bs.waitLog(t, "pbx@127.0.0.1: {0/UDP/v4} 200 OK")
		} else {
			bs.waitLog(t, "403 Forbidden")
		}
		bs.send(t, "dial", "sip:"+hotline+"@"+tb.sipAddr)
		if tc.answered {
			bs.await(t, "CALL_ESTABLISHED", 10*time.Second)
			time.Sleep(500 * time.Millisecond)
			bs.send(t, "hangup", "")
		}
		bs.await(t, "CALL_CLOSED", 10*time.Second)
	}
	tb.waitEnded(t, 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // a second call, if one got through, would have ended too
	got := tb.events(t)
	if n := len(got[voice.TypeCallStarted]); n != 1 {
		t.Fatalf("%d calls started, want only the authenticated one", n)
	}
	if d := ended(t, got[voice.TypeCallEnded][0]); d.Reason != "bye" || d.From.Kind != "sip_uri" || d.From.Value != "sip:pbx@127.0.0.1" {
		t.Fatalf("ended = %+v", d)
	}
}
