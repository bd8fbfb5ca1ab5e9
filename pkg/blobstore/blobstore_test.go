package blobstore

import (
	"context"
	"errors"
	"testing"
)

func TestOpenAndKey(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, base, err := Open(ctx, "file://"+dir+"?ignored=1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if base != "file://"+dir {
		t.Fatalf("base %q", base)
	}
	if err := b.WriteAll(ctx, "2026/12/07/call/caller.wav", []byte("RIFF"), nil); err != nil {
		t.Fatal(err)
	}
	key, err := Key(base, base+"/2026/12/07/call/caller.wav")
	if err != nil || key != "2026/12/07/call/caller.wav" {
		t.Fatalf("key %q %v", key, err)
	}
	if got, err := b.ReadAll(ctx, key); err != nil || string(got) != "RIFF" {
		t.Fatalf("read %q %v", got, err)
	}
	for _, bad := range []string{"file:///elsewhere/x.wav", base + "/../secret", base + "/a/../../b", base + "/", base + "//x", base + "/a/%2e%2e/b"} {
		if _, err := Key(base, bad); !errors.Is(err, ErrNotInBucket) {
			t.Errorf("Key(%q) = %v, want ErrNotInBucket", bad, err)
		}
	}
	m, mbase, err := Open(ctx, "mem://")
	if err != nil || mbase != "mem:/" && mbase != "mem://" {
		t.Logf("mem base %q", mbase)
	}
	if m != nil {
		_ = m.Close()
	}
}
