package sms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
)

// Bucket is the JetStream key-value bucket where the connector remembers, for SMS_STATE_TTL:
//
//	cmd.<send command id>          → the vendor id of an accepted send (a redelivered command is
//	                                 not sent twice)
//	vid.<provider>.<vendor id>     → the send command a receipt is about (Tencent's status
//	                                 callback carries only the SerialNo, Aliyun's receipt only
//	                                 BizId and OutId)
//	in.<event id>                  → an inbound push already published (vendors re-push for hours,
//	                                 past JetStream's two-minute duplicate window)
//
// Keys are base64url-encoded ids (vendor ids contain ^ and :, which keys cannot).
const Bucket = "omnibus_sms"

type state struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger
}

// sentRecord is what a cmd.* and a vid.* key hold.
type sentRecord struct {
	MessageID string    `json:"message_id"`
	Provider  string    `json:"provider"`
	VendorID  string    `json:"vendor_id"`
	To        string    `json:"to"`
	At        time.Time `json:"at"`
}

// openState declares the bucket on kvs (the connector's Runtime); js stores a push's marks in
// atomic batches (connector.PutMany), which the KeyValue handle cannot.
func openState(ctx context.Context, kvs bus.KeyValues, js jetstream.JetStream, ttl time.Duration, log *slog.Logger) (*state, error) {
	kv, err := kvs.KeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "sms connector: sends by command id and vendor id, inbound pushes seen",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("sms state bucket %s: %w", Bucket, err)
	}
	// A push's in.* marks are then stored in one write per 1000 (connector.PutMany): on a server
	// that fsyncs every write, 5,000 marks put one by one took 6–9 s (BenchmarkPush5000).
	if err := connector.AllowAtomicPuts(ctx, js, kv); err != nil {
		log.WarnContext(ctx, "sms state bucket without atomic batches: a push's marks are stored one write each", "bucket", Bucket, "err", err)
	}
	return &state{js: js, kv: kv, log: log}, nil
}

func key(prefix, id string) string { return prefix + base64.RawURLEncoding.EncodeToString([]byte(id)) }

func cmdKey(id string) string                 { return key("cmd.", id) }
func vidKey(provider, vendorID string) string { return key("vid."+provider+".", vendorID) }
func seenKey(eventID string) string           { return key("in.", eventID) }

// get reads a record; found is false when the key is absent. Other errors are returned.
func (s *state) get(ctx context.Context, k string) (rec sentRecord, found bool, err error) {
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return sentRecord{}, false, nil
	}
	if err != nil {
		return sentRecord{}, false, err
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return sentRecord{}, false, fmt.Errorf("state %s: %w", k, err)
	}
	return rec, true, nil
}

// remember stores an accepted send under its command id and its vendor id.
func (s *state) remember(ctx context.Context, rec sentRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, cmdKey(rec.MessageID), b); err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, vidKey(rec.Provider, rec.VendorID), b)
	return err
}

// getMany reads the records of keys in one batched lookup (connector.GetMany): found[i] is false
// when keys[i] is absent or its lookup failed; err says which failed.
func (s *state) getMany(ctx context.Context, keys []string) (recs []sentRecord, found []bool, err error) {
	entries, err := connector.GetMany(ctx, s.js, s.kv, keys)
	recs, found = make([]sentRecord, len(keys)), make([]bool, len(keys))
	for i, e := range entries {
		if e == nil {
			continue
		}
		if jerr := json.Unmarshal(e.Value(), &recs[i]); jerr != nil {
			err = errors.Join(err, fmt.Errorf("state %s: %w", keys[i], jerr))
			continue
		}
		found[i] = true
	}
	return recs, found, err
}

// seenMany reports, for each inbound event id, whether it was published before, in one batched
// lookup. A failed lookup counts as not seen: JetStream's duplicate window still catches a quick
// retry.
func (s *state) seenMany(ctx context.Context, eventIDs []string) []bool {
	keys := make([]string, len(eventIDs))
	for i, id := range eventIDs {
		keys[i] = seenKey(id)
	}
	entries, err := connector.GetMany(ctx, s.js, s.kv, keys)
	if err != nil {
		s.log.WarnContext(ctx, "sms state lookup failed; relying on JetStream de-duplication", "err", err)
	}
	seen := make([]bool, len(eventIDs))
	for i, e := range entries {
		seen[i] = e != nil
	}
	return seen
}

// markSeen records published inbound event ids, in batches (connector.PutMany); a failure only
// weakens de-duplication.
func (s *state) markSeen(ctx context.Context, eventIDs []string) {
	puts := make([]connector.KVPut, len(eventIDs))
	for i, id := range eventIDs {
		puts[i] = connector.KVPut{Key: seenKey(id), Value: []byte{'1'}}
	}
	if err := connector.PutMany(ctx, s.js, s.kv, puts); err != nil {
		s.log.WarnContext(ctx, "sms state: could not mark pushes as seen", "err", err)
	}
}
