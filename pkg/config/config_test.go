package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

type sub struct {
	Secret string `env:"SECRET" desc:"app secret"`
}

type cfg struct {
	Addr    string        `env:"HTTP_ADDR" default:"127.0.0.1:8080" desc:"listen address"`
	Timeout time.Duration `env:"TIMEOUT" default:"300ms" desc:"timeout"`
	Workers int           `env:"WORKERS" default:"4"`
	Debug   bool          `env:"DEBUG" default:"false"`
	Tags    []string      `env:"TAGS" default:"a,b"`
	Vendor  sub           `envprefix:"VENDOR_"`
}

func (c *cfg) Validate() error {
	if c.Workers < 1 {
		return errors.New("WORKERS must be >= 1")
	}
	return nil
}

func env(m map[string]string) config.Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(*cfg) bool
		wantErr string
	}{
		{"defaults", nil, func(c *cfg) bool {
			return c.Addr == "127.0.0.1:8080" && c.Timeout == 300*time.Millisecond && c.Workers == 4 && len(c.Tags) == 2
		}, ""},
		{"overrides", map[string]string{"TIMEOUT": "2s", "DEBUG": "true", "VENDOR_SECRET": "s3", "TAGS": " x , ,y"}, func(c *cfg) bool {
			return c.Timeout == 2*time.Second && c.Debug && c.Vendor.Secret == "s3" && strings.Join(c.Tags, "|") == "x|y"
		}, ""},
		{"bad duration", map[string]string{"TIMEOUT": "fast"}, nil, `TIMEOUT="fast"`},
		{"validate", map[string]string{"WORKERS": "0"}, nil, "WORKERS must be >= 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c cfg
			err := config.Load(&c, env(tc.env))
			if tc.wantErr != "" {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil || !tc.check(&c) {
				t.Fatalf("err %v, cfg %+v", err, c)
			}
		})
	}
}

func TestDescribeAndUnknown(t *testing.T) {
	t.Parallel()
	fields := config.Describe(&cfg{})
	if len(fields) != 6 || fields[5].Env != "VENDOR_SECRET" || fields[1].Type != "duration" {
		t.Fatalf("%+v", fields)
	}
	errs := config.Unknown(&cfg{}, []string{"HTTP_ADR=x", "PATH=/bin", "TIMEOUT=1s"}, "HTTP_", "TIMEOUT")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "did you mean HTTP_ADDR?") {
		t.Fatalf("%v", errs)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	providers := []string{"tencent", "aliyun"}
	for name, tc := range map[string]struct {
		s     string
		known []string
		want  string
	}{
		"one letter off":          {"alyun", providers, "aliyun"},
		"transposed":              {"tencnet", providers, "tencent"},
		"case does not count":     {"Salesforse", []string{"salesforce"}, "salesforce"},
		"variable":                {"SMS_ALIYUN_TEMPLATE_COD", []string{"SMS_ALIYUN_TEMPLATE_CODE", "SMS_ALIYUN_SIGN_NAME"}, "SMS_ALIYUN_TEMPLATE_CODE"},
		"too far":                 {"twilio", providers, ""},
		"short names stay unsaid": {"ab", []string{"jira"}, ""},
		"exact is no suggestion":  {"jira", []string{"jira"}, ""},
		"ties go to the first":    {"ap-x", []string{"ap-z", "ap-y"}, "ap-y"},
		"no names":                {"anything", nil, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := config.Suggest(tc.s, tc.known); got != tc.want {
				t.Fatalf("Suggest(%q) = %q, want %q", tc.s, got, tc.want)
			}
		})
	}
	if got := config.DidYouMean("jria", []string{"jira", "zendesk"}); got != " (did you mean jira?)" {
		t.Fatalf("DidYouMean = %q", got)
	}
	if got := config.DidYouMean("freshdesk", []string{"jira", "zendesk"}); got != "" {
		t.Fatalf("DidYouMean = %q, want none", got)
	}
}
