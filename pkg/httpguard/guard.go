package httpguard

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Config is the abuse limits a process applies to its public HTTP entries, read from the
// environment (service.Base, the all-in-one's Config). The defaults leave the demo's simulated
// vendors and customers, which all come from 127.0.0.1, well under every limit.
type Config struct {
	TrustedProxies []string `env:"HTTP_TRUSTED_PROXIES" desc:"comma-separated CIDRs or addresses of reverse proxies (a TLS-terminating load balancer) trusted to name the client in X-Forwarded-For; the client address is then the right-most X-Forwarded-For entry that is not one of them. Empty: the client address is the connection's peer, and X-Forwarded-For is ignored"`

	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" default:"10s" desc:"how long a client may take to send a request's headers before the connection is closed (slow-loris guard)"`
	ReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" default:"60s" desc:"how long a client may take to send a whole request, body included; event streams and WebSockets are exempt once they are open"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" default:"120s" desc:"how long writing a response may take; event streams, WebSockets and recording downloads are exempt"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" default:"120s" desc:"how long a kept-alive connection may wait for its next request"`
	MaxBody           int64         `env:"HTTP_MAX_BODY" default:"8388608" desc:"largest request body any route reads, in bytes (413 past it); webhooks (1 MiB), the desk API (64 KiB) and web chat frames cap lower"`

	WebhookRate  string `env:"RATE_WEBHOOK" default:"100/s" desc:"webhook requests one client address may make to one connector (N/s, N/m, N/h or off); 429 with Retry-After past it"`
	WebhookBurst int    `env:"RATE_WEBHOOK_BURST" default:"300" desc:"webhook requests one client address may make to one connector at once before RATE_WEBHOOK applies"`
	TokenRate    string `env:"RATE_API_TOKEN" default:"20/s" desc:"requests one bearer token's subject may make to the desk and audit APIs (N/s, N/m, N/h or off)"`
	TokenBurst   int    `env:"RATE_API_TOKEN_BURST" default:"200" desc:"requests one token's subject may make at once before RATE_API_TOKEN applies"`

	webhook, token Rate
	proxies        Proxies
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	var err error
	if c.proxies, err = ParseProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_TRUSTED_PROXIES: %w", err))
	}
	if c.webhook, err = ParseRate(c.WebhookRate, c.WebhookBurst); err != nil {
		errs = append(errs, fmt.Errorf("RATE_WEBHOOK: %w", err))
	}
	if c.token, err = ParseRate(c.TokenRate, c.TokenBurst); err != nil {
		errs = append(errs, fmt.Errorf("RATE_API_TOKEN: %w", err))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HTTP_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout}, {"HTTP_READ_TIMEOUT", c.ReadTimeout},
		{"HTTP_WRITE_TIMEOUT", c.WriteTimeout}, {"HTTP_IDLE_TIMEOUT", c.IdleTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must be >= 0 (0: no limit), got %s", d.name, d.v))
		}
	}
	if c.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("HTTP_MAX_BODY must be >= 0 (0: no cap), got %d", c.MaxBody))
	}
	return errors.Join(errs...)
}

// Guard is a process's abuse limits, handed to its services (service.Deps.Guard). A nil Guard
// limits nothing and takes the connection's peer as the client address.
type Guard struct {
	cfg     Config
	counter *Counter
}

// New returns the guard of cfg (validated: config.Load calls Validate), counting rejections on
// mp (nil: the OTel global).
func New(cfg Config, mp metric.MeterProvider) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Guard{cfg: cfg, counter: NewCounter(mp)}, nil
}

// Config returns the guard's configuration.
func (g *Guard) Config() Config {
	if g == nil {
		return Config{}
	}
	return g.cfg
}

// ClientAddr returns the address r comes from (Proxies.ClientAddr).
func (g *Guard) ClientAddr(r *http.Request) string {
	if g == nil {
		return hostOf(r.RemoteAddr)
	}
	return g.cfg.proxies.ClientAddr(r)
}

// ClientKey is the key per-address limits count r under: AddrKey(ClientAddr(r)).
func (g *Guard) ClientKey(r *http.Request) string { return AddrKey(g.ClientAddr(r)) }

// Counter returns the rejection counter (nil for a nil Guard: counts nothing).
func (g *Guard) Counter() *Counter {
	if g == nil {
		return nil
	}
	return g.counter
}

// Limiter returns a limiter for entry at r that counts on the guard's counter; an off limiter
// for a nil Guard.
func (g *Guard) Limiter(entry string, r Rate, opts ...Option) *Limiter {
	if g == nil {
		return NewLimiter(entry, Rate{}, opts...)
	}
	return NewLimiter(entry, r, append([]Option{WithCounter(g.counter)}, opts...)...)
}

// Webhook returns the limiter of connector's webhooks, keyed by client address (RATE_WEBHOOK).
func (g *Guard) Webhook(connector string) *Limiter {
	return g.Limiter("webhook/"+connector, g.Config().webhook)
}

// Token returns a limiter of entry (desk/api, audit/api) keyed by token subject
// (RATE_API_TOKEN).
func (g *Guard) Token(entry string) *Limiter {
	return g.Limiter(entry, g.Config().token)
}
