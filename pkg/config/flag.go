package config

import (
	"flag"
	"fmt"
	"strings"
)

// Flag values shared by the commands (omnibus replay, the bench).

// KeyValues is a repeatable name=value flag filling the map: `--set A=1 --set B=2`.
type KeyValues map[string]string

var _ flag.Value = KeyValues(nil)

func (p KeyValues) String() string {
	var kv []string
	for k, v := range p {
		kv = append(kv, k+"="+v)
	}
	return strings.Join(kv, ",")
}

// Set adds one name=value; it fails without a "=" or with an empty name.
func (p KeyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	p[strings.TrimSpace(k)] = strings.TrimSpace(v)
	return nil
}

// List returns a comma-separated, repeatable flag filling *list: `--tools crm,oms --tools ticket`.
// Its first use replaces the default held in *list; empty items are dropped.
func List(list *[]string) flag.Value { return &listFlag{list: list} }

type listFlag struct {
	list *[]string
	set  bool
}

func (l *listFlag) String() string {
	if l == nil || l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l *listFlag) Set(s string) error {
	if !l.set {
		*l.list, l.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.list = append(*l.list, v)
		}
	}
	return nil
}
