package webchat

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/omnibus-dev/omnibus/pkg/httpguard"
)

// Config is read from the environment.
type Config struct {
	Secret         string        `env:"WEBCHAT_SECRET" enable:"true" desc:"HMAC key signing visitor ids (required, at least 16 characters; changing it gives every visitor a new id)"`
	AllowedOrigins []string      `env:"WEBCHAT_ALLOWED_ORIGINS" desc:"comma-separated origins whose pages may embed the widget: host patterns (shop.example.com, *.example.cn) or scheme://host patterns (https://shop.example.com); the connector's own host is always allowed; * allows any origin"`
	Title          string        `env:"WEBCHAT_TITLE" desc:"title of the chat panel (default: 在线客服 or Chat with us, by the visitor's language; data-title on the script tag wins)"`
	Greeting       string        `env:"WEBCHAT_GREETING" desc:"first line shown in an empty chat (default: a greeting in the visitor's language)"`
	Account        string        `env:"WEBCHAT_ACCOUNT" desc:"site key put in the account field of inbound events, to tell several sites apart on one desk"`
	PhoneRegion    string        `env:"WEBCHAT_PHONE_REGION" default:"CN" desc:"region of phone numbers visitors type without a country code (ISO 3166 code)"`
	IdentitySecret string        `env:"WEBCHAT_IDENTITY_SECRET" desc:"HMAC key with which the host site's backend signs its logged-in user (data-identity-*); empty: host identities are refused"`
	IdentityWindow time.Duration `env:"WEBCHAT_IDENTITY_WINDOW" default:"24h" desc:"how old a host-signed identity may be"`
	MaxFrame       int           `env:"WEBCHAT_MAX_FRAME" default:"16384" desc:"largest client frame in bytes; a larger one closes the socket with 1009"`
	MaxText        int           `env:"WEBCHAT_MAX_TEXT" default:"4000" desc:"longest message text in characters (at most 10000)"`
	RatePerMinute  int           `env:"WEBCHAT_RATE_PER_MINUTE" default:"30" desc:"messages a visitor may send per minute on average (per connector replica)"`
	Burst          int           `env:"WEBCHAT_BURST" default:"10" desc:"messages a visitor may send at once before the rate applies"`
	// Per client address (behind HTTP_TRUSTED_PROXIES: the address they name), across visitors.
	AddressRate     string        `env:"WEBCHAT_ADDRESS_RATE" default:"300/m" desc:"messages all visitors at one client address may send (N/s, N/m, N/h or off; per connector replica): one client cannot flood through many visitors"`
	AddressBurst    int           `env:"WEBCHAT_ADDRESS_BURST" default:"100" desc:"messages one client address may send at once before WEBCHAT_ADDRESS_RATE applies"`
	NewVisitorRate  string        `env:"WEBCHAT_NEW_VISITOR_RATE" default:"30/m" desc:"new visitors (ids issued) one client address may create (N/s, N/m, N/h or off; per connector replica); past it the socket closes with 4429"`
	NewVisitorBurst int           `env:"WEBCHAT_NEW_VISITOR_BURST" default:"60" desc:"new visitors one client address may create at once before WEBCHAT_NEW_VISITOR_RATE applies"`
	ConnectRate     string        `env:"WEBCHAT_CONNECT_RATE" default:"120/m" desc:"WebSocket handshakes one client address may make (N/s, N/m, N/h or off; per connector replica); past it 429 with Retry-After"`
	ConnectBurst    int           `env:"WEBCHAT_CONNECT_BURST" default:"120" desc:"handshakes one client address may make at once before WEBCHAT_CONNECT_RATE applies"`
	MaxSockets      int           `env:"WEBCHAT_MAX_SOCKETS_PER_VISITOR" default:"8" desc:"open sockets (tabs) one visitor may have per connector replica"`
	MaxConnections  int           `env:"WEBCHAT_MAX_CONNECTIONS" default:"10000" desc:"open sockets per connector replica; more are answered 503"`
	PingInterval    time.Duration `env:"WEBCHAT_PING_INTERVAL" default:"25s" desc:"WebSocket ping period; a peer that does not answer within it is disconnected"`
	History         int           `env:"WEBCHAT_HISTORY" default:"200" desc:"messages kept per visitor for reconnects and page reloads"`
	HistoryTTL      time.Duration `env:"WEBCHAT_HISTORY_TTL" default:"720h" desc:"how long a visitor's messages are kept for reconnects and page reloads"`
	VisitorTTL      time.Duration `env:"WEBCHAT_VISITOR_TTL" default:"8760h" desc:"how long a visitor's delivery cursors are kept after their last receipt"`
	Replicas        int           `env:"WEBCHAT_LOG_REPLICAS" default:"1" desc:"replicas of the connector's JetStream stream and KV bucket (3 in a NATS cluster)"`

	addressRate, newVisitorRate, connectRate httpguard.Rate
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Secret) < 16 {
		errs = append(errs, errors.New("WEBCHAT_SECRET is required and must be at least 16 characters (e.g. openssl rand -hex 32)"))
	}
	for _, o := range c.AllowedOrigins {
		if _, err := path.Match(strings.ToLower(o), ""); err != nil {
			errs = append(errs, fmt.Errorf("WEBCHAT_ALLOWED_ORIGINS: %q is not a valid pattern: %w", o, err))
		}
		if strings.HasSuffix(o, "/") {
			errs = append(errs, fmt.Errorf("WEBCHAT_ALLOWED_ORIGINS: %q: an origin has no path, drop the trailing /", o))
		}
	}
	if c.PhoneRegion == "" || phonenumbers.GetCountryCodeForRegion(strings.ToUpper(c.PhoneRegion)) == 0 {
		errs = append(errs, fmt.Errorf("WEBCHAT_PHONE_REGION: %q is not a region code such as CN", c.PhoneRegion))
	}
	c.PhoneRegion = strings.ToUpper(c.PhoneRegion)
	positive := []struct {
		name string
		v    int
	}{{"WEBCHAT_MAX_FRAME", c.MaxFrame}, {"WEBCHAT_MAX_TEXT", c.MaxText}, {"WEBCHAT_RATE_PER_MINUTE", c.RatePerMinute},
		{"WEBCHAT_BURST", c.Burst}, {"WEBCHAT_MAX_SOCKETS_PER_VISITOR", c.MaxSockets}, {"WEBCHAT_MAX_CONNECTIONS", c.MaxConnections},
		{"WEBCHAT_HISTORY", c.History}, {"WEBCHAT_LOG_REPLICAS", c.Replicas}}
	for _, p := range positive {
		if p.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be >= 1, got %d", p.name, p.v))
		}
	}
	for _, r := range []struct {
		name, v string
		burst   int
		dst     *httpguard.Rate
	}{{"WEBCHAT_ADDRESS_RATE", c.AddressRate, c.AddressBurst, &c.addressRate},
		{"WEBCHAT_NEW_VISITOR_RATE", c.NewVisitorRate, c.NewVisitorBurst, &c.newVisitorRate},
		{"WEBCHAT_CONNECT_RATE", c.ConnectRate, c.ConnectBurst, &c.connectRate}} {
		rt, err := httpguard.ParseRate(r.v, r.burst)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
		}
		*r.dst = rt
	}
	if c.MaxText > maxTextCap {
		errs = append(errs, fmt.Errorf("WEBCHAT_MAX_TEXT must be <= %d (the message schema's limit), got %d", maxTextCap, c.MaxText))
	}
	if c.MaxFrame < 1024 {
		errs = append(errs, fmt.Errorf("WEBCHAT_MAX_FRAME must be >= 1024 bytes, got %d", c.MaxFrame))
	}
	if c.PingInterval < time.Second {
		errs = append(errs, fmt.Errorf("WEBCHAT_PING_INTERVAL must be >= 1s, got %s", c.PingInterval))
	}
	if c.IdentityWindow <= 0 {
		errs = append(errs, fmt.Errorf("WEBCHAT_IDENTITY_WINDOW must be > 0, got %s", c.IdentityWindow))
	}
	if c.HistoryTTL < time.Minute || c.VisitorTTL < time.Minute {
		errs = append(errs, errors.New("WEBCHAT_HISTORY_TTL and WEBCHAT_VISITOR_TTL must be >= 1m"))
	}
	return errors.Join(errs...)
}
