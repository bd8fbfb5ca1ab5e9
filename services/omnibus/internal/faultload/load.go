package faultload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
)

// SandboxSMSToken is the sandbox's fixture SMS_WEBHOOK_TOKEN (services/sandbox Credentials), the
// default LoadConfig.Token: an all-in-one under this load is started with it set (the demo
// generates its own per data dir, in OMNIBUS_DATA_DIR/secrets.json).
const SandboxSMSToken = "sandbox-sms-webhook-token-0001"

// LoadConfig configures a Load. Zero fields take the defaults shown.
type LoadConfig struct {
	// Base is the all-in-one's HTTP base URL, e.g. http://127.0.0.1:8080. Required.
	Base string
	// Token is the sms connector's SMS_WEBHOOK_TOKEN, carried as ?token= by the push URL, as
	// configured in Aliyun's console. Default SandboxSMSToken.
	Token string
	// Rate is the messages sent per second. Default 25.
	Rate float64
	// Batch is the uplinks per push (Aliyun batches them). Default 1.
	Batch int
	// Phones is the number of distinct customers writing. Default 200.
	Phones int
	// Timeout bounds one push. Default 10s.
	Timeout time.Duration
	// RetryMin and RetryMax bound the wait before a push is repeated, doubling from one to the
	// other with jitter (Aliyun waits minutes; the tool compresses that). Default 250ms and 5s.
	RetryMin, RetryMax time.Duration
	// MaxInFlight bounds the pushes outstanding (retries included); the generator waits when
	// it is reached, as a vendor's queue would hold the rest. Default 4096.
	MaxInFlight int
	// Run is six digits naming the run in every sequence_id and phone number. Default random.
	Run string
	// Client makes the pushes. Default a client with Timeout.
	Client *http.Client
}

func (c *LoadConfig) setDefaults() error {
	if c.Base == "" {
		return errors.New("faultload: LoadConfig.Base is required")
	}
	if c.Token == "" {
		c.Token = SandboxSMSToken
	}
	if c.Rate <= 0 {
		c.Rate = 25
	}
	if c.Batch <= 0 {
		c.Batch = 1
	}
	if c.Batch > 100 {
		return fmt.Errorf("faultload: Batch %d: an Aliyun push carries at most 100 uplinks", c.Batch)
	}
	if c.Phones <= 0 {
		c.Phones = 200
	}
	if c.Phones > 1_000_000 {
		return fmt.Errorf("faultload: Phones %d: at most 1000000", c.Phones)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 250 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(c.RetryMin, 5*time.Second)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4096
	}
	if c.Run == "" {
		n, err := rand.Int(rand.Reader, big.NewInt(900_000))
		if err != nil {
			return err
		}
		c.Run = strconv.FormatInt(100_000+n.Int64(), 10)
	}
	if len(c.Run) != 6 || strings.Trim(c.Run, "0123456789") != "" {
		return fmt.Errorf("faultload: Run %q: want six digits", c.Run)
	}
	if c.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.Client = &http.Client{Timeout: c.Timeout, Transport: tr}
	}
	return nil
}

// Load sends SMS uplinks to the sms connector at a steady rate, as Aliyun pushes them, and
// keeps the ledger of what was acknowledged. Every uplink is pushed again until the connector
// acknowledges it (or answers with a final 4xx).
type Load struct {
	cfg    LoadConfig
	url    string
	ledger *Ledger

	stopGen  chan struct{} // closed by Stop: no new messages
	genDone  chan struct{}
	abort    context.Context // cancelled when Stop gives up waiting: no more retries
	cancel   context.CancelFunc
	inflight sync.WaitGroup
	slots    chan struct{}
	stopOnce sync.Once
	next     int64 // messages generated so far
}

// StartLoad starts sending in the background. Stop ends it.
func StartLoad(cfg LoadConfig) (*Load, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Base, "/") + "/hooks/sms/aliyun/up")
	if err != nil {
		return nil, fmt.Errorf("faultload: Base: %w", err)
	}
	u.RawQuery = url.Values{"token": {cfg.Token}}.Encode()
	abort, cancel := context.WithCancel(context.Background())
	l := &Load{cfg: cfg, url: u.String(), ledger: NewLedger(), stopGen: make(chan struct{}), genDone: make(chan struct{}),
		abort: abort, cancel: cancel, slots: make(chan struct{}, cfg.MaxInFlight)}
	go l.generate()
	return l, nil
}

