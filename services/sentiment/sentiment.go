// Package sentiment is the sentiment connector: it scores every inbound customer text message
// of omni.desk.message.added (chat, SMS, and voice calls' transcripts, which arrive as voice
// inbound messages) and publishes, on stream OMNI_TOOL:
//
//   - omni.tool.ai.sentiment.scored for every message: label, score, confidence and provenance
//     (who scored it — a vendor and its API version, or "builtin" and the analyser's lexicon
//     version —, the latency, the input event ids, and the vendor and reason when the built-in
//     analyser stood in);
//   - omni.tool.ai.sentiment.alert.raised once when a conversation's customer turns negative,
//     and omni.tool.ai.sentiment.alert.cleared once when they recover (pkg/sentiment's Tracker:
//     the mean of the last SENTIMENT_WINDOW turns, with hysteresis; a complaint or threat term
//     raises at once).
//
// The vendor is SENTIMENT_PROVIDER: Tencent Cloud NLP AnalyzeSentiment (TC3-HMAC-SHA256) or
// Aliyun NLP GetSaChGeneral (RPC signature V1), each call through the resilience route
// <vendor>.sentiment (attempts within SENTIMENT_BUDGET, 300 ms, retries, breaker, one masked
// audit record per call on omni.audit.sentiment). When the vendor is not configured, fails, or
// does not answer within the budget, the built-in analyser (pkg/sentiment) scores the message,
// and the provenance says "builtin" and why. The built-in analyser also runs beside a vendor for
// its escalation flag (投诉, 12315, "speak to your manager"), which vendors do not give. Phone,
// ID-card and bank-card numbers and e-mails are masked (pkg/pii) before a text leaves.
//
// A call's transcript segment carries the caller's voice tone (body.tone, from the voice
// connector through the unifier): a raised or agitated voice shifts the words' score negative
// (pkg/sentiment ToneShift, up to -0.6), and provenance.tone records the tone, the words' own
// score and the shift.
//
// Every event id derives from the message's id (sentiment:scored:<id>, sentiment:raised:<id>,
// sentiment:cleared:<id>), and each conversation's episode state — the tracker's window, whether
// it is negative, the messages already applied — is kept in the JetStream KV bucket
// sentiment_episodes, written after the events are stored: a redelivered message publishes
// nothing twice, and a restart raises no alert already raised.
package sentiment

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	analysis "github.com/omnibus-dev/omnibus/pkg/sentiment"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/schemas"
)

// Event types and subjects.
const (
	TypeMessageAdded    = schemas.TypeDeskMessageAdded
	TypeScored          = schemas.TypeToolAiSentimentScored
	TypeAlertRaised     = schemas.TypeToolAiSentimentAlertRaised
	TypeAlertCleared    = schemas.TypeToolAiSentimentAlertCleared
	SubjectMessageAdded = TypeMessageAdded
	SubjectScored       = TypeScored
	SubjectAlertRaised  = TypeAlertRaised
	SubjectAlertCleared = TypeAlertCleared
)

// Routes and the Spec.
var (
	RouteMessageAdded = connector.Route{Subject: SubjectMessageAdded, Type: TypeMessageAdded}
	RouteScored       = connector.Route{Subject: SubjectScored, Type: TypeScored}
	RouteAlertRaised  = connector.Route{Subject: SubjectAlertRaised, Type: TypeAlertRaised}
	RouteAlertCleared = connector.Route{Subject: SubjectAlertCleared, Type: TypeAlertCleared}
	// Spec declares the connector. Audit records and route alerts are published by its
	// resilience registry.
	Spec = connector.Spec{
		Name:        "sentiment",
		Buckets:     []string{EpisodeBucket},
		Description: "sentiment of inbound customer messages (Tencent Cloud NLP, Aliyun NLP, or the built-in analyser) and an alert per negative episode",
		Consumes:    []connector.Route{RouteMessageAdded},
		Produces:    append([]connector.Route{RouteScored, RouteAlertRaised, RouteAlertCleared}, connector.ResilienceRoutes("sentiment")...),
	}
)

// Service returns the connector as a service.
func Service() service.Service { return connector.Define(Spec, setup) }

