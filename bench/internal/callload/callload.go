// Package callload is the phone channel's load generator: it places concurrent SIP calls (the
// sandbox's caller: sipgo, paced G.711 RTP of catalogue speech) to the voice connector running
// in-process on an embedded JetStream, with live ASR against the sandbox's simulated vendor, and
// reports RTP loss as the connector counted it, frame→transcript-segment latency (measured from
// the send time of the RTP packet carrying an utterance's last speech sample), INVITE→call
// started latency and CPU per call — against a raw ceiling measured in the same run: the same
// RTP streams received and written to disk by plain UDP sockets doing nothing else.
package callload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaf/g711"

	"github.com/omnibus-dev/omnibus/bench/internal/cpustat"
	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/sandbox/caller"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// Config is a run.
type Config struct {
	Calls    int           // concurrent calls
	Duration time.Duration // each call's audio
	Ramp     time.Duration // calls start spread over this
	ASR      string        // iflytek, aliyun or none
	// Desk runs the calls through the whole path to the agent: the all-in-one with the unifier,
	// the desk and the CRM beside the voice connector (embedded Postgres), and measures the
	// screen pop: INVITE → the desk's event stream announcing the ringing call → the caller's
	// 360° panel served. CPU then counts those services too.
	Desk     bool
	Log      *slog.Logger
	Progress io.Writer // progress lines; nil for none
}

// Defaults is the load: 50 concurrent calls.
func Defaults() Config {
	return Config{Calls: 50, Duration: 20 * time.Second, Ramp: 2 * time.Second, ASR: "iflytek"}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.Calls < 1 || c.Calls > 400:
		return errors.New("--calls must be 1 to 400")
	case c.Duration < 3*time.Second:
		return errors.New("--duration must be at least 3s (a sentence)")
	case c.ASR != "iflytek" && c.ASR != "aliyun" && c.ASR != "none":
		return errors.New("--asr must be iflytek, aliyun or none")
	}
	return nil
}

