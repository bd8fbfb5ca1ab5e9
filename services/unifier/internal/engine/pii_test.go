package engine_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pgtest"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/engine"
	"github.com/omnibus-dev/omnibus/services/unifier/internal/store"
)

// The phone of the tests below, in the forms a leak could take.
const sealedPhone = "+8613912345678"

var phoneForms = []string{"13912345678", "139 1234 5678", "139-1234-5678", "1391234"}

func keysFor(t *testing.T) *pii.Keys {
	t.Helper()
	k, err := pii.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func setupSealed(t *testing.T, keys *pii.Keys) *bundle {
	t.Helper()
	b := &bundle{pool: pgtest.NewDB(t, pgtest.WithMigrations("unifier", store.Migrate))}
	b.en = newSealedEngine(b, keys)
	return b
}

func newSealedEngine(b *bundle, keys *pii.Keys) *engine.Engine {
	return engine.New(b.pool, engine.Config{IdleTimeout: 24 * time.Hour, DefaultRegion: "CN", PII: keys}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// leaks returns the rows of every table of the store (outbox included, unless skipped) that hold
// the phone in any common form.
func (b *bundle) leaks(t *testing.T, skip ...string) []string {
	t.Helper()
	skip = append([]string{}, skip...) // never NULL for ANY
	var out []string
	var queries []string
	for _, table := range b.strings(t, `SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND NOT tablename = ANY($1)`, skip) {
		queries = append(queries, `SELECT '`+table+`: ' || row_to_json(t)::text FROM `+table+` t`)
	}
	// row_to_json shows bytea in hex: read those columns (the outbox's) as text too.
	for _, c := range b.strings(t, `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'bytea' AND NOT table_name = ANY($1)`, skip) {
		table, col, _ := strings.Cut(c, ".")
		queries = append(queries, `SELECT '`+c+`: ' || encode(`+col+`, 'escape') FROM `+table)
	}
	for _, q := range queries {
		for _, row := range b.strings(t, q) {
			for _, f := range phoneForms {
				if strings.Contains(row, f) {
					out = append(out, row)
				}
			}
		}
	}
	return out
}

// TestSealedIdentities: with keys, the store keeps identities of personal kinds as blind index
// and mask with their ciphertext beside, nowhere in clear (outbox and tool results included),
// matches a phone however written to the one customer, and asks the CRM with a sealed query.
func TestSealedIdentities(t *testing.T) {
	t.Parallel()
	keys := keysFor(t)
	b := setupSealed(t, keys)
	b.apply(t, msg(t, "sms:1", "sms", t0, id{"phone", "139 1234 5678"}, id{"email", "Zhang.Wei@Example.cn"}))
	b.apply(t, msg(t, "wx:1", "wechatkf", t0.Add(time.Minute), id{"wechat_openid", "oSEALED_test_openid_1"}, id{"phone", sealedPhone}))
	if leaks := b.leaks(t); len(leaks) > 0 {
		t.Fatalf("the store holds the phone in clear:\n%s", strings.Join(leaks, "\n"))
	}
	if n := b.count(t, `SELECT count(*) FROM identities WHERE lower(value) LIKE '%zhang.wei%'`); n != 0 {
		t.Fatal("the store holds the e-mail address in clear")
	}
	key := identity.Indexed("phone", keys.BlindIndex("phone", sealedPhone), "+86 139****5678").Value
	if b.customerOf(t, "phone", key) != b.customerOf(t, "wechat_openid", "oSEALED_test_openid_1") {
		t.Fatal("the phone written two ways did not merge into one customer")
	}
	if n := b.count(t, `SELECT count(DISTINCT customer_id) FROM identities`); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	var sealed string
	if err := b.pool.QueryRow(context.Background(), `SELECT sealed FROM identities WHERE kind = 'phone'`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if got, err := keys.Decrypt(sealed); err != nil || got != sealedPhone {
		t.Fatalf("the sealed column opens to %q, %v", got, err)
	}
	if n := b.count(t, `SELECT count(*) FROM identities WHERE kind = 'wechat_openid' AND sealed IS NULL AND value = 'oSEALED_test_openid_1'`); n != 1 {
		t.Fatal("an openid is not stored as it came")
	}
	// The CRM lookups ask with the sealed identity.
	outbox := strings.Join(b.strings(t, `SELECT encode(events, 'escape') FROM outbox_batches`), "\n")
	if !strings.Contains(outbox, engine.TypeCRMLookupRequested) || !strings.Contains(outbox, pii.Prefix) || !strings.Contains(outbox, keys.BlindIndex("phone", sealedPhone)) {
		t.Fatalf("no sealed CRM lookup in the outbox:\n%s", outbox)
	}
	// A CRM answer's identities are sealed in the tool result the store keeps.
	b.apply(t, crmFound(t, "crm:1", b.customerOf(t, "phone", key), sealedPhone))
	if leaks := b.leaks(t); len(leaks) > 0 {
		t.Fatalf("the store holds the phone in clear after a CRM answer:\n%s", strings.Join(leaks, "\n"))
	}
}

// TestSealedRotation: after the AEAD keyset is rotated (the blind index keyset kept), a new
// event of a known phone joins its customer; the ciphertexts of both keys open.
func TestSealedRotation(t *testing.T) {
	t.Parallel()
	keys := keysFor(t)
	b := setupSealed(t, keys)
	b.apply(t, msg(t, "sms:1", "sms", t0, id{"phone", sealedPhone}))
	rotated, err := keys.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	b.en = newSealedEngine(b, rotated)
	b.apply(t, msg(t, "sms:2", "sms", t0.Add(time.Minute), id{"phone", "139-1234-5678"}, id{"email", "li@example.cn"}))
	if n := b.count(t, `SELECT count(DISTINCT customer_id) FROM identities`); n != 1 {
		t.Fatalf("%d customers after rotation, want 1", n)
	}
	seen := map[uint32]bool{}
	for _, s := range b.strings(t, `SELECT sealed FROM identities ORDER BY first_seen`) {
		if _, err := rotated.Decrypt(s); err != nil {
			t.Fatalf("a ciphertext does not open after rotation: %v", err)
		}
		kid, _ := pii.KeyIDOf(s)
		seen[kid] = true
	}
	if !seen[keys.PrimaryKeyID()] || !seen[rotated.PrimaryKeyID()] {
		t.Fatalf("want ciphertexts of both keys, got key ids %v", seen)
	}
}

// TestSealClear: a store written in clear (before personal data was sealed) is converted in
// place at start; the next event of a known phone still joins its customer, and merges recorded
// in clear keep working.
func TestSealClear(t *testing.T) {
	t.Parallel()
	keys := keysFor(t)
	clear := setup(t)
	clear.apply(t, msg(t, "sms:1", "sms", t0, id{"phone", sealedPhone}))
	clear.apply(t, msg(t, "wx:1", "wechatkf", t0.Add(time.Minute), id{"wechat_openid", "oCLEAR_openid"}))
	clear.apply(t, msg(t, "wx:2", "wechatkf", t0.Add(2*time.Minute), id{"wechat_openid", "oCLEAR_openid"}, id{"phone", sealedPhone}))
	if len(clear.leaks(t)) == 0 {
		t.Fatal("the clear store does not hold the phone: the test proves nothing")
	}
	ctx := context.Background()
	n, err := store.SealClear(ctx, clear.pool, keys)
	if err != nil || n == 0 {
		t.Fatalf("SealClear = %d, %v", n, err)
	}
	// The outbox rows written in clear go out through the relay's bus, which seals them, and are
	// deleted: SealClear leaves them.
	if leaks := clear.leaks(t, "outbox_batches"); len(leaks) > 0 {
		t.Fatalf("clear rows left:\n%s", strings.Join(leaks, "\n"))
	}
	if n, err := store.SealClear(ctx, clear.pool, keys); err != nil || n != 0 {
		t.Fatalf("a second SealClear = %d, %v", n, err)
	}
	b := &bundle{pool: clear.pool}
	b.en = newSealedEngine(b, keys)
	b.apply(t, msg(t, "sms:3", "sms", t0.Add(3*time.Minute), id{"phone", "13912345678"}))
	key := identity.Indexed("phone", keys.BlindIndex("phone", sealedPhone), "+86 139****5678").Value
	if got := b.count(t, `SELECT count(*) FROM messages WHERE identity_value = $1`, key); got != 2 {
		t.Fatalf("%d messages from the phone under its sealed key, want 2 (1 converted + 1 new)", got)
	}
	if got := b.count(t, `SELECT count(*) FROM customers c JOIN identities i ON i.customer_id = c.id WHERE i.kind = 'phone' AND i.value = $1 AND c.merged_into IS NULL`, key); got != 1 {
		t.Fatalf("the sealed phone is not on a live customer (%d)", got)
	}
	if got := b.count(t, `SELECT count(*) FROM customers WHERE created_by_event = 'sms:3'`); got != 0 {
		t.Fatal("the phone written after the conversion made a new customer")
	}
}

// TestSealedEventsWithoutKeys: an engine that holds no keys matches sealed identities by the
// blind index they carry, as the engine with the keys would.
func TestSealedEventsWithoutKeys(t *testing.T) {
	t.Parallel()
	keys := keysFor(t)
	x := pii.NewEvents(keys)
	b := setup(t)
	for i, v := range []string{"139 1234 5678", sealedPhone} {
		d := msg(t, "sms:"+string(rune('1'+i)), "sms", t0.Add(time.Duration(i)*time.Minute), id{"phone", v})
		data, err := x.Seal(d.Event.Data())
		if err != nil {
			t.Fatal(err)
		}
		d.Event.DataEncoded = data // what a bus with the keys publishes
		d.Event.SetExtension(event.ExtPartitionKey, x.SealPartitionKey(event.PartitionKey(d.Event)))
		b.apply(t, d)
	}
	key := identity.Indexed("phone", keys.BlindIndex("phone", sealedPhone), "+86 139****5678").Value
	if n := b.count(t, `SELECT count(*) FROM identities WHERE kind = 'phone' AND value = $1`, key); n != 1 {
		t.Fatalf("%d identities under the blind index, want 1", n)
	}
	if n := b.count(t, `SELECT count(DISTINCT customer_id) FROM messages`); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	if leaks := b.leaks(t); len(leaks) > 0 {
		t.Fatalf("clear phone:\n%s", strings.Join(leaks, "\n"))
	}
}

// crmFound is a CRM lookup answer for customer that links phone and an e-mail address.
func crmFound(t *testing.T, eventID, customer, phone string) bus.Delivery {
	t.Helper()
	data := map[string]any{"customer_id": customer, "query": map[string]string{"kind": "phone", "value": phone},
		"provider": "salesforce", "found": true,
		"identities": []map[string]string{{"kind": "phone", "value": phone}, {"kind": "email", "value": "crm.only@example.cn"}},
		"profile":    map[string]string{"city": "上海"}}
	e, err := event.New(engine.TypeCRMLookupCompleted, "/connectors/crm", data, event.WithID(eventID), event.WithTime(t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	return bus.Delivery{Event: e, Subject: "omni.tool.crm.lookup.completed"}
}