// messageAdded is the part of omni.desk.message.added the connector reads.
type messageAdded struct {
	Message struct {
		EventID        string `json:"event_id"`
		ConversationID string `json:"conversation_id"`
		CustomerID     string `json:"customer_id"`
		Channel        string `json:"channel"`
		Direction      string `json:"direction"`
		Body           struct {
			Type string `json:"type"`
			Text string `json:"text"`
			// Tone is set on a call's transcript segment: the caller's voice over it.
			Tone *analysis.Tone `json:"tone"`
		} `json:"body"`
	} `json:"message"`
}

// Scored is the data of omni.tool.ai.sentiment.scored.
type Scored struct {
	ConversationID  string     `json:"conversation_id"`
	CustomerID      string     `json:"customer_id"`
	MessageID       string     `json:"message_id"`
	Channel         string     `json:"channel,omitempty"`
	Label           string     `json:"label"`
	Score           float64    `json:"score"`
	Confidence      float64    `json:"confidence"`
	Escalation      bool       `json:"escalation,omitempty"`
	NegativeEpisode bool       `json:"negative_episode"`
	Provenance      Provenance `json:"provenance"`
}

// Provenance is who scored a message.
type Provenance struct {
	Provider        string   `json:"provider"`
	Model           string   `json:"model"`
	Version         string   `json:"version"`
	LatencyMS       int64    `json:"latency_ms"`
	InputEventIDs   []string `json:"input_event_ids"`
	FallbackFrom    string   `json:"fallback_from,omitempty"`
	FallbackReason  string   `json:"fallback_reason,omitempty"`
	VendorRequestID string   `json:"vendor_request_id,omitempty"`
	Truncated       bool     `json:"truncated,omitempty"`
	// Tone is set when the caller's voice tone contributed to the score.
	Tone *ToneContribution `json:"tone,omitempty"`
}

// ToneContribution is how the caller's voice moved a transcript segment's score:
// Score = WordsScore + Shift (pkg/sentiment ToneShift).
type ToneContribution struct {
	Label      string  `json:"label"`
	Arousal    float64 `json:"arousal"`
	WordsScore float64 `json:"words_score"`
	Shift      float64 `json:"shift"`
}

// Alert is the data of omni.tool.ai.sentiment.alert.raised and .cleared.
type Alert struct {
	ConversationID string   `json:"conversation_id"`
	CustomerID     string   `json:"customer_id"`
	MessageID      string   `json:"message_id"`
	Channel        string   `json:"channel,omitempty"`
	Episode        int      `json:"episode"`
	MeanScore      float64  `json:"mean_score"`
	Label          string   `json:"label,omitempty"`
	Escalation     bool     `json:"escalation"`
	Provider       string   `json:"provider,omitempty"`
	InputEventIDs  []string `json:"input_event_ids"`
}

// Connector is the running connector.
type Connector struct {
	cfg      Config
	rt       *connector.Runtime
	analyzer *analysis.Analyzer
	vendor   scorer
	route    *resilience.Route
	why      string // why there is no vendor, when there is none
	episodes *episodes
	locks    [64]sync.Mutex // conversations hashed onto them: one message of a conversation at a time
	now      func() time.Time
}

func setup(ctx context.Context, rt *connector.Runtime, cfg *Config) error {
	c, err := New(ctx, rt, *cfg, Options{})
	if err != nil {
		return err
	}
	return rt.Consume(ctx, RouteMessageAdded, c.Handle, bus.ConsumerConfig{
		Concurrency:   cfg.Concurrency,
		MaxAckPending: max(256, cfg.Concurrency),
		AckWait:       cfg.Budget + 30*time.Second,
	})
}