// Phase is one measured phase.
type Phase struct {
	Name       string  `json:"name"`
	Calls      int     `json:"calls"`
	Failed     int     `json:"failed"` // calls not set up or not ended
	Sent       int     `json:"rtp_sent"`
	Received   int     `json:"rtp_received"`
	Lost       int     `json:"rtp_lost"`
	LossRatio  float64 `json:"rtp_loss_ratio"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerCall is CPU seconds per second of one call: 1/CPUPerCall calls fit one core.
	CPUPerCall   float64 `json:"cpu_per_call_second"`
	CallsPerCore float64 `json:"calls_per_core"`
}

// Report is a run's result.
type Report struct {
	Config struct {
		Calls    int    `json:"calls"`
		Duration string `json:"duration"`
		ASR      string `json:"asr"`
		CPUs     int    `json:"cpus"`
		Desk     bool   `json:"desk"`
	} `json:"config"`
	Raw     Phase `json:"raw"`
	Omnibus Phase `json:"omnibus"`
	// Ratio is the connector's calls per core against the raw ceiling's.
	Ratio float64 `json:"ratio"`
	// Segment latency, measured: from the wall-clock time the caller sent the RTP packet that
	// carries an utterance's last speech sample to its final segment stored on the bus (the k-th
	// final of a call, by segment id, is the k-th utterance the call said); it includes the
	// recogniser's end-of-utterance silence wait (SilenceWaitMS). PartialLatency: from the packet
	// of the utterance's first speech sample to its first partial segment stored (it includes
	// the recogniser's partial cadence, one per second of speech).
	Segments       int         `json:"final_segments"`
	Unmatched      int         `json:"segments_unmatched"` // finals beyond the utterances a call said
	SegmentLatency *stats.Dist `json:"segment_latency_ms,omitempty"`
	// BeyondWait is SegmentLatency less the silence wait: what the connector, the bus and the
	// vendor's transport add.
	BeyondWait      *stats.Dist `json:"segment_latency_beyond_wait_ms,omitempty"`
	SilenceWaitMS   float64     `json:"silence_wait_ms"`
	PartialLatency  *stats.Dist `json:"first_partial_latency_ms,omitempty"`
	InviteToStarted *stats.Dist `json:"invite_to_started_ms,omitempty"`
	// With --desk: INVITE → the ringing call on the desk's event stream (what an open workbench
	// receives), and → the caller's 360° panel answered by the desk API.
	ScreenPop   *stats.Dist    `json:"invite_to_desk_ringing_ms,omitempty"`
	PanelReady  *stats.Dist    `json:"invite_to_panel_ms,omitempty"`
	Transcripts map[string]int `json:"transcripts"` // complete / partial / none
}

// Run runs both phases.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{Transcripts: map[string]int{}}
	rep.Config.Calls, rep.Config.Duration, rep.Config.ASR, rep.Config.CPUs, rep.Config.Desk = cfg.Calls, cfg.Duration.String(), cfg.ASR, runtime.NumCPU(), cfg.Desk
	audio, err := speechAudio(cfg.Duration)
	if err != nil {
		return nil, err
	}
	progress(cfg, "raw ceiling: %d RTP streams of %s received and written to disk", cfg.Calls, cfg.Duration)
	if rep.Raw, err = raw(ctx, cfg, audio); err != nil {
		return nil, err
	}
	if cfg.Desk {
		progress(cfg, "omnibus: %d concurrent calls of %s through the voice connector, the unifier and the desk (ASR %s)", cfg.Calls, cfg.Duration, cfg.ASR)
		err = throughDesk(ctx, cfg, audio, rep)
	} else {
		progress(cfg, "omnibus: %d concurrent calls of %s through the voice connector (ASR %s)", cfg.Calls, cfg.Duration, cfg.ASR)
		err = connector(ctx, cfg, audio, rep)
	}
	if err != nil {
		return nil, err
	}
	if rep.Raw.CallsPerCore > 0 {
		rep.Ratio = rep.Omnibus.CallsPerCore / rep.Raw.CallsPerCore
	}
	return rep, nil
}

func progress(cfg Config, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}

// speechAudio is d of catalogue sentences with one-second pauses: what every caller says.
func speechAudio(d time.Duration) ([]int16, error) {
	want := int(d.Seconds() * 8000)
	var out []int16
	for i := 0; len(out) < want; i++ {
		cat := speech.Catalogue()
		pcm, err := speech.Audio(cat[i%len(cat)].ID)
		if err != nil {
			return nil, err
		}
		out = append(out, pcm...)
		out = append(out, make([]int16, 8000)...)
	}
	return out[:want], nil
}

// utterance is where a call's k-th utterance is in the audio, in 20 ms packets: its first
// speech packet, and the packet after its last (the recogniser's segment bounds).
type utterance struct{ first, end int }

// utterances returns the utterances of audio (followed by tail of silence) as the sandbox's
// recogniser segments them: every caller says the same audio, so the vendors' k-th final of a
// call is the k-th of these.
func utterances(audio []int16, tail time.Duration) []utterance {
	pcm := make([]byte, 0, 2*len(audio)+int(tail.Seconds()*16000))
	for _, v := range audio {
		pcm = append(pcm, byte(v), byte(uint16(v)>>8))
	}
	pcm = append(pcm, make([]byte, int(tail.Seconds()*16000))...)
	var out []utterance
	for _, r := range speech.NewRecognizer(speech.Catalogue()).Write(pcm) {
		if r.Final {
			out = append(out, utterance{first: int(r.Begin / (20 * time.Millisecond)), end: int(r.End / (20 * time.Millisecond))})
		}
	}
	return out
}

// raw is the ceiling: cfg.Calls UDP sockets receiving paced G.711 streams and writing the
// decoded PCM to a file each, nothing else.
func raw(ctx context.Context, cfg Config, audio []int16) (Phase, error) {
	ph := Phase{Name: "raw: UDP receive + decode + write", Calls: cfg.Calls}
	dir, err := os.MkdirTemp("", "callload-raw")
	if err != nil {
		return ph, err
	}
	defer os.RemoveAll(dir)
	var received atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*net.UDPConn, cfg.Calls)
	for i := range conns {
		if conns[i], err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			return ph, err
		}
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)+".pcm"))
		if err != nil {
			return ph, err
		}
		wg.Add(1)
		go func(c *net.UDPConn, f *os.File) {
			defer wg.Done()
			defer f.Close()
			buf := make([]byte, 1500)
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if n > 12 {
					_, _ = f.Write(g711.DecodeUlaw(buf[12:n]))
					received.Add(1)
				}
			}
		}(conns[i], f)
	}
	cpu0, start := cpustat.Self(), time.Now()
	var sent atomic.Int64
	var sw sync.WaitGroup
	for i := range conns {
		sw.Add(1)
		go func(i int) {
			defer sw.Done()
			time.Sleep(time.Duration(i) * cfg.Ramp / time.Duration(cfg.Calls))
			sent.Add(int64(sendRTP(ctx, conns[i].LocalAddr().(*net.UDPAddr), audio)))
		}(i)
	}
	sw.Wait()
	time.Sleep(200 * time.Millisecond) // the last packets in flight
	cpu := cpustat.Self() - cpu0
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	ph.Sent, ph.Received = int(sent.Load()), int(received.Load())
	ph.Lost = ph.Sent - ph.Received
	fill(&ph, cpu, time.Since(start), cfg)
	return ph, nil
}

// sendRTP sends audio to addr as paced µ-law RTP and returns the packets sent.
func sendRTP(ctx context.Context, addr *net.UDPAddr, audio []int16) int {
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return 0
	}
	defer c.Close()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for off := 0; off+160 <= len(audio); off += 160 {
		pkt[2], pkt[3] = byte(n>>8), byte(n)
		for i, s := range audio[off : off+160] {
			pkt[12+i] = g711.EncodeUlawFrame(s)
		}
		if _, err := c.Write(pkt); err != nil {
			return n
		}
		n++
		select {
		case <-ctx.Done():
			return n
		case <-tick.C:
		}
	}
	return n
}

// fill computes the CPU figures of ph.
func fill(ph *Phase, cpu, wall time.Duration, cfg Config) {
	if ph.Sent > 0 {
		ph.LossRatio = float64(ph.Lost) / float64(ph.Sent)
	}
	ph.CPUSeconds = cpu.Seconds()
	callSeconds := float64(cfg.Calls) * cfg.Duration.Seconds()
	if callSeconds > 0 && cpu > 0 {
		ph.CPUPerCall = cpu.Seconds() / callSeconds
		ph.CallsPerCore = 1 / ph.CPUPerCall
	}
}

// connector runs the voice connector (and the sandbox's ASR) in-process and places the calls.
func connector(ctx context.Context, cfg Config, audio []int16, rep *Report) error {
	dir, err := os.MkdirTemp("", "callload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(dir, "nats"), Sync: "2m"})
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect("callload")
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := bus.Connect(nc, bus.WithLogger(cfg.Log))
	if err != nil {
		return err
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := client.Provision(rctx); err != nil {
		return err
	}

	// The sandbox (ASR vendors) on a loopback HTTP server.
	mux := http.NewServeMux()
	web := httptest.NewServer(mux)
	defer web.Close()
	env := sandbox.ConnectorEnv(web.URL)
	if err := voiceEnv(env, cfg, dir); err != nil {
		return err
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var wg sync.WaitGroup
	runSvc := func(s service.Service, d service.Deps) error {
		started, done := make(chan struct{}), make(chan error, 1)
		d.Started, d.Log, d.Env, d.Health = func() { close(started) }, cfg.Log, lookup, service.NewHealth()
		wg.Add(1)
		go func() { defer wg.Done(); done <- s.Run(rctx, d) }()
		select {
		case <-started:
			return nil
		case err := <-done:
			return fmt.Errorf("%s: %w", s.Name, err)
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s did not start in 30s", s.Name)
		}
	}
	defer wg.Wait()
	defer stop()
	if err := runSvc(sandbox.Service(), service.Deps{Mux: mux}); err != nil {
		return err
	}
	if err := runSvc(voice.Service(), service.Deps{Bus: client, Mux: http.NewServeMux()}); err != nil {
		return err
	}

	return drive(ctx, rctx, cfg, audio, client, env["VOICE_SIP_LISTEN"], nil, rep)
}

// voiceEnv sets the load's settings in env: a quiet sandbox (no simulated customers or calls
// beside the load), the voice connector on free loopback ports with its spool and recordings
// in dir, and the ASR vendor.
func voiceEnv(env map[string]string, cfg Config, dir string) error {
	env["SANDBOX_SCENARIO_INTERVAL"], env["SANDBOX_CALL_INTERVAL"] = "0", "0"
	env["SANDBOX_TCCC_CALL_INTERVAL"] = "0" // the SIP load alone: no simulated TCCC calls beside it
	sip, err := freePort()
	if err != nil {
		return err
	}
	rtpLo, err := freePort()
	if err != nil {
		return err
	}
	rtpLo = min(max(rtpLo-rtpLo%2, 10000), 60000)
	env["VOICE_SIP_LISTEN"] = "127.0.0.1:" + strconv.Itoa(sip)
	env["VOICE_RTP_PORTS"] = fmt.Sprintf("%d-%d", rtpLo, rtpLo+2*cfg.Calls+20)
	env["VOICE_SPOOL_DIR"], env["VOICE_RECORDING_BUCKET"] = filepath.Join(dir, "spool"), "file://"+filepath.Join(dir, "recordings")
	env["VOICE_ASR"] = cfg.ASR
	return nil
}

// drive places the calls on the voice connector at sipTarget, collects what it publishes on
// client and fills rep's omnibus phase; pop, if set, is watching the desk for the screen pops.
func drive(ctx, rctx context.Context, cfg Config, audio []int16, client *bus.Client, sipTarget string, pop *popWatch, rep *Report) error {
	// What the connector publishes.
	var mu sync.Mutex
	startedAt := map[string]time.Time{} // from number -> when call.started was stored
	callOf := map[string]string{}       // call id -> from number
	type seg struct {
		id     int
		stored time.Time
	}
	finals := map[string][]seg{}                   // call id -> its final segments
	firstPartial := map[string]map[int]time.Time{} // call id -> segment id -> first partial stored
	var ended []event.Event
	sub, err := client.Subscribe(rctx, bus.ConsumerConfig{Service: "callload", Durable: "callload", Stream: bus.StreamIn,
		FilterSubjects: []string{"omni.in.voice.>"}}, func(_ context.Context, d bus.Delivery) error {
		var x struct {
			CallID    string `json:"call_id"`
			From      struct{ Value string }
			SegmentID int  `json:"segment_id"`
			Final     bool `json:"final"`
		}
		_ = event.DecodeData(d.Event, &x)
		mu.Lock()
		defer mu.Unlock()
		switch d.Event.Type() {
		case voice.TypeCallStarted:
			startedAt[x.From.Value], callOf[x.CallID] = d.Published, x.From.Value
		case voice.TypeSegment:
			if x.Final {
				finals[x.CallID] = append(finals[x.CallID], seg{x.SegmentID, d.Published})
				break
			}
			if firstPartial[x.CallID] == nil {
				firstPartial[x.CallID] = map[int]time.Time{}
			}
			if t, ok := firstPartial[x.CallID][x.SegmentID]; !ok || d.Published.Before(t) {
				firstPartial[x.CallID][x.SegmentID] = d.Published
			}
		case voice.TypeCallEnded:
			ended = append(ended, d.Event)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer func() { _ = sub.Shutdown(context.WithoutCancel(ctx)) }()

	dialer, err := caller.New(caller.Config{Target: sipTarget, Log: cfg.Log})
	if err != nil {
		return err
	}
	defer dialer.Close()
	results := make([]caller.Call, cfg.Calls)
	errs := make([]error, cfg.Calls)
	const tail = time.Second
	utts := utterances(audio, tail)
	packets := (len(audio)+159)/160 + int(tail/(20*time.Millisecond))
	sentAt := make([][]time.Time, cfg.Calls) // call -> packet -> when it was sent
	from := func(i int) string { return fmt.Sprintf("+86139%08d", 10000000+i) }
	cpu0, start := cpustat.Self(), time.Now()
	var cw sync.WaitGroup
	for i := range cfg.Calls {
		cw.Add(1)
		go func() {
			defer cw.Done()
			time.Sleep(time.Duration(i) * cfg.Ramp / time.Duration(cfg.Calls))
			cctx, cancel := context.WithTimeout(rctx, cfg.Duration+30*time.Second)
			defer cancel()
			sent := make([]time.Time, packets)
			sentAt[i] = sent
			results[i], errs[i] = dialer.CallWith(cctx, from(i), "4008001234", audio, tail, caller.Options{OnPacket: func(n int, at time.Time) {
				if n < len(sent) {
					sent[n] = at
				}
			}})
		}()
	}
	cw.Wait()
	// Wait for every ended event (the recordings stored, the transcripts flushed).
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(ended)
		mu.Unlock()
		if n >= cfg.Calls || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpu := cpustat.Self() - cpu0
	wall := time.Since(start)

	ph := Phase{Name: "omnibus: SIP + RTP + recording + ASR + events", Calls: cfg.Calls}
	if cfg.Desk {
		ph.Name = "omnibus: the same + unifier + CRM + desk"
	}
	byFrom := map[string]caller.Call{}
	sentOf := map[string][]time.Time{} // from number -> its packets' send times
	for i, r := range results {
		if errs[i] != nil {
			ph.Failed++
			continue
		}
		ph.Sent += r.Sent
		byFrom[from(i)], sentOf[from(i)] = r, sentAt[i]
	}
	mu.Lock()
	defer mu.Unlock()
	var invite []float64
	for f, r := range byFrom {
		if t, ok := startedAt[f]; ok {
			invite = append(invite, float64(t.Sub(r.Invited).Microseconds())/1000)
		}
	}
	for _, e := range ended {
		var x struct {
			Transcript string `json:"transcript"`
			Media      *struct{ Packets, Lost int }
		}
		if err := event.DecodeData(e, &x); err != nil || x.Media == nil {
			ph.Failed++
			continue
		}
		ph.Received += x.Media.Packets
		ph.Lost += x.Media.Lost
		rep.Transcripts[x.Transcript]++
	}
	ph.Failed += cfg.Calls - len(ended)
	fill(&ph, cpu, wall, cfg)
	rep.Omnibus = ph
	// Frame → segment, measured: the k-th final of a call (by segment id) against the send time
	// of the packet carrying the k-th utterance's last speech sample; its first partial against
	// the packet of the utterance's first speech sample.
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var lat, beyond, partial []float64
	for callID, fs := range finals {
		sent := sentOf[callOf[callID]]
		if sent == nil {
			continue
		}
		slices.SortFunc(fs, func(a, b seg) int { return a.id - b.id })
		for k, f := range fs {
			rep.Segments++
			if k >= len(utts) || utts[k].end < 1 || utts[k].end > len(sent) || sent[utts[k].end-1].IsZero() {
				rep.Unmatched++
				continue
			}
			d := f.stored.Sub(sent[utts[k].end-1])
			lat, beyond = append(lat, ms(d)), append(beyond, ms(d-speech.FinalAfter))
			if p, ok := firstPartial[callID][f.id]; ok && utts[k].first < len(sent) && !sent[utts[k].first].IsZero() {
				partial = append(partial, ms(p.Sub(sent[utts[k].first])))
			}
		}
	}
	rep.SegmentLatency, rep.BeyondWait, rep.PartialLatency = stats.Of(lat), stats.Of(beyond), stats.Of(partial)
	rep.SilenceWaitMS = ms(speech.FinalAfter)
	rep.InviteToStarted = stats.Of(invite)
	if pop != nil {
		rep.ScreenPop, rep.PanelReady = pop.latencies(callOf, byFrom)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.LocalAddr().(*net.UDPAddr).Port, nil
}

// WriteTable prints the report.
func (r *Report) WriteTable(w io.Writer) {
	where := "the voice connector"
	if r.Config.Desk {
		where = "the voice connector, the unifier, the CRM and the desk"
	}
	fmt.Fprintf(w, "calls %d × %s, ASR %s, %d CPUs, through %s\n\n", r.Config.Calls, r.Config.Duration, r.Config.ASR, r.Config.CPUs, where)
	fmt.Fprintf(w, "%-48s %8s %10s %8s %10s %12s %10s\n", "phase", "failed", "rtp sent", "lost", "loss", "cpu s/call-s", "calls/core")
	for _, p := range []Phase{r.Raw, r.Omnibus} {
		fmt.Fprintf(w, "%-48s %8d %10d %8d %9.4f%% %12.5f %10.0f\n", p.Name, p.Failed, p.Sent, p.Lost, 100*p.LossRatio, p.CPUPerCall, p.CallsPerCore)
	}
	fmt.Fprintf(w, "\nratio (omnibus calls/core ÷ raw calls/core): %.3f\n", r.Ratio)
	if d := r.SegmentLatency; d != nil {
		fmt.Fprintf(w, "frame → final segment on the bus (ms, measured, %d segments, %d unmatched): p50 %.1f  p99 %.1f  max %.1f  (target p99 ≤ 300)\n",
			d.Samples, r.Unmatched, d.P50, d.P99, d.Max)
		fmt.Fprintf(w, "  from the send of the RTP packet carrying the utterance's last speech sample to the final segment stored on the bus;\n"+
			"  it includes the recogniser's end-of-utterance silence wait (%.0f ms of silence must arrive before any recogniser can end the sentence)\n", r.SilenceWaitMS)
	}
	if d := r.BeyondWait; d != nil && d.Samples > 0 {
		fmt.Fprintf(w, "  beyond that wait (connector + vendor transport + bus): p50 %.1f  p99 %.1f  max %.1f\n", d.P50, d.P99, d.Max)
	}
	if d := r.PartialLatency; d != nil && d.Samples > 0 {
		fmt.Fprintf(w, "frame → first partial segment on the bus (ms, measured, %d segments): p50 %.1f  p99 %.1f  max %.1f\n", d.Samples, d.P50, d.P99, d.Max)
		fmt.Fprintf(w, "  from the send of the utterance's first speech packet; it includes the recogniser's partial cadence (one partial per second of speech)\n")
	}
	if d := r.InviteToStarted; d != nil {
		fmt.Fprintf(w, "INVITE→call.started stored (ms): p50 %.1f  p99 %.1f  max %.1f\n", d.P50, d.P99, d.Max)
	}
	if d := r.ScreenPop; d != nil {
		fmt.Fprintf(w, "screen pop, INVITE→ringing on the desk's event stream (ms, %d calls): p50 %.1f  p99 %.1f  max %.1f\n", d.Samples, d.P50, d.P99, d.Max)
	}
	if d := r.PanelReady; d != nil {
		fmt.Fprintf(w, "INVITE→caller's 360° panel answered (ms, %d calls): p50 %.1f  p99 %.1f  max %.1f\n", d.Samples, d.P50, d.P99, d.Max)
	}
	b, _ := json.Marshal(r.Transcripts)
	fmt.Fprintf(w, "transcripts: %s\n", b)
}
