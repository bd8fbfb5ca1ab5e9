// Package suggestload is `go run ./bench suggest`: concurrent streamed AI suggestions, from the
// agents' pages back to the agents' pages. It starts an embedded NATS JetStream and the all-in-one
// (allinone.Run) with the vendor sandbox, the unifier, the desk, the assist connector and the
// audit service; writes one web-chat message per simulated customer (as the web-chat connector
// would publish it) so each agent has a conversation on the desk; opens each agent's event
// stream (GET /api/events, Server-Sent Events, as the workbench does); then every agent presses
// the AI button (POST /api/conversations/{id}/tools/ai/suggest) at the same moment.
//
// For each request it records, from the agent's own event stream, every streamed piece
// (omni.live.ai.suggest.delta: seq, offset, text) and, from the log, the completed suggestion
// (omni.tool.ai.suggest.completed — the record). A stream drops no token when its pieces of the
// last attempt are numbered without a gap and their text, concatenated, is the completed
// suggestion's text. The baseline, measured in the same run against the same sandbox model, is
// the same number of concurrent direct streams (POST /chat/completions, read to the end): the
// report gives the button→first piece latency on the page against the direct request→first
// chunk latency, and their ratio.
package suggestload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/bench/internal/aio"
	"github.com/omnibus-dev/omnibus/bench/internal/stats"
	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/audit"
	"github.com/omnibus-dev/omnibus/services/desk"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

// Config is a run's configuration.
type Config struct {
	// Streams is how many agents press the AI button at once (one conversation each).
	Streams int
	// ChunkDelay is the sandbox model's pause before each streamed piece (SANDBOX_OPENAI_CHUNK_DELAY).
	ChunkDelay time.Duration
	// Baseline measures the same number of concurrent direct streams first.
	Baseline bool
	// Wait is how long after the button the completed suggestions are awaited.
	Wait time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
	// NATSSync is the embedded JetStream's fsync.
	NATSSync string
	// DatabaseURL is a Postgres to use instead of a throwaway one.
	DatabaseURL string
	// Set are service variables for the run (win over everything).
	Set map[string]string
	// Log receives the services' logs; Progress, when set, the run's progress lines.
	Log      *slog.Logger
	Progress io.Writer
}

// Defaults returns the default configuration: 100 concurrent streams at the sandbox's default pace.
func Defaults() Config {
	return Config{Streams: 100, ChunkDelay: 60 * time.Millisecond, Baseline: true, Wait: 60 * time.Second,
		Timeout: 5 * time.Minute, NATSSync: "2m"}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Streams < 1 || c.Streams > 490: // the desk lists at most 500 conversations a page
		return fmt.Errorf("--streams %d: want 1-490", c.Streams)
	case c.ChunkDelay < 0 || c.ChunkDelay > 5*time.Second:
		return fmt.Errorf("--chunk-delay %s: want 0-5s", c.ChunkDelay)
	case c.Wait <= 0 || c.Timeout <= 0:
		return errors.New("--wait and --timeout must be > 0")
	}
	if _, _, err := natsembed.ParseSync(c.NATSSync); err != nil {
		return fmt.Errorf("--nats-sync: %w", err)
	}
	return nil
}