// Options are the knobs tests set; production uses the zero value.
type Options struct {
	// HTTP is the vendor's HTTP client. Default: one with no overall timeout (every attempt is
	// bounded by the route's timeout).
	HTTP *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// New builds the connector on rt: its vendor route on rt's resilience registry and its episode
// bucket.
func New(ctx context.Context, rt *connector.Runtime, cfg Config, o Options) (*Connector, error) {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Connector{cfg: cfg, rt: rt, analyzer: analysis.Default(), now: o.Now}
	c.vendor, c.why = newScorer(cfg, o.HTTP, o.Now)
	if c.vendor != nil {
		reg, err := rt.Resilience()
		if err != nil {
			return nil, err
		}
		if c.route, err = reg.Route(c.vendor.route(cfg)); err != nil {
			return nil, err
		}
	} else if c.why != "" && rt.Log != nil {
		rt.Log.Warn("sentiment vendor not configured: the built-in analyser scores every message", "provider", cfg.Provider, "reason", c.why)
	}
	ep, err := openEpisodes(ctx, rt, cfg)
	if err != nil {
		return nil, err
	}
	c.episodes = ep
	return c, nil
}

// Handle scores one omni.desk.message.added delivery: nothing for outbound or non-text
// messages; otherwise the scored event and, when the message turns the conversation's episode,
// the alert, then the episode state.
func (c *Connector) Handle(ctx context.Context, d bus.Delivery) error {
	var m messageAdded
	if err := event.DecodeData(d.Event, &m); err != nil {
		return bus.Permanent(err)
	}
	msg := m.Message
	if msg.Direction != "inbound" || msg.Body.Type != "text" || strings.TrimSpace(msg.Body.Text) == "" {
		return nil
	}
	if msg.EventID == "" || !validKey(msg.ConversationID) {
		return bus.Permanent(fmt.Errorf("message.added %s: no message id or conversation id %q", d.Event.ID(), msg.ConversationID))
	}
	lock := &c.locks[shard(msg.ConversationID, len(c.locks))]
	lock.Lock()
	defer lock.Unlock()

	st, err := c.episodes.get(ctx, msg.ConversationID)
	if err != nil {
		return err
	}
	if st.applied(msg.EventID) {
		return nil // a redelivery of a message whose events and state are stored
	}
	tr, err := analysis.RestoreTracker(c.cfg.tracker(), st.Tracker)
	if err != nil {
		c.rt.Log.Warn("episode state unreadable; starting the conversation afresh", "conversation", msg.ConversationID, "err", err)
		tr, _ = analysis.NewTracker(c.cfg.tracker())
	}
	inputs := []string{d.Event.ID()}
	if msg.EventID != d.Event.ID() {
		inputs = append(inputs, msg.EventID)
	}
	s := c.score(ctx, msg.Body.Text, resilience.Call{CustomerID: msg.CustomerID, CorrelationID: d.Event.ID(), Key: msg.ConversationID}, inputs)
	if t := msg.Body.Tone; t != nil && validTone(*t) {
		c.withTone(&s, *t)
	}
	transition := tr.Observe(analysis.Result{Score: s.Score, Escalation: s.Escalation})
	s.ConversationID, s.CustomerID, s.MessageID, s.Channel = msg.ConversationID, msg.CustomerID, msg.EventID, msg.Channel
	s.NegativeEpisode = tr.Negative()

	batch, err := c.events(d.Event, s, transition, tr)
	if err != nil {
		return bus.Permanent(err)
	}
	// The vendor may have spent the budget: storing the events gets its own bound.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.rt.Publish(pctx, batch...); err != nil {
		return err
	}
	st.Tracker = tr.State()
	st.remember(msg.EventID)
	return c.episodes.put(pctx, msg.ConversationID, st)
}