// Ledger returns the run's ledger.
func (l *Load) Ledger() *Ledger { return l.ledger }

// Prefix is the prefix of every event id of this run: sms:aliyun:up:9<run>.
func (l *Load) Prefix() string { return "sms:aliyun:up:9" + l.cfg.Run }

// Stop stops sending new messages and waits until every message sent is acknowledged (or
// rejected), or ctx ends; then the retries stop and the error counts what was left pending.
// Later calls return at once.
func (l *Load) Stop(ctx context.Context) error {
	l.stopOnce.Do(func() { close(l.stopGen) })
	<-l.genDone
	done := make(chan struct{})
	go func() { l.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	<-done
	return fmt.Errorf("faultload: %d messages still unacknowledged when the load stopped: %w", len(l.ledger.Pending()), ctx.Err())
}

// generate makes cfg.Batch uplinks every cfg.Batch/cfg.Rate seconds.
func (l *Load) generate() {
	defer close(l.genDone)
	every := time.Duration(float64(time.Second) * float64(l.cfg.Batch) / l.cfg.Rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-l.stopGen:
			return
		case <-tick.C:
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.stopGen:
			return
		}
		ups, ids := l.batch(time.Now())
		body, err := json.Marshal(ups)
		if err != nil { // unreachable: plain strings
			panic(err)
		}
		l.ledger.add(ids, time.Now())
		l.inflight.Add(1)
		go l.deliver(body, ids)
	}
}

// batch makes the next cfg.Batch uplinks.
func (l *Load) batch(now time.Time) ([]aliwire.SmsUp, []string) {
	ups := make([]aliwire.SmsUp, 0, l.cfg.Batch)
	ids := make([]string, 0, l.cfg.Batch)
	for range l.cfg.Batch {
		n := l.next
		l.next++
		seq := fmt.Sprintf("9%s%08d", l.cfg.Run, n)
		ups = append(ups, aliwire.SmsUp{
			PhoneNumber: l.phone(int(n % int64(l.cfg.Phones))), SendTime: aliwire.FormatTime(now),
			Content: fmt.Sprintf("fault suite message %d: 我的快递到哪了？", n), SignName: "omnibus", SequenceID: json.Number(seq),
		})
		ids = append(ids, "sms:aliyun:up:"+seq)
	}
	return ups, ids
}

// phone is customer i's mainland mobile number in Aliyun's format (no +86): 137, a prefix the
// sandbox's simulated population does not use, the run's last two digits and i.
func (l *Load) phone(i int) string {
	return fmt.Sprintf("137%s%06d", l.cfg.Run[4:], i)
}

// deliver pushes body until it is acknowledged, rejected, or the load is aborted.
func (l *Load) deliver(body []byte, ids []string) {
	defer l.inflight.Done()
	defer func() { <-l.slots }()
	wait := l.cfg.RetryMin
	for {
		answer, detail, acked, final := l.push(body)
		l.ledger.pushed(ids, answer)
		switch {
		case acked:
			l.ledger.ack(ids, time.Now())
			return
		case final:
			l.ledger.reject(ids, answer+": "+detail)
			return
		}
		// Full jitter over [wait/2, wait), doubling up to RetryMax.
		d := wait/2 + time.Duration(mrand.Int64N(int64(wait/2)+1))
		wait = min(2*wait, l.cfg.RetryMax)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-l.abort.Done():
			t.Stop()
			return
		}
	}
}

// push makes one push and classifies the answer: acknowledged (2xx with code 0), final (a 4xx
// that repeating cannot fix: the tool's own bug), or to be pushed again (no answer, 5xx, 404
// while the connector's route is not mounted yet, 408, 429, a 2xx without code 0).
// answer is the HTTP status, "error" when there was none; detail is the error or the body.
func (l *Load) push(body []byte) (answer, detail string, acked, final bool) {
	ctx, cancel := context.WithTimeout(l.abort, l.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return "error", err.Error(), false, true
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Aliyun-SMS-Push/faultload")
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		return "error", err.Error(), false, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	answer, detail = strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		var ack aliwire.PushAck
		if json.Unmarshal(b, &ack) != nil || ack.Code != 0 {
			return answer + " without code 0", detail, false, false
		}
		return answer, detail, true, false
	case s == http.StatusNotFound, s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return answer, detail, false, false
	default:
		return answer, detail, false, true
	}
}
