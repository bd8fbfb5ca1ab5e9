package alert

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// Store keeps alert state across restarts: a Monitor saves one value per route and loads them
// back when a new Monitor of the same service starts. KVStore is the one omnibus uses; tests
// without NATS may use any map. Implementations must be safe for concurrent use.
type Store interface {
	// Load returns the value of every key below prefix (prefix + ".", then one or more tokens),
	// by key. No such key, or no bucket yet, is an empty result, not an error.
	Load(ctx context.Context, prefix string) (map[string][]byte, error)
	// Save sets key to value.
	Save(ctx context.Context, key string, value []byte) error
}

// Bucket is the default JetStream key-value bucket of alert state.
const Bucket = "OMNI_ALERTS"

// KVOptions configure a KVStore. Zero fields take the defaults shown.
type KVOptions struct {
	// Bucket is the key-value bucket. Default Bucket ("OMNI_ALERTS").
	Bucket string
	// Replicas of the bucket, when this store is the one that creates it (an existing bucket is
	// used as it is). Default 1; 3 in a cluster.
	Replicas int
	// Storage of the bucket, when this store creates it. Default jetstream.FileStorage.
	Storage jetstream.StorageType
}

// KVStore is a Store on a JetStream key-value bucket. It creates the bucket on first use if it
// does not exist yet (one value per key, no expiry: a route's state is replaced, never aged out,
// so an alert raised before a long outage is still resolved after it). It is safe for
// concurrent use.
type KVStore struct {
	js jetstream.JetStream
	o  KVOptions
	mu sync.Mutex
	kv jetstream.KeyValue
}

// NewKVStore returns a store on js; it does no I/O. It returns ErrInvalidOptions for a bad
// bucket name or replica count.
func NewKVStore(js jetstream.JetStream, o KVOptions) (*KVStore, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: a JetStream handle is required", ErrInvalidOptions)
	}
	if o.Bucket == "" {
		o.Bucket = Bucket
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	switch {
	case !plainToken.MatchString(o.Bucket):
		return nil, fmt.Errorf("%w: Bucket %q must match %s", ErrInvalidOptions, o.Bucket, plainToken)
	case o.Replicas < 1 || o.Replicas > 5:
		return nil, fmt.Errorf("%w: Replicas must be between 1 and 5, got %d", ErrInvalidOptions, o.Replicas)
	}
	return &KVStore{js: js, o: o}, nil
}

// bucket returns the key-value bucket, creating it if it does not exist.
func (s *KVStore) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, s.o.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.o.Bucket,
			Description: "omnibus alert state (pkg/alert): vendor route windows and raised alerts, kept across restarts",
			History:     1,
			Replicas:    s.o.Replicas,
			Storage:     s.o.Storage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another process created it meanwhile
			kv, err = s.js.KeyValue(ctx, s.o.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("alert state bucket %s: %w", s.o.Bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// Load implements Store.
func (s *KVStore) Load(ctx context.Context, prefix string) (map[string][]byte, error) {
	entries, err := s.entries(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(entries))
	for k, e := range entries {
		out[k] = e.value
	}
	return out, nil
}

// Save implements Store.
func (s *KVStore) Save(ctx context.Context, key string, value []byte) error {
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("alert state %s: %w", key, err)
	}
	return nil
}

type kvEntry struct {
	value    []byte
	revision uint64
}

// entries returns the current entries below prefix with their revisions.
func (s *KVStore) entries(ctx context.Context, prefix string) (map[string]kvEntry, error) {
	kv, err := s.bucket(ctx)
	if err != nil {
		return nil, err
	}
	w, err := kv.Watch(ctx, prefix+".>", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("alert state %s: %w", prefix, err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]kvEntry{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("alert state %s: watcher closed", prefix)
			}
			if e == nil { // every current value has been delivered
				return out, nil
			}
			out[e.Key()] = kvEntry{value: e.Value(), revision: e.Revision()}
		case <-ctx.Done():
			return nil, fmt.Errorf("alert state %s: %w", prefix, ctx.Err())
		}
	}
}

// errConflict is returned by swap when the key changed since the revision given.
var errConflict = errors.New("alert state changed concurrently")

// swap sets key to value if its revision is still rev (0: if the key does not exist) and returns
// the new revision, or errConflict.
func (s *KVStore) swap(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	kv, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, value)
	} else {
		rev, err = kv.Update(ctx, key, value, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, fmt.Errorf("alert state %s: %w", key, errConflict)
	case err != nil:
		return 0, fmt.Errorf("alert state %s: %w", key, err)
	}
	return rev, nil
}

// get returns key's value and revision; a missing key is revision 0.
func (s *KVStore) get(ctx context.Context, key string) (kvEntry, error) {
	kv, err := s.bucket(ctx)
	if err != nil {
		return kvEntry{}, err
	}
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return kvEntry{}, nil
	case err != nil:
		return kvEntry{}, fmt.Errorf("alert state %s: %w", key, err)
	}
	return kvEntry{value: e.Value(), revision: e.Revision()}, nil
}

// plainToken is what a key-value bucket name, and a key token kept as it is, may be made of.
var plainToken = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// keyToken makes s one token of a key-value key: s itself when it is made of letters, digits,
// '_' and '-' (every omnibus service, vendor and op name), else "=" and s in unpadded base64url.
func keyToken(s string) string {
	if plainToken.MatchString(s) {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

var _ Store = (*KVStore)(nil)