// score scores text with the vendor, or with the built-in analyser when there is none or it
// failed; the escalation flag is always the built-in analyser's.
func (c *Connector) score(ctx context.Context, text string, call resilience.Call, inputs []string) Scored {
	start := c.now()
	local := c.analyzer.Analyze(text)
	s := Scored{Label: string(local.Label), Score: local.Score, Confidence: local.Confidence, Escalation: local.Escalation,
		Provenance: Provenance{Provider: ProviderBuiltin, Model: "pkg/sentiment", Version: c.analyzer.Version(), InputEventIDs: inputs,
			Truncated: local.Truncated}}
	if c.vendor == nil {
		if c.why != "" {
			s.Provenance.FallbackFrom, s.Provenance.FallbackReason = c.cfg.Provider, c.why
		}
		s.Provenance.LatencyMS = c.now().Sub(start).Milliseconds()
		return s
	}
	// Phone, ID-card and bank-card numbers and e-mails do not leave: they carry no sentiment.
	sent, truncated := cut(pii.Redact(text), maxVendorText(c.cfg.Provider))
	budget, cancel := context.WithTimeout(ctx, c.cfg.Budget)
	defer cancel()
	v, err := resilience.Do(budget, c.route, call, func(ctx context.Context, a *resilience.Attempt) (vendorScore, error) {
		return c.vendor.score(ctx, a, sent)
	})
	latency := c.now().Sub(start).Milliseconds()
	if err != nil {
		s.Provenance.FallbackFrom, s.Provenance.FallbackReason = c.cfg.Provider, truncate(errReason(err), 512)
		s.Provenance.LatencyMS = latency
		return s
	}
	model, version := c.vendor.model()
	s.Label, s.Score, s.Confidence = v.Label, v.Score, v.Confidence
	s.Provenance = Provenance{Provider: c.cfg.Provider, Model: model, Version: version, LatencyMS: latency, InputEventIDs: inputs,
		VendorRequestID: truncate(v.RequestID, 128), Truncated: truncated}
	return s
}

// withTone combines the caller's voice with the words' score (pkg/sentiment ToneShift: a raised
// or agitated voice pushes it negative, a calm one or clearly positive words leave it), relabels
// a shifted score with the built-in analyser's thresholds, and records the contribution in the
// provenance.
func (c *Connector) withTone(s *Scored, t analysis.Tone) {
	shift := round3(analysis.ToneShift(s.Score, t))
	s.Provenance.Tone = &ToneContribution{Label: t.Label, Arousal: t.Arousal, WordsScore: s.Score, Shift: shift}
	if shift == 0 {
		return
	}
	s.Score = max(-1, min(1, s.Score+shift))
	label, conf := c.analyzer.Classify(s.Score)
	s.Label, s.Confidence = string(label), conf
}

// validTone: a tone the schema allows (the unifier copies it from the voice connector).
func validTone(t analysis.Tone) bool {
	switch t.Label {
	case "calm", "raised", "agitated":
		return t.Arousal >= 0 && t.Arousal <= 1
	}
	return false
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func maxVendorText(provider string) int {
	if provider == ProviderAliyun {
		return 1000
	}
	return 200
}

// events builds the scored event and, on a transition, the alert.
func (c *Connector) events(in event.Event, s Scored, t analysis.Transition, tr *analysis.Tracker) ([]bus.Outgoing, error) {
	opts := func(kind string) []event.Option {
		o := []event.Option{event.WithID("sentiment:" + kind + ":" + s.MessageID), event.WithCorrelationID(in.ID()),
			event.WithSubject(s.ConversationID)}
		if pk := event.PartitionKey(in); pk != "" {
			o = append(o, event.WithPartitionKey(pk))
		}
		return o
	}
	e, err := c.rt.NewEvent(TypeScored, s, opts("scored")...)
	if err != nil {
		return nil, err
	}
	batch := []bus.Outgoing{{Subject: SubjectScored, Event: e}}
	var typ, kind string
	switch t {
	case analysis.TurnedNegative:
		typ, kind = TypeAlertRaised, "raised"
	case analysis.Recovered:
		typ, kind = TypeAlertCleared, "cleared"
	default:
		return batch, nil
	}
	a := Alert{ConversationID: s.ConversationID, CustomerID: s.CustomerID, MessageID: s.MessageID, Channel: s.Channel,
		Episode: max(1, tr.Episodes()), MeanScore: max(-1, min(1, tr.Mean())), Label: s.Label, Escalation: s.Escalation,
		Provider: s.Provenance.Provider, InputEventIDs: []string{e.ID(), s.MessageID}}
	ae, err := c.rt.NewEvent(typ, a, opts(kind)...)
	if err != nil {
		return nil, err
	}
	return append(batch, bus.Outgoing{Subject: typ, Event: ae}), nil
}

func shard(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

var errState = errors.New("episode state")
