// Package natsembed runs a NATS server with JetStream inside the current process: the all-in-one
// binary's bus and the test harness's (a few milliseconds to start).
package natsembed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ErrInvalidSync is wrapped when Options.Sync is neither "always" nor a duration.
var ErrInvalidSync = errors.New("invalid JetStream sync setting")

// Options configures the embedded server. The zero value is a loopback server on a random port
// with JetStream in a fresh temporary directory and every acknowledged write on disk.
type Options struct {
	// Host to listen on. Default "127.0.0.1".
	Host string
	// Port to listen on; 0 picks a free port. Default 0.
	Port int
	// StoreDir is the JetStream directory. Default: a new temp dir, removed by Shutdown.
	StoreDir string
	// Sync is "always" (default: fsync before every ack, so acknowledged means on disk) or a
	// duration such as "2m" (NATS's own default; faster, but a power loss can lose up to that
	// window of acknowledged writes).
	Sync string
	// ServerName. Default "omnibus".
	ServerName string
	// MaxPayload in bytes. Default 8 MiB (vendor media callbacks can be large).
	MaxPayload int32
	// Debug turns on the server's own logging to stderr.
	Debug bool
	// Users, when set, turns authentication on: only these nkey users connect, each with its
	// permissions (pkg/natsauth generates them from the services' specs). Unset: any client
	// connects with every permission (the tests' harness).
	Users []User
	// TLS, if set, is the server's TLS for client connections (tls.Config.MinVersion applies:
	// pkg/tlsconf sets TLS 1.3); with ClientCAs set, clients must present a certificate.
	TLS *tls.Config
	// Log, if set, receives the server's warnings and errors (permission and authorization
	// violations among them) when Debug is off.
	Log *slog.Logger
}

// User is an nkey user of the embedded server and what it may publish and subscribe to (NATS
// subject patterns; anything else is refused by the server).
type User struct {
	// Name is for logs and errors ("unifier", "reader").
	Name string
	// Nkey is the user's public nkey (U...); the client proves it holds the seed.
	Nkey               string
	Publish, Subscribe []string
	// All grants every subject (an administrator); Publish and Subscribe are then ignored.
	All bool
}

// Server is a running embedded NATS server.
type Server struct {
	*server.Server
	ownDir string
}

// ParseSync validates a sync setting and returns the server's interval and always flag.
func ParseSync(s string) (interval time.Duration, always bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "always":
		return 0, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, false, fmt.Errorf("%w: %q (want \"always\" or a positive duration such as \"2m\")", ErrInvalidSync, s)
	}
	return d, false, nil
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	interval, always, err := ParseSync(o.Sync)
	if err != nil {
		return nil, err
	}
	s := &Server{}
	if o.StoreDir == "" {
		if o.StoreDir, err = os.MkdirTemp("", "omnibus-nats-"); err != nil {
			return nil, fmt.Errorf("nats store dir: %w", err)
		}
		s.ownDir = o.StoreDir
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	if o.ServerName == "" {
		o.ServerName = "omnibus"
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 8 << 20
	}
	opts := &server.Options{
		ServerName:   o.ServerName,
		Host:         o.Host,
		Port:         o.Port,
		JetStream:    true,
		StoreDir:     o.StoreDir,
		SyncInterval: interval,
		SyncAlways:   always,
		MaxPayload:   o.MaxPayload,
		NoSigs:       true,
		NoLog:        !o.Debug,
	}
	if o.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, o.TLS, 5
		opts.TLSVerify = o.TLS.ClientCAs != nil
	}
	for _, u := range o.Users {
		nu := &server.NkeyUser{Nkey: u.Nkey}
		if !u.All {
			nu.Permissions = &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: nonEmpty(u.Publish)},
				Subscribe: &server.SubjectPermission{Allow: nonEmpty(u.Subscribe)},
			}
		}
		opts.Nkeys = append(opts.Nkeys, nu)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if o.Debug {
		ns.ConfigureLogger()
	} else if o.Log != nil {
		opts.NoLog = false
		ns.SetLoggerV2(slogLogger{o.Log.With("component", "nats")}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.cleanup()
		return nil, errors.New("nats server: not ready for connections after 10s")
	}
	s.Server = ns
	return s, nil
}

// nonEmpty keeps a user with no allowed subject from being read as "no restriction": the server
// treats a nil allow list as allow-all.
func nonEmpty(subjects []string) []string {
	if len(subjects) == 0 {
		return []string{"_nothing_allowed_"}
	}
	return subjects
}

// slogLogger passes the server's warnings and errors (an authorization or permission violation
// names the client and the subject) to slog; notices, debug and trace are dropped.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Noticef(string, ...any) {}
func (l slogLogger) Debugf(string, ...any)  {}
func (l slogLogger) Tracef(string, ...any)  {}
func (l slogLogger) Warnf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
func (l slogLogger) Errorf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
}
func (l slogLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ClientURL() }

// Connect opens a client connection to the server.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(s.ClientURL(), append([]nats.Option{nats.Name(name)}, opts...)...)
}

// Shutdown stops the server, waits for it and removes the temp store dir it created.
func (s *Server) Shutdown() {
	s.Server.Shutdown()
	s.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.ownDir != "" {
		_ = os.RemoveAll(s.ownDir)
	}
}

// SyncDescription explains a sync setting in one line, for start-up logs.
func SyncDescription(sync string) string {
	d, always, err := ParseSync(sync)
	switch {
	case err != nil:
		return err.Error()
	case always:
		return "sync=always: every acknowledged publish is fsynced before the ack"
	default:
		return "sync=" + strconv.Quote(d.String()) + ": fsync every " + d.String() + "; a power loss may lose acknowledged writes of that window"
	}
}
