package desk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Config is read from the environment.
type Config struct {
	PublicURL    string        `env:"DESK_PUBLIC_URL" default:"http://127.0.0.1:8080" desc:"the URL browsers reach the desk at; the dev issuer's iss is <DESK_PUBLIC_URL>/desk/dev"`
	OIDCIssuer   string        `env:"DESK_OIDC_ISSUER" desc:"iss of accepted tokens: your OpenID Connect provider (required unless DESK_DEV_LOGIN=true)"`
	OIDCAudience string        `env:"DESK_OIDC_AUDIENCE" default:"omnibus-desk" desc:"a value the aud claim of accepted tokens must contain"`
	JWKSURL      string        `env:"DESK_JWKS_URL" desc:"the issuer's JWKS URL (default: jwks_uri of <DESK_OIDC_ISSUER>/.well-known/openid-configuration)"`
	AgentClaim   string        `env:"DESK_AGENT_CLAIM" default:"agent_id" desc:"claim holding the agent id (falls back to sub)"`
	RolesClaim   string        `env:"DESK_ROLES_CLAIM" default:"roles" desc:"claim holding the roles (agent, supervisor), an array or a space-separated string"`
	DevLogin     bool          `env:"DESK_DEV_LOGIN" default:"false" desc:"DEVELOPMENT ONLY: run the built-in issuer (key generated at start) and the /desk/dev/login page that signs anyone in as any agent"`
	DevTokenTTL  time.Duration `env:"DESK_DEV_TOKEN_TTL" default:"12h" desc:"lifetime of dev-login tokens"`
	CookieSecure bool          `env:"DESK_COOKIE_SECURE" default:"false" desc:"mark the desk_token cookie Secure (set it when the desk is served over HTTPS)"`
	Agents       string        `env:"DESK_AGENTS" desc:"agents seeded at start (API changes win): demo for the demo agents, or a JSON array of {id,name,skills,languages,channels,capacity,active}"`
	Assign       bool          `env:"DESK_ASSIGN" default:"true" desc:"run the routing rules (auto-assignment); enable it on one replica only"`
	AssignEvery  time.Duration `env:"DESK_ASSIGN_INTERVAL" default:"5s" desc:"how often waiting conversations are offered to agents again (also on every open/close/agent change)"`
	AutoClose    time.Duration `env:"DESK_AUTO_CLOSE_AFTER" default:"24h" desc:"close an open conversation after this long without a message either way (the unifier closes it, reason \"no activity for <duration>\"); checked by the replica that runs DESK_ASSIGN, every DESK_ASSIGN_INTERVAL; 0 turns it off"`
	CloseNotice  string        `env:"DESK_CLOSE_NOTICE" desc:"sent to the customer on the conversation's channel when an agent closes it or it is closed for inactivity, e.g. 本次会话已结束，感谢您的咨询。如需帮助，欢迎随时留言。; empty: nothing is sent"`
	AuditKeep    time.Duration `env:"DESK_AUDIT_RETENTION" default:"24h" desc:"how long the ops page keeps per-call audit rows"`
	Consumer     string        `env:"DESK_CONSUMER" default:"desk" desc:"prefix of the desk's durable consumer names (a second desk with its own store needs its own)"`
	Rebuild      bool          `env:"DESK_REBUILD" default:"false" desc:"empty the store at start and replay the log into it"`
	AIAuto       string        `env:"DESK_AI_AUTO_CHANNELS" desc:"channels whose customer messages get an AI suggestion without the button (comma-separated, e.g. webchat,wechatkf), for the conversation's assignee; empty: none"`
	AIAutoQuiet  time.Duration `env:"DESK_AI_AUTO_QUIET" default:"1500ms" desc:"how long a conversation must be quiet after a customer message before its automatic suggestion is asked for (one per burst of messages)"`
	// Recordings: the voice connector's bucket, played to agents through signed links.
	RecordingBucket string        `env:"DESK_RECORDING_BUCKET" desc:"gocloud.dev/blob URL of the voice connector's recordings (its VOICE_RECORDING_BUCKET): the desk plays a call's recording to agents who may see the conversation, through a signed link; empty: calls show no player"`
	RecordingTTL    time.Duration `env:"DESK_RECORDING_LINK_TTL" default:"15m" desc:"how long a signed recording link works"`
	KBSeed          bool          `env:"DESK_KB_SEED" default:"true" desc:"write the demo knowledge-base articles (refunds, double charges, parcel delays, membership; Chinese and English) into a knowledge base that was never seeded, once"`
}

var consumerRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks the configuration.
func (c *Config) Validate() error {
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("DESK_PUBLIC_URL must be an http(s) URL, got %q", c.PublicURL)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	switch {
	case c.DevLogin && c.OIDCIssuer != "":
		return errors.New("DESK_DEV_LOGIN=true runs the development issuer: unset DESK_OIDC_ISSUER, or set DESK_DEV_LOGIN=false to use your provider")
	case !c.DevLogin && c.OIDCIssuer == "":
		return errors.New("DESK_OIDC_ISSUER is required (your OpenID Connect provider), or DESK_DEV_LOGIN=true for the development issuer")
	case c.OIDCAudience == "":
		return errors.New("DESK_OIDC_AUDIENCE must not be empty")
	case c.AssignEvery < time.Second:
		return fmt.Errorf("DESK_ASSIGN_INTERVAL must be at least 1s, got %s", c.AssignEvery)
	case c.DevTokenTTL < time.Minute:
		return fmt.Errorf("DESK_DEV_TOKEN_TTL must be at least 1m, got %s", c.DevTokenTTL)
	case !consumerRE.MatchString(c.Consumer):
		return fmt.Errorf("DESK_CONSUMER must match %s, got %q", consumerRE, c.Consumer)
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
			return fmt.Errorf("DESK_OIDC_ISSUER must be the issuer URL, got %q", c.OIDCIssuer)
		}
	}
	if _, err := c.SeedAgents(); err != nil {
		return err
	}
	if _, err := c.AutoChannels(); err != nil {
		return err
	}
	if c.AIAutoQuiet < 0 || c.AIAutoQuiet > time.Minute {
		return fmt.Errorf("DESK_AI_AUTO_QUIET must be within 0-1m, got %s", c.AIAutoQuiet)
	}
	return nil
}

var channelRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// AutoChannels returns the channels of DESK_AI_AUTO_CHANNELS.
func (c *Config) AutoChannels() (map[string]bool, error) {
	out := map[string]bool{}
	for _, ch := range strings.Split(c.AIAuto, ",") {
		if ch = strings.TrimSpace(ch); ch == "" {
			continue
		}
		if !channelRE.MatchString(ch) || ch == "desk" {
			return nil, fmt.Errorf("DESK_AI_AUTO_CHANNELS: %q is not a channel name (e.g. webchat,wechatkf)", ch)
		}
		out[ch] = true
	}
	return out, nil
}

// DemoAgents are the agents DESK_AGENTS=demo seeds. supervisor-wang is the demo supervisor.
var DemoAgents = []store.Agent{
	{ID: "agent-li", Name: "李娜 Li Na", Skills: []string{"logistics", "vip"}, Languages: []string{"zh", "en"}, Channels: []string{}, Capacity: 10, Active: true},
	{ID: "agent-chen", Name: "陈伟 Chen Wei", Skills: []string{"billing"}, Languages: []string{"zh"}, Channels: []string{"wechatkf", "wecom", "douyin", "webchat"}, Capacity: 10, Active: true},
	{ID: "agent-emma", Name: "Emma Wilson", Skills: []string{"logistics", "billing"}, Languages: []string{"en"}, Channels: []string{}, Capacity: 8, Active: true},
	{ID: "agent-zhao", Name: "赵敏 Zhao Min", Skills: []string{"after_sales"}, Languages: []string{"zh"}, Channels: []string{"sms", "voice", "webchat"}, Capacity: 6, Active: true},
	{ID: "supervisor-wang", Name: "王强 Wang Qiang", Skills: []string{"vip", "logistics", "billing"}, Languages: []string{"zh", "en"}, Channels: []string{}, Capacity: 4, Active: true},
}

var agentIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// SeedAgents returns the agents DESK_AGENTS names.
func (c *Config) SeedAgents() ([]store.Agent, error) {
	switch strings.TrimSpace(c.Agents) {
	case "":
		return nil, nil
	case "demo":
		return DemoAgents, nil
	}
	var list []store.Agent
	dec := json.NewDecoder(strings.NewReader(c.Agents))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("DESK_AGENTS: want demo or a JSON array of {id,name,skills,languages,channels,capacity,active}: %w", err)
	}
	for i, a := range list {
		if !agentIDRE.MatchString(a.ID) {
			return nil, fmt.Errorf("DESK_AGENTS[%d]: id %q must match %s", i, a.ID, agentIDRE)
		}
		if a.Capacity < 0 || a.Capacity > 1000 {
			return nil, fmt.Errorf("DESK_AGENTS[%d] (%s): capacity must be 0-1000", i, a.ID)
		}
		if a.Name == "" {
			list[i].Name = a.ID
		}
	}
	return list, nil
}
