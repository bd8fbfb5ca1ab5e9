package desk_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// TestSealedReplyAddress: with keys, the desk keeps a customer's phone sealed (blind index and
// mask, ciphertext beside), replies to it, and the send command in the log carries it sealed;
// addresses kept in clear before are sealed at start.
func TestSealedReplyAddress(t *testing.T) {
	t.Parallel()
	keys, err := pii.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	sealer := pii.NewEvents(keys)
	b := bustest.New(t, bus.WithLogger(quiet()), bus.WithDataProtector(sealer))
	d := startDeskWith(t, b, map[string]string{"DESK_ASSIGN": "false"}, keys)
	w := newWorld(t, b)
	w.customer("张伟", nil)
	w.opened("sms")
	const phone = "+8613912345678"
	w.inbound("sms", "phone", phone, "还没收到", w.t0.Add(time.Second), "sms")
	bustest.WaitFor(t, 15*time.Second, "the reply address", func() bool {
		var cu store.Customer
		d.call(t, d.token, "GET", "/api/customers/"+w.cust, nil, &cu)
		return len(cu.ReplyChannels) == 1
	})
	ctx := context.Background()
	rows, _ := d.pool.Query(ctx, `SELECT row_to_json(a)::text FROM desk.addresses a`)
	stored, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(stored) != 1 || strings.Contains(stored[0], "13912345678") || !strings.Contains(stored[0], keys.BlindIndex("phone", phone)) {
		t.Fatalf("desk.addresses: %v", stored)
	}
	if code := d.call(t, d.token, "POST", "/api/conversations/"+w.conv+"/reply", map[string]any{"text": "今天派送"}, nil); code != 202 {
		t.Fatalf("reply: %d", code)
	}
	waitCount(t, b, bus.StreamOut, "omni.out.sms.message.send", 1)
	send := lastEvent(t, b, bus.StreamOut, "omni.out.sms.message.send")
	if strings.Contains(string(send.Data()), "13912345678") {
		t.Fatalf("the send command holds the phone in clear: %s", send.Data())
	}
	opened, err := sealer.Open(send.Data())
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct{ To struct{ Kind, Value string } }
	if err := json.Unmarshal(opened, &cmd); err != nil || cmd.To.Kind != "phone" || cmd.To.Value != phone {
		t.Fatalf("the send command opens to %s (%v)", opened, err)
	}

	// An address written in clear (before the desk sealed) is sealed by SealAddresses, and
	// replying to it still works.
	if _, err := d.pool.Exec(ctx, `UPDATE desk.addresses SET value = $1, sealed = NULL`, phone); err != nil {
		t.Fatal(err)
	}
	st := store.New(d.pool)
	st.SealWith(keys)
	if n, err := st.SealAddresses(ctx); err != nil || n != 1 {
		t.Fatalf("SealAddresses = %d, %v", n, err)
	}
	a, err := st.ReplyAddress(ctx, w.conv, "sms")
	if err != nil || a.Value != phone {
		t.Fatalf("ReplyAddress after sealing = %+v, %v", a, err)
	}
	if _, err := store.New(d.pool).ReplyAddress(ctx, w.conv, "sms"); err == nil {
		t.Fatal("a store without keys replied to a sealed address")
	}
}
