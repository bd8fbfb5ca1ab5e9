package natsembed_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/natsembed"
)

func TestParseSync(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in       string
		interval time.Duration
		always   bool
		wantErr  bool
	}{
		{"", 0, true, false}, {"always", 0, true, false}, {" Always ", 0, true, false},
		{"2m", 2 * time.Minute, false, false}, {"500ms", 500 * time.Millisecond, false, false},
		{"never", 0, false, true}, {"-1s", 0, false, true}, {"0s", 0, false, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			d, always, err := natsembed.ParseSync(tc.in)
			if tc.wantErr {
				if !errors.Is(err, natsembed.ErrInvalidSync) {
					t.Fatalf("want ErrInvalidSync, got %v", err)
				}
				return
			}
			if err != nil || d != tc.interval || always != tc.always {
				t.Fatalf("got %s %v %v", d, always, err)
			}
		})
	}
}

func TestStartAndShutdownRemovesTempDir(t *testing.T) {
	t.Parallel()
	s, err := natsembed.Start(natsembed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.JetStreamConfig().StoreDir
	nc, err := s.Connect("t")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := nc.JetStream()
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	nc.Close()
	s.Shutdown()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("store dir %s left behind (%v)", dir, err)
	}
}