// Report is a run's outcome.
type Report struct {
	CPUs       int               `json:"cpus"`
	GoVersion  string            `json:"go_version"`
	Streams    int               `json:"streams"`
	ChunkDelay float64           `json:"chunk_delay_ms"`
	Settings   map[string]string `json:"settings"`

	// Accepted are the button presses the desk accepted (202); Completed and Failed the
	// requests answered with a suggestion or with the fallback; Unanswered got neither within Wait.
	Accepted   int `json:"accepted"`
	Completed  int `json:"completed"`
	Failed     int `json:"failed"`
	Unanswered int `json:"unanswered"`
	// Pieces and Chars are what the agents' pages received; Intact counts completed
	// suggestions whose streamed pieces, concatenated, are their text; Dropped those whose are
	// not (a piece lost or garbled on the way); Gaps the pieces missing by seq.
	Pieces  int `json:"pieces"`
	Chars   int `json:"chars"`
	Intact  int `json:"intact"`
	Dropped int `json:"dropped"`
	Gaps    int `json:"gaps"`
	// CutOff counts agents' event streams the desk ended during the run (a page too slow).
	CutOff int `json:"cut_off"`

	// Press is the AI button's POST → 202 (the desk read the turns and knowledge and published
	// the request); FirstPiece is button → first piece on the agent's page; Complete is button → the
	// completed record in the log; DirectFirst is the baseline's request → first chunk, and
	// DirectChunks its pieces per stream.
	Press        *stats.Dist `json:"press_ms"`
	FirstPiece   *stats.Dist `json:"first_piece_ms"`
	Complete     *stats.Dist `json:"complete_ms"`
	DirectFirst  *stats.Dist `json:"direct_first_chunk_ms,omitempty"`
	DirectChunks int         `json:"direct_chunks,omitempty"`
	// Ratio is FirstPiece p50 / DirectFirst p50 (1 = omnibus adds nothing).
	Ratio float64 `json:"first_piece_ratio_p50,omitempty"`
}

// OK reports whether every request was answered and every completed stream arrived whole.
func (r *Report) OK() bool {
	return r.Accepted == r.Streams && r.Unanswered == 0 && r.Dropped == 0 && r.CutOff == 0
}

// WriteTable prints the report.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "bench suggest: %d concurrent AI suggestions, sandbox model pausing %s before each piece (%d CPUs, %s)\n",
		r.Streams, time.Duration(r.ChunkDelay*float64(time.Millisecond)), r.CPUs, r.GoVersion)
	keys := make([]string, 0, len(r.Settings))
	for k := range r.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s=%s\n", k, r.Settings[k])
	}
	fmt.Fprintf(w, "\nbutton presses accepted %d; answered: %d completed, %d failed (fallback), %d unanswered\n",
		r.Accepted, r.Completed, r.Failed, r.Unanswered)
	fmt.Fprintf(w, "pieces on the agents' pages %d (%d chars); completed streams whole %d, with a piece lost %d (%d seq gaps); event streams cut off %d\n",
		r.Pieces, r.Chars, r.Intact, r.Dropped, r.Gaps, r.CutOff)
	row := func(name string, d *stats.Dist) {
		if d == nil || d.Samples == 0 {
			return
		}
		fmt.Fprintf(w, "  %-40s n=%-5d p50 %8.1f  p90 %8.1f  p99 %8.1f  max %8.1f ms\n", name, d.Samples, d.P50, d.P90, d.P99, d.Max)
	}
	fmt.Fprintln(w)
	row("direct: request → first chunk (baseline)", r.DirectFirst)
	row("omnibus: button → 202 accepted", r.Press)
	row("omnibus: button → first piece on page", r.FirstPiece)
	row("omnibus: button → completed record", r.Complete)
	if r.Ratio > 0 {
		fmt.Fprintf(w, "first piece p50 ratio omnibus/direct: %.2f (direct streams had %d pieces each)\n", r.Ratio, r.DirectChunks)
	}
	verdict := "every completed suggestion reached its agent's page whole"
	if !r.OK() {
		verdict = "NOT OK: a request went unanswered, a stream lost a piece, or a page's stream was cut off"
	}
	fmt.Fprintln(w, verdict)
}

type runner struct {
	cfg  Config
	base string
	hc   *http.Client
	bus  *bus.Client
	// supervisor is the token that creates the agents.
	supervisor string
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench suggest: "+format+"\n", args...)
	}
}

