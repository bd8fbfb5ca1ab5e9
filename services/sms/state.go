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

func openState(ctx context.Context, js jetstream.JetStream, ttl time.Duration, log *slog.Logger) (*state, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "sms connector: sends by command id and vendor id, inbound pushes seen",
		TTL:         ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("sms state bucket %s: %w", Bucket, err)
	}
	return &state{kv: kv, log: log}, nil
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

// seen reports whether the inbound event id was published before. A lookup error counts as
// not seen: JetStream's duplicate window still catches a quick retry.
func (s *state) seen(ctx context.Context, eventID string) bool {
	_, err := s.kv.Get(ctx, seenKey(eventID))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.WarnContext(ctx, "sms state lookup failed; relying on JetStream de-duplication", "err", err)
	}
	return err == nil
}

// markSeen records published inbound event ids; a failure only weakens de-duplication.
func (s *state) markSeen(ctx context.Context, ids []string) {
	for _, id := range ids {
		if _, err := s.kv.Put(ctx, seenKey(id), []byte{'1'}); err != nil {
			s.log.WarnContext(ctx, "sms state: could not mark push as seen", "err", err)
			return
		}
	}
}
