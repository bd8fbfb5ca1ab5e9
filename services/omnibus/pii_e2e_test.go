package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/identity"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/example"
)

// TestNoClearPersonalData runs the all-in-one as a subprocess (the aioRig of restart_test.go),
// sends messages from phones through the example webhook (written in several spellings) and a
// sandbox customer's WeChat and SMS, rotates the personal-data keyset mid-traffic with
// `omnibus keys rotate` and a restart, and sends more. Then:
//
//   - identity matching went on across the rotation: each phone is one customer, whatever key
//     sealed its events;
//   - a consumer without the keyset (a plain bus client, what `nats sub` or an analyst's replay
//     sees) finds no clear phone in any event of any stream, and every sealed value, under the
//     old key or the new, opens with the rotated keyset;
//   - the JetStream store files, pg_dump of the database, the process's logs and /metrics hold
//     none of the phones in any common format (E.164, national, spaced, dashed) — masked forms
//     (+86 137****2345) only.
func TestNoClearPersonalData(t *testing.T) {
	t.Parallel()
	rig := newAIORig(t)
	rig.start()
	rig.waitReady()
	base := "http://" + rig.httpAddr

	var people struct {
		Customers []struct {
			ID    int
			Phone string
		}
	}
	bustest.WaitFor(t, 30*time.Second, "the sandbox's customers", func() bool {
		return apiCall(t, base, "GET", "/sandbox/_admin/customers", "", nil, &people) == 200 && len(people.Customers) >= 5
	})
	sandboxPhone := people.Customers[4].Phone
	const p1, p2 = "+8613755512345", "+8613755567890"
	phones := []string{p1, p2, sandboxPhone}

	var logs strings.Builder
	send := func(id, from string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"id": id, "from": from, "text": "pii traffic " + id, "sent_at": time.Now().UTC()})
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, base+"/hooks/example/messages", bytes.NewReader(body))
		req.Header.Set("X-Example-Timestamp", ts)
		req.Header.Set("X-Example-Signature", example.Sign(rig.secret, ts, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook %s: %d %s", id, resp.StatusCode, b)
		}
	}
	write := func(channel string) {
		t.Helper()
		if code := apiCall(t, base, "POST", "/sandbox/_admin/customers/5/write", "", map[string]string{"channel": channel, "text": "我的快递到哪了"}, nil); code != 200 {
			t.Fatalf("sandbox %s write: %d", channel, code)
		}
	}

	// Before the rotation: p1 written three ways, the sandbox customer on WeChat and SMS.
	for i, from := range []string{p1, "137 5551 2345", "137-5551-2345"} {
		send(fmt.Sprintf("pii-a%d", i), from)
	}
	write("wechatkf")
	write("sms")
	rig.settle()
	before := rig.keys()

	// Rotate the keyset while the process runs, then restart it to pick the new primary up.
	cmd := exec.Command(rig.bin, "keys", "rotate")
	cmd.Env = append(os.Environ(), "OMNIBUS_DATA_DIR="+rig.dir, "PII_KEYSET_FILE=", "PII_KEK_URI=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "new primary key") {
		t.Fatalf("omnibus keys rotate: %v\n%s", err, out)
	}
	send("pii-b0", p1) // sealed with the old primary: the process has not reread the file
	rig.settle()
	logs.WriteString(rig.output())
	rig.stop()
	rig.start()
	rig.waitReady()
	after := rig.keys()
	if after.PrimaryKeyID() == before.PrimaryKeyID() {
		t.Fatal("the rotation did not change the primary key")
	}
	for i, from := range []string{"+86 137 5551 2345", p2} {
		send(fmt.Sprintf("pii-c%d", i), from)
	}
	write("sms")
	rig.settle()

	// Matching across the rotation: p1's five messages (three before, one during, one after)
	// are one customer's, under one stored key.
	db := rig.pool(rig.pgURL("postgres"))
	ctx := context.Background()
	key := identity.Indexed("phone", after.BlindIndex("phone", p1), identity.Mask(identity.ID{Kind: "phone", Value: p1})).Value
	var msgs, custs int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT customer_id) FROM messages WHERE direction = 'inbound' AND identity_kind = 'phone' AND identity_value = $1`, key).Scan(&msgs, &custs); err != nil {
		t.Fatal(err)
	}
	if msgs != 5 || custs != 1 {
		t.Fatalf("p1: %d messages of %d customers under its sealed key, want 5 of 1", msgs, custs)
	}
	var live int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM customers WHERE merged_into IS NULL`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if live != 3 {
		t.Errorf("%d customers, want 3 (p1, p2, the sandbox's customer)", live)
	}

	// What a consumer without the keyset reads: sealed values only, each opening with the
	// rotated keyset, under both keys.
	plain := rig.bus()
	keyIDs := map[uint32]int{}
	tokenRE := regexp.MustCompile(`pii:v2:[A-Za-z0-9_-]+`)
	for _, stream := range []string{bus.StreamIn, bus.StreamOut, bus.StreamTool, bus.StreamDesk} {
		err := plain.Replay(ctx, bus.ReplayOptions{Stream: stream}, func(d bus.Delivery, derr error) error {
			if derr != nil {
				return nil
			}
			data := string(d.Event.Data()) + " " + fmt.Sprint(d.Event.Extensions())
			if leak := findPhones(data, phones); leak != "" {
				t.Errorf("%s event %s (%s) holds %q in clear: %s", stream, d.Event.ID(), d.Event.Type(), leak, data)
			}
			for _, tok := range tokenRE.FindAllString(data, -1) {
				if _, err := after.Decrypt(tok); err != nil {
					t.Errorf("%s event %s: a sealed value does not open after the rotation: %v", stream, d.Event.ID(), err)
				}
				id, _ := pii.KeyIDOf(tok)
				keyIDs[id]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if keyIDs[before.PrimaryKeyID()] == 0 || keyIDs[after.PrimaryKeyID()] == 0 {
		t.Errorf("want events sealed under the old and the new key, got key ids %v", keyIDs)
	}

	// /metrics, pg_dump, the logs, the JetStream store files.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if leak := findPhones(string(metrics), phones); leak != "" {
		t.Errorf("/metrics holds %q", leak)
	}
	dump := pgDump(t, rig.pgURL("postgres"))
	if !strings.Contains(dump, "+86 137****2345") {
		t.Errorf("pg_dump lacks p1's mask: the dump proves nothing\n%.2000s", dump)
	}
	for _, line := range strings.Split(dump, "\n") {
		if leak := findPhones(line, phones); leak != "" {
			t.Errorf("pg_dump holds %q: %.500s", leak, line)
		}
	}
	rig.stop()
	logs.WriteString(rig.output())
	for _, line := range strings.Split(logs.String(), "\n") {
		if leak := findPhones(line, phones); leak != "" {
			t.Errorf("the logs hold %q: %.500s", leak, line)
		}
	}
	var blocks int
	_ = filepath.WalkDir(filepath.Join(rig.dir, "nats"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if strings.HasSuffix(p, ".blk") {
			blocks++
		}
		if leak := findPhones(string(b), phones); leak != "" {
			rel, _ := filepath.Rel(rig.dir, p)
			t.Errorf("JetStream file %s holds %q", rel, leak)
		}
		return nil
	})
	if blocks == 0 {
		t.Fatal("no JetStream message blocks in the data dir: the scan proves nothing")
	}
}

// findPhones returns the first of phones found in s in a common written form, or "".
func findPhones(s string, phones []string) string {
	for _, p := range phones {
		national := strings.TrimPrefix(p, "+86")
		if len(national) != 11 {
			continue
		}
		for _, f := range []string{national, national[:3] + " " + national[3:7] + " " + national[7:], national[:3] + "-" + national[3:7] + "-" + national[7:]} {
			if strings.Contains(s, f) {
				return f
			}
		}
	}
	return ""
}

// pgDump is pg_dump's output of the database at url (the binary of the installed server).
func pgDump(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("pg_dump")
	if err != nil {
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
		if len(found) == 0 {
			t.Skip("needs pg_dump")
		}
		bin = found[len(found)-1]
	}
	out, err := exec.Command(bin, "--no-owner", "--dbname", url).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	return string(out)
}
