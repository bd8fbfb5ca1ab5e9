// Package natsauth derives each service's NATS permissions from what the service declares it
// publishes and consumes (service.Service: Publishes, Subscribes, Buckets, Streams), so that the
// server, not only the SDK, refuses a service that steps outside its spec: an anonymous or
// forged `nats pub` to OMNI_IN, a connector publishing another channel's events, a client
// deleting or purging a stream.
//
// Each service connects as its own nkey user (challenge–response: the server holds only public
// keys, a leaked server config grants nothing). Nkeys rather than decentralised JWT accounts:
// the permissions are a function of the build (the specs in the binary), so a static
// configuration generated from them (Config, `omnibus nats config`) is the whole truth, needs no
// account resolver, and is reviewed in a diff; JWT would pay off when operators issue and revoke
// users at run time across many accounts, which omnibus does not need.
//
// What a service may do, besides its declared subjects, is what the SDK's mechanisms need and
// no more (Grants lists them): JetStream API calls for the consumers of the streams its routes
// read and for its own key-value buckets, its dead letters (omni.dlq.<name>), its audit records
// (omni.audit.<name>), route alerts, and replies on its own inbox prefix (Inbox). No service
// may create, update, delete or purge an omnibus stream: the administrator provisions them.
package natsauth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// Permissions are the subject patterns a user may publish and subscribe to; the server refuses
// every other subject.
type Permissions struct {
	Publish, Subscribe []string
}

// Inbox is the reply-subject prefix of a service's connection (bus.Inbox).
func Inbox(name string) string { return bus.Inbox(name) }

// AlertBucket is the key-value bucket of route alert state every connector with vendor routes
// shares (pkg/alert).
const AlertBucket = "OMNI_ALERTS"

// ForService derives s's permissions from its spec.
func ForService(s service.Service) (Permissions, error) {
	var p Permissions
	pub := func(subjects ...string) { p.Publish = append(p.Publish, subjects...) }
	sub := func(subjects ...string) { p.Subscribe = append(p.Subscribe, subjects...) }

	// The JetStream API calls every client makes: account and stream info (stream lookup by
	// subject, the dead-letter gauge), never a change.
	pub("$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.NAMES")
	sub(Inbox(s.Name) + ".>")

	// What it declares it publishes: on a stream (the ack comes back on its inbox) or live.
	for _, r := range s.Publishes {
		pub(r.Subject, r.Subject+".>") // and its partitions (omni.in.example.message.7)
	}
	// Its dead letters, its audit records and its routes' alerts (pkg/bus, pkg/connector,
	// pkg/alert), and the redrives handed back to its consumers.
	pub(bus.SubjectDLQ(s.Name), "omni.audit."+s.Name, "omni.audit."+s.Name+".>",
		"omni.ops.alert.raised", "omni.ops.alert.resolved")
	read := map[string]bool{bus.StreamRedrive: true}
	for _, r := range s.Subscribes {
		if strings.HasPrefix(r.Subject, bus.LivePrefix) {
			sub(r.Subject)
			continue
		}
		st, ok := bus.StreamOf(r.Subject)
		if !ok {
			return p, fmt.Errorf("natsauth: %s consumes %s, which no omnibus stream captures and is not live", s.Name, r.Subject)
		}
		read[st] = true
	}
	for _, st := range s.ReadsStreams {
		read[st] = true
	}
	for _, st := range sortedKeys(read) {
		pub(consumerGrants(st)...)
	}
	// Key-value buckets and streams it owns: it creates them and reads and writes them.
	for _, b := range append([]string{AlertBucket}, s.Buckets...) {
		pub("$KV."+b+".>", "$JS.API.STREAM.CREATE.KV_"+b, "$JS.API.STREAM.UPDATE.KV_"+b, "$JS.API.STREAM.PURGE.KV_"+b)
		pub(consumerGrants("KV_" + b)...)
	}
	for _, st := range s.Streams {
		pub("$JS.API.STREAM.CREATE."+st.Name, "$JS.API.STREAM.UPDATE."+st.Name)
		pub(st.Subjects...)
		pub(consumerGrants(st.Name)...)
	}
	p.Publish, p.Subscribe = dedupe(p.Publish), dedupe(p.Subscribe)
	return p, nil
}

// consumerGrants are the JetStream API calls that read stream st through consumers (durable,
// ephemeral and ordered; create, fetch, info, pause, delete) or by sequence, and acknowledge.
func consumerGrants(st string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + st, "$JS.API.CONSUMER.CREATE." + st + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + st + ".>",
		"$JS.API.CONSUMER.INFO." + st + ".>", "$JS.API.CONSUMER.MSG.NEXT." + st + ".>",
		"$JS.API.CONSUMER.DELETE." + st + ".>", "$JS.API.CONSUMER.PAUSE." + st + ".>",
		"$JS.API.CONSUMER.NAMES." + st, "$JS.API.CONSUMER.LIST." + st,
		"$JS.API.STREAM.MSG.GET." + st, "$JS.API.DIRECT.GET." + st, "$JS.API.DIRECT.GET." + st + ".>",
		"$JS.ACK." + st + ".>", "$JS.FC." + st + ".>",
	}
}

// Reader is the operators' and downstream subscribers' read-only user: consumers on OMNI_DESK
// and OMNI_IN (durable or not), core subscriptions to their subjects, nothing published but
// the JetStream API calls reading needs and acks. Replies on the default _INBOX prefix (the
// nats CLI's).
func Reader() Permissions {
	p := Permissions{
		Publish:   []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"},
		Subscribe: []string{"_INBOX.>", Inbox("reader") + ".>", "omni.desk.>", "omni.in.>"},
	}
	for _, st := range []string{bus.StreamDesk, bus.StreamIn} {
		p.Publish = append(p.Publish, consumerGrants(st)...)
	}
	return p
}

// User is a generated nkey user: Seed is its secret, Public its identity on the server.
type User struct {
	Name   string
	Seed   []byte
	Public string
}

// NewUser generates an nkey user.
func NewUser(name string) (User, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return User{}, fmt.Errorf("natsauth: nkey for %s: %w", name, err)
	}
	return userOf(name, kp)
}

// UserFromSeed reads a user's seed (the contents of an .nk file).
func UserFromSeed(name string, seed []byte) (User, error) {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return User{}, fmt.Errorf("natsauth: %s seed: %w", name, err)
	}
	return userOf(name, kp)
}

func userOf(name string, kp nkeys.KeyPair) (User, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return User{}, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return User{}, err
	}
	return User{Name: name, Seed: seed, Public: pub}, nil
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Options are the connection options of a service connecting as u: its nkey and its inbox.
func (u User) Options() []nats.Option {
	return []nats.Option{u.Nkey(), nats.CustomInboxPrefix(Inbox(u.Name))}
}

// Nkey is the option that authenticates a connection as u (signing the server's nonce).
func (u User) Nkey() nats.Option {
	return nats.Nkey(u.Public, func(nonce []byte) ([]byte, error) {
		kp, err := nkeys.FromSeed(u.Seed)
		if err != nil {
			return nil, err
		}
		defer kp.Wipe()
		return kp.Sign(nonce)
	})
}