// Run runs the load and returns its report (partial when err is not nil).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	r := &runner{cfg: cfg, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4 * cfg.Streams}}}
	rep := &Report{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Streams: cfg.Streams,
		ChunkDelay: float64(cfg.ChunkDelay) / float64(time.Millisecond), Settings: map[string]string{}}

	settings := map[string]string{
		"SANDBOX_SCENARIO_INTERVAL":  "0", // no simulated customers: the load is the generator's
		"SANDBOX_CALL_INTERVAL":      "0",
		"SANDBOX_TCCC_CALL_INTERVAL": "0",
		"SANDBOX_OPENAI_CHUNK_DELAY": cfg.ChunkDelay.String(),
		"DESK_DEV_LOGIN":             "true",
		"DESK_ASSIGN":                "false",
	}
	for k, v := range settings {
		rep.Settings[k] = v
	}
	for k, v := range cfg.Set {
		settings[k] = v
		rep.Settings[k] = v + " (--set)"
	}
	aioi, err := aio.Start(ctx, aio.Options{Name: "suggest", NATSSync: cfg.NATSSync, DatabaseURL: cfg.DatabaseURL, Log: cfg.Log,
		Env: func(k string) (string, bool) { v, ok := settings[k]; return v, ok },
		Services: func() []service.Service {
			return []service.Service{sandbox.Service(), unifier.Service(), desk.Service(), assist.Service(), audit.Service()}
		}})
	if err != nil {
		return rep, err
	}
	defer func() {
		if err := aioi.Close(); err != nil {
			r.logf("all-in-one stopped with %v", err)
		}
	}()
	r.base = aioi.Base
	r.logf("all-in-one up on %s: sandbox, unifier, desk, assist, audit", r.base)
	nc, client, err := bus.Dial(ctx, aioi.NATSURL, "omnibus-bench-suggest", bus.WithLogger(cfg.Log))
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	r.bus = client

	if cfg.Baseline {
		if rep.DirectFirst, rep.DirectChunks, err = r.direct(ctx); err != nil {
			return rep, fmt.Errorf("baseline: %w", err)
		}
		r.logf("baseline: %d direct streams, first chunk p50 %.1f ms", cfg.Streams, rep.DirectFirst.P50)
	}
	convs, err := r.conversations(ctx)
	if err != nil {
		return rep, err
	}
	r.logf("%d conversations on the desk", len(convs))
	err = r.press(ctx, convs, rep)
	if rep.DirectFirst != nil && rep.DirectFirst.P50 > 0 && rep.FirstPiece != nil && rep.FirstPiece.Samples > 0 {
		rep.Ratio = rep.FirstPiece.P50 / rep.DirectFirst.P50
	}
	return rep, err
}

// prompt is what each simulated customer writes (and what the baseline asks the model).
func prompt(i int) string {
	return fmt.Sprintf("你好，我的订单 %d 昨天显示已发货，但是物流一直没有更新，什么时候能到？", 880000+i)
}

// direct is the baseline: Streams concurrent chat completions straight to the sandbox model.
func (r *runner) direct(ctx context.Context) (*stats.Dist, int, error) {
	n := r.cfg.Streams
	firsts := make([]float64, n)
	chunks := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			firsts[i], chunks[i], errs[i] = r.directOne(ctx, prompt(i))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	return stats.Of(firsts), slices.Max(chunks), nil
}

func (r *runner) directOne(ctx context.Context, text string) (float64, int, error) {
	body, _ := json.Marshal(map[string]any{"model": "qwen-plus", "stream": true, "messages": []map[string]string{
		{"role": "system", "content": "你是客服坐席的助手。"}, {"role": "user", "content": text}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/sandbox/openai/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+sandbox.Credentials["ASSIST_API_KEY"])
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("sandbox model: %s", resp.Status)
	}
	var first float64
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: {") && strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
			if n == 0 {
				first = ms(time.Since(t0))
			}
			n++
		}
	}
	return first, n, sc.Err()
}

