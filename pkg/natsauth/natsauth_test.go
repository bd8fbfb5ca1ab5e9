package natsauth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/natsauth"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// A service connected as its own user, with the permissions ForService derives from its spec,
// does what it declares — waits for the streams the administrator provisions, publishes its
// subjects, consumes its routes, keeps its bucket — and the real server refuses the rest.
func TestServiceHeldToItsSpec(t *testing.T) {
	t.Parallel()
	svc := service.Service{
		Name:       "parcel",
		Publishes:  []service.Route{{Subject: "omni.tool.parcel.result", Type: "t"}},
		Subscribes: []service.Route{{Subject: "omni.tool.parcel.requested", Type: "t"}},
		Buckets:    []string{"parcel_cache"},
	}
	perms, err := natsauth.ForService(svc)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := natsauth.NewUser("admin")
	if err != nil {
		t.Fatal(err)
	}
	user, err := natsauth.NewUser(svc.Name)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Start(natsembed.Options{Users: []natsembed.User{
		{Name: "admin", Nkey: admin.Public, All: true},
		{Name: svc.Name, Nkey: user.Public, Publish: perms.Publish, Subscribe: perms.Subscribe},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The service starts first and waits for the streams; the administrator provisions them.
	type dialed struct {
		nc  *nats.Conn
		c   *bus.Client
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		nc, c, err := bus.Dial(ctx, ns.ClientURL(), svc.Name, bus.WithNATSOptions(append(user.Options(),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...), bus.WithoutProvision(), bus.WithLogger(slog.New(slog.DiscardHandler)))
		ch <- dialed{nc, c, err}
	}()
	anc, ac, err := bus.Dial(ctx, ns.ClientURL(), "admin", bus.WithNATSOptions(admin.Options()...))
	if err != nil {
		t.Fatalf("the administrator provisioning: %v", err)
	}
	defer anc.Close()
	d := <-ch
	if d.err != nil {
		t.Fatalf("the service waiting for the streams: %v", d.err)
	}
	defer d.nc.Close()
	js := d.c.JetStream()

	if _, err := js.Publish(ctx, "omni.tool.parcel.result", []byte("{}")); err != nil {
		t.Errorf("publishing its declared subject: %v", err)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	for _, subject := range []string{"omni.in.forged.message", "omni.tool.crm.lookup.result"} {
		c, done := short()
		if _, err := js.Publish(c, subject, []byte("{}")); err == nil {
			t.Errorf("published %s outside its spec", subject)
		}
		done()
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamTool, jetstream.ConsumerConfig{Durable: svc.Name,
		FilterSubject: "omni.tool.parcel.requested", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Errorf("consuming its declared route: %v", err)
	}
	c, done := short()
	if _, err := js.CreateOrUpdateConsumer(c, bus.StreamDesk, jetstream.ConsumerConfig{Durable: svc.Name, AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
		t.Error("created a consumer on OMNI_DESK, which it does not consume")
	}
	done()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "parcel_cache"}); err != nil {
		t.Errorf("its declared bucket: %v", err)
	}
	c, done = short()
	if _, err := js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "someone_elses"}); err == nil {
		t.Error("created a bucket it does not declare")
	}
	done()
	c, done = short()
	if err := js.DeleteStream(c, bus.StreamIn); err == nil {
		t.Error("deleted OMNI_IN")
	}
	done()
	if _, err := ac.JetStream().Stream(ctx, bus.StreamIn); err != nil {
		t.Errorf("OMNI_IN after the attempts: %v", err)
	}
}
