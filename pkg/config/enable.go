package config

import (
	"reflect"
	"strings"
)

// Optional services (connectors to a vendor) mark the variables that say "the operator means to
// run me" with the tag `enable:"true"`, typically the vendor credentials:
//
//	ClientID string `env:"SALESFORCE_CLIENT_ID" enable:"true" desc:"connected app consumer key (required)"`
//
// A process that runs what it has configuration for (the all-in-one) asks Configured before it
// starts such a service: when none of its enabling variables is set, the service is not
// configured and is left out, listed as disabled with the variables that would enable it; when
// any is set, the service is configured and Load and Validate must pass, so that a partly
// configured service refuses to start with a message naming what is missing or wrong.

// Enablers lists the variables of cfg's type tagged `enable:"true"`, in declaration order.
// A config without any has no notion of "not configured": it always runs.
func Enablers(cfg any) []string {
	var out []string
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	walkType(t, "", func(sf reflect.StructField, env string) {
		if sf.Tag.Get("enable") == "true" {
			out = append(out, env)
		}
	})
	return out
}

// Configured reports whether lookup sets (to something other than blanks) any enabling variable
// of cfg's type, and lists the enabling variables. A config without enabling variables is
// always configured.
func Configured(cfg any, lookup Lookup) (ok bool, enablers []string) {
	enablers = Enablers(cfg)
	if len(enablers) == 0 {
		return true, nil
	}
	for _, env := range enablers {
		if v, set := lookup(env); set && strings.TrimSpace(v) != "" {
			return true, enablers
		}
	}
	return false, enablers
}
