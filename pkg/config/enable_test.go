package config_test

import (
	"slices"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

type vendorCreds struct {
	Key    string `env:"KEY" enable:"true" desc:"vendor key"`
	Region string `env:"REGION" default:"cn" desc:"vendor region"`
}

type optional struct {
	Provider string      `env:"X_PROVIDER" enable:"true" desc:"the vendor"`
	Timeout  string      `env:"X_TIMEOUT" default:"1s" desc:"timeout"`
	Creds    vendorCreds `envprefix:"X_VENDOR_"`
}

func TestConfigured(t *testing.T) {
	t.Parallel()
	if got, want := config.Enablers(&optional{}), []string{"X_PROVIDER", "X_VENDOR_KEY"}; !slices.Equal(got, want) {
		t.Fatalf("Enablers = %v, want %v (tagged fields, nested ones with their prefix)", got, want)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"only settings that are not enablers", map[string]string{"X_TIMEOUT": "2s", "X_VENDOR_REGION": "us"}, false},
		{"an enabler set to blanks", map[string]string{"X_PROVIDER": "  "}, false},
		{"one enabler", map[string]string{"X_PROVIDER": "acme"}, true},
		{"a nested enabler", map[string]string{"X_VENDOR_KEY": "k"}, true},
	} {
		ok, enablers := config.Configured(&optional{}, env(tc.env))
		if ok != tc.want || len(enablers) != 2 {
			t.Errorf("%s: Configured = %v, %v; want %v and the two enablers", tc.name, ok, enablers, tc.want)
		}
	}
	// A config without enablers always runs.
	if ok, enablers := config.Configured(&cfg{}, env(nil)); !ok || enablers != nil {
		t.Errorf("config without enablers: Configured = %v, %v; want true, nil", ok, enablers)
	}
}