// conversations writes one web-chat message per agent, as the web-chat connector publishes a
// visitor's message, and returns the conversations the desk shows for them, in order.
func (r *runner) conversations(ctx context.Context) ([]string, error) {
	n := r.cfg.Streams
	visitors := make([]string, n)
	for i := range n {
		visitors[i] = fmt.Sprintf("v_bench%06d_%s", i, uuid.NewString()[:8])
		id := "webchat:" + uuid.NewString()
		e, err := event.New(schemas.TypeChannelMessageReceived, "/connectors/webchat", map[string]any{
			"channel": "webchat", "channel_message_id": id, "from": map[string]string{"kind": "web_visitor", "value": visitors[i]},
			"message": map[string]any{"type": "text", "text": prompt(i)}, "sent_at": time.Now().UTC()},
			event.WithID(id), event.WithPartitionKey("web_visitor:"+visitors[i]))
		if err != nil {
			return nil, err
		}
		if err := r.bus.Publish(ctx, "omni.in.webchat.message", e); err != nil {
			return nil, err
		}
	}
	token, err := r.login(ctx, "supervisor-wang", "supervisor") // the desk's seeded supervisor
	if err != nil {
		return nil, err
	}
	r.supervisor = token
	// The desk's open conversations, waited for until every visitor has one with its message.
	for deadline := time.Now().Add(60 * time.Second); ; {
		var page struct {
			Conversations []struct {
				ID string `json:"id"`
			} `json:"conversations"`
		}
		if err := r.getJSON(ctx, token, "/api/conversations?status=open&limit="+strconv.Itoa(n+10), &page); err != nil {
			return nil, err
		}
		if len(page.Conversations) >= n {
			out := make([]string, 0, n)
			for _, c := range page.Conversations[:n] {
				out = append(out, c.ID)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the desk shows %d of %d conversations after 60s", len(page.Conversations), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// login returns an access token of the development login.
func (r *runner) login(ctx context.Context, agent, role string) (string, error) {
	u := r.base + "/desk/dev/login?format=token&agent=" + agent
	if role != "" {
		u += "&role=" + role
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("dev login of %s: %s (%w)", agent, resp.Status, err)
	}
	return tok.AccessToken, nil
}

func (r *runner) getJSON(ctx context.Context, token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// send makes an API call and checks its status.
func (r *runner) send(ctx context.Context, token, method, path, body string, want int) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return nil
}

// Piece is a streamed piece as the agent's page receives it.
type Piece struct {
	RequestID string `json:"request_id"`
	Seq       int    `json:"seq"`
	Attempt   int    `json:"attempt"`
	Offset    int    `json:"offset"`
	Text      string `json:"text"`
}

// agent is one simulated agent: its token, conversation, event stream and request.
type agent struct {
	id, token, conv string
	mu              sync.Mutex
	request         string
	pressed         time.Time
	accepted        time.Time
	first           time.Time
	pieces          []Piece
	cutOff          bool
	ready           chan struct{}
}

// press opens every agent's event stream, presses every AI button at once and collects the
// pieces and the completed records.
func (r *runner) press(ctx context.Context, convs []string, rep *Report) error {
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	agents := make([]*agent, len(convs))
	var streams sync.WaitGroup
	for i, conv := range convs {
		a := &agent{id: fmt.Sprintf("agent-bench-%03d", i), conv: conv, ready: make(chan struct{})}
		if err := r.send(ctx, r.supervisor, http.MethodPut, "/api/agents/"+a.id, `{"name":"`+a.id+`"}`, http.StatusOK); err != nil {
			return err
		}
		tok, err := r.login(ctx, a.id, "")
		if err != nil {
			return err
		}
		a.token = tok
		agents[i] = a
		streams.Go(func() { r.stream(sctx, a) })
	}
	for _, a := range agents {
		select {
		case <-a.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The records, from the log: every suggestion answered from now on.
	answers := make(chan event.Event, 4*len(agents))
	cons, err := r.bus.JetStream().OrderedConsumer(ctx, bus.StreamTool, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{assist.SubjectCompleted, assist.SubjectFailed}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if e, err := event.Decode(m.Headers(), m.Data()); err == nil {
			answers <- e
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()

	byRequest := map[string]*agent{}
	var pressMu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, a := range agents {
		wg.Go(func() {
			<-start
			id, at, err := r.pressOne(ctx, a)
			if err != nil {
				r.logf("%s: %v", a.id, err)
				return
			}
			a.mu.Lock()
			a.request, a.pressed, a.accepted = id, at, time.Now()
			a.mu.Unlock()
			pressMu.Lock()
			byRequest[id] = a
			pressMu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	rep.Accepted = len(byRequest)
	r.logf("%d buttons pressed", rep.Accepted)

	type answer struct {
		at   time.Time
		text string
		ok   bool
	}
	got := map[string]answer{}
	timeout := time.After(r.cfg.Wait)
	for len(got) < len(byRequest) {
		select {
		case e := <-answers:
			id := event.CorrelationID(e)
			if _, mine := byRequest[id]; !mine {
				continue
			}
			var d struct {
				Suggestions []struct {
					Text string `json:"text"`
				} `json:"suggestions"`
			}
			_ = event.DecodeData(e, &d)
			an := answer{at: time.Now(), ok: e.Type() == assist.TypeCompleted}
			if len(d.Suggestions) > 0 {
				an.text = d.Suggestions[0].Text
			}
			got[id] = an
		case <-timeout:
			goto collected
		case <-ctx.Done():
			return ctx.Err()
		}
	}
collected:
	// The last pieces are published before the record: give the pages a moment to read them.
	time.Sleep(500 * time.Millisecond)
	stopStreams()
	streams.Wait()

	var presses, firsts, completes []float64
	for id, a := range byRequest {
		a.mu.Lock()
		an, answered := got[id]
		switch {
		case !answered:
			rep.Unanswered++
		case an.ok:
			rep.Completed++
		default:
			rep.Failed++
		}
		if a.cutOff {
			rep.CutOff++
		}
		rep.Pieces += len(a.pieces)
		for _, p := range a.pieces {
			rep.Chars += len([]rune(p.Text))
		}
		presses = append(presses, ms(a.accepted.Sub(a.pressed)))
		if !a.first.IsZero() {
			firsts = append(firsts, ms(a.first.Sub(a.pressed)))
		}
		if answered {
			completes = append(completes, ms(an.at.Sub(a.pressed)))
		}
		if answered && an.ok {
			text, gaps := Assemble(a.pieces)
			rep.Gaps += gaps
			if gaps == 0 && strings.TrimSpace(text) == strings.TrimSpace(an.text) {
				rep.Intact++
			} else {
				rep.Dropped++
				r.logf("%s: streamed %q, completed %q (%d gaps)", id, text, an.text, gaps)
			}
		}
		a.mu.Unlock()
	}
	rep.Press, rep.FirstPiece, rep.Complete = stats.Of(presses), stats.Of(firsts), stats.Of(completes)
	return nil
}

// assemble returns the text of the last attempt's pieces in seq order and how many seqs are
// missing before the last one.
func Assemble(ps []Piece) (string, int) {
	last := 0
	for _, p := range ps {
		last = max(last, p.Attempt)
	}
	var mine []Piece
	for _, p := range ps {
		if p.Attempt == last {
			mine = append(mine, p)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Seq < mine[j].Seq })
	var b strings.Builder
	gaps, want := 0, 1
	for _, p := range mine {
		if p.Seq < want {
			continue // a duplicate
		}
		gaps += p.Seq - want
		want = p.Seq + 1
		b.WriteString(p.Text)
	}
	return b.String(), gaps
}

// pressOne presses the agent's AI button; a 409 (the desk has no text turn yet) is retried.
func (r *runner) pressOne(ctx context.Context, a *agent) (string, time.Time, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/conversations/"+a.conv+"/tools/ai/suggest", strings.NewReader("{}"))
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		req.Header.Set("Content-Type", "application/json")
		at := time.Now()
		resp, err := r.hc.Do(req)
		if err != nil {
			return "", at, err
		}
		var out struct {
			RequestID string `json:"request_id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode == http.StatusConflict && attempt < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusAccepted || err != nil || out.RequestID == "" {
			return "", at, fmt.Errorf("AI button: %s (%w)", resp.Status, err)
		}
		return out.RequestID, at, nil
	}
}

// stream reads the agent's event stream until ctx ends, keeping the pieces addressed to it.
func (r *runner) stream(ctx context.Context, a *agent) {
	defer func() {
		select {
		case <-a.ready:
		default:
			close(a.ready)
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/events", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var n struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal([]byte(line), &n) != nil {
			continue
		}
		switch n.Type {
		case "desk.hello":
			close(a.ready)
		case desk.TypeSuggestDelta:
			var p Piece
			if json.Unmarshal(n.Data, &p) != nil {
				continue
			}
			now := time.Now()
			a.mu.Lock()
			if a.first.IsZero() {
				a.first = now
			}
			a.pieces = append(a.pieces, p)
			a.mu.Unlock()
		}
	}
	if ctx.Err() == nil { // the desk ended the stream
		a.mu.Lock()
		a.cutOff = true
		a.mu.Unlock()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
