// Package config loads a service's configuration from the environment into one struct whose
// every field states its variable, default and meaning in tags:
//
//	type Config struct {
//		NATSURL string        `env:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL"`
//		Timeout time.Duration `env:"TIMEOUT" default:"300ms" desc:"per-attempt vendor timeout"`
//	}
//
// Load fills the struct (defaults first, then the environment) and then calls Validate() when the
// struct has one. Describe lists the fields for docs/configuration.md's tables. An unknown
// variable with a known prefix is reported with a "did you mean" suggestion.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error Load returns for a bad value.
var ErrInvalid = errors.New("invalid configuration")

// Lookup reads one variable; os.LookupEnv fits.
type Lookup func(string) (string, bool)

// Field describes one configuration variable.
type Field struct {
	Env, Default, Desc, Type string
}

// Load fills cfg (a pointer to a struct) from defaults and then lookup. Nested structs are
// walked; an `envprefix` tag on a nested struct field prefixes its variables.
func Load(cfg any, lookup Lookup) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: config.Load needs a pointer to a struct, got %T", ErrInvalid, cfg)
	}
	if err := walk(v.Elem(), "", func(f reflect.Value, env, def string) error {
		raw, ok := lookup(env)
		if !ok {
			raw = def
		}
		if raw == "" && !ok {
			return nil
		}
		if err := set(f, raw); err != nil {
			return fmt.Errorf("%w: %s=%q: %w", ErrInvalid, env, raw, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if val, ok := cfg.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

// Describe lists the variables of cfg's type in declaration order.
func Describe(cfg any) []Field {
	var out []Field
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	walkType(v.Type(), "", func(sf reflect.StructField, env string) {
		out = append(out, Field{Env: env, Default: sf.Tag.Get("default"), Desc: sf.Tag.Get("desc"), Type: typeName(sf.Type)})
	})
	return out
}

// Unknown returns, for every variable in environ ("K=V" entries) that starts with one of
// prefixes but is not a field of cfg, an error with the closest known name.
func Unknown(cfg any, environ []string, prefixes ...string) []error {
	known := map[string]bool{}
	var names []string
	for _, f := range Describe(cfg) {
		known[f.Env] = true
		names = append(names, f.Env)
	}
	var errs []error
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) && !known[k] {
				errs = append(errs, fmt.Errorf("%w: unknown variable %s%s", ErrInvalid, k, DidYouMean(k, names)))
				break
			}
		}
	}
	return errs
}

func walk(v reflect.Value, prefix string, fn func(f reflect.Value, env, def string) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		f := v.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Time{}) && sf.Tag.Get("env") == "" {
			if err := walk(f, prefix+sf.Tag.Get("envprefix"), fn); err != nil {
				return err
			}
			continue
		}
		env := sf.Tag.Get("env")
		if env == "" {
			continue
		}
		if err := fn(f, prefix+env, sf.Tag.Get("default")); err != nil {
			return err
		}
	}
	return nil
}

func walkType(t reflect.Type, prefix string, fn func(sf reflect.StructField, env string)) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeOf(time.Time{}) && sf.Tag.Get("env") == "" {
			walkType(sf.Type, prefix+sf.Tag.Get("envprefix"), fn)
			continue
		}
		if env := sf.Tag.Get("env"); env != "" {
			fn(sf, prefix+env)
		}
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list"
	}
	return t.Kind().String()
}

func set(f reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	if f.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float64:
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return err
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported list type %s", f.Type())
		}
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported field type %s", f.Type())
	}
	return nil
}
