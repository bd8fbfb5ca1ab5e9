package webchat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/webchatsim"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

// The simulated visitors of the sandbox, against the real connector.
func TestSimulatedVisitors(t *testing.T) {
	t.Parallel()
	for _, signed := range []bool{true, false} {
		t.Run(fmt.Sprintf("secret=%v", signed), func(t *testing.T) {
			t.Parallel()
			b := bustest.New(t, bus.WithLogger(logger()))
			in := startInstance(t, b, baseEnv())
			env := sim.NewEnv(http.NewServeMux(), in.URL+"/hooks", nil, 0, logger())
			opts := webchatsim.Options{Log: logger()}
			if signed {
				opts.Secret = secret
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			ch, err := webchatsim.New(ctx, in.URL, env, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ch.Close() })
			var _ sim.Channel = ch
			cust := sim.Population(3, 7)[1]

			if err := ch.Write(ctx, cust, "你好，我的快递到哪了？"); err != nil {
				t.Fatal(err)
			}
			if err := ch.Write(ctx, cust, "运单号 SF1234567890123"); err != nil {
				t.Fatal(err)
			}
			visitor := ch.VisitorID(cust)
			if signed && visitor != cust.Visitor {
				t.Fatalf("with the secret the customer connects as %s, got %s", cust.Visitor, visitor)
			}
			events := b.Events(t, bus.StreamIn, inFilter)
			if len(events) != 2 {
				t.Fatalf("%d events, want 2", len(events))
			}
			for i, e := range events {
				mustValid(t, e)
				var d struct {
					From       webchat.Identity
					Identities []webchat.Identity
				}
				_ = json.Unmarshal(e.Data(), &d)
				if d.From != (webchat.Identity{Kind: "web_visitor", Value: visitor}) {
					t.Errorf("event %d from %v, want visitor %s", i, d.From, visitor)
				}
				// The phone comes with the first message only; the unifier links it once.
				want := "[]"
				if i == 0 {
					want = fmt.Sprintf("[{phone %s}]", cust.Phone)
				}
				if fmt.Sprint(d.Identities) != want {
					t.Errorf("event %d identities %v, want %s", i, d.Identities, want)
				}
			}

			// An agent reply reaches the simulated visitor and is recorded under its customer's
			// visitor id; its receipts become delivered and read statuses.
			cmd := reply(t, b, visitor, "已为您查询，包裹明天送达")
			rctx, rcancel := context.WithTimeout(ctx, wait)
			defer rcancel()
			rec, err := env.WaitRecord(rctx, sim.Filter{Vendor: webchatsim.Vendor, Op: webchatsim.Op, To: cust.Visitor})
			if err != nil {
				t.Fatal(err)
			}
			var m struct{ Type, Text string }
			if err := json.Unmarshal(rec.Data, &m); err != nil || m.Text != "已为您查询，包裹明天送达" {
				t.Fatalf("recorded %s", rec.Data)
			}
			waitStatus(t, b, "webchat:status:"+cmd.ID()+":read")

			// The visitor leaves; a reply arrives meanwhile; the next message resumes and the
			// missed reply is recorded once.
			ch.Disconnect(cust)
			missed := reply(t, b, visitor, "还有其他问题吗？")
			waitStatus(t, b, "webchat:status:"+missed.ID()+":sent")
			if err := ch.Write(ctx, cust, "没有了，谢谢"); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, b, "webchat:status:"+missed.ID()+":read")
			if n := len(env.Records(sim.Filter{Vendor: webchatsim.Vendor, Op: webchatsim.Op, To: cust.Visitor})); n != 2 {
				t.Fatalf("%d replies recorded, want 2", n)
			}
		})
	}
}
