package canary

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// ErrInvalidPlan is wrapped by Parse and Start for a plan that cannot be applied.
var ErrInvalidPlan = errors.New("canary: invalid plan")

// Default rollback rule of a plan that names none.
const (
	// DefaultMargin: the candidate is rolled back when its failure ratio exceeds the baseline's
	// by more than 5 percentage points.
	DefaultMargin = 0.05
	// DefaultMinCalls: the rule applies once the candidate made at least 20 calls in the window.
	DefaultMinCalls = 20
)

// Plan is a rollout: which share of the eligible traffic goes to Candidate instead of Baseline,
// and when it is rolled back. It is the data of the rollout events and of the shared state.
type Plan struct {
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
	// Percent of the eligible traffic, by customer hash, that goes to Candidate: 0..100, with
	// up to two decimals (basis points).
	Percent float64 `json:"percent"`
	// Selectors restrict the eligible traffic; an empty list does not restrict.
	Selectors Selectors `json:"selectors"`
	// Margin is how far (a ratio, 0.05 = 5 points) the candidate's failure ratio may exceed the
	// baseline's before the rollout is rolled back.
	Margin float64 `json:"margin"`
	// MinCalls is how many calls of the candidate the window must hold for the rule to apply.
	MinCalls int `json:"min_calls"`
}

// Selectors restrict a plan to some traffic. A request is eligible when its channel is in
// Channels (or Channels is empty), its account in Accounts (or Accounts is empty) and, when
// Agents or Groups is set, its agent is in Agents or its agent group in Groups.
type Selectors struct {
	Channels []string `json:"channels,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	Groups   []string `json:"agent_groups,omitempty"`
	Agents   []string `json:"agents,omitempty"`
}

// Request is what Pick knows of one piece of traffic.
type Request struct {
	// Key is the customer the request is for (a customer id, or a channel identity such as
	// phone:+8613800138000): the same key always gets the same variant under one plan. A request
	// without a key goes to the baseline.
	Key     string
	Channel string
	Account string
	Agent   string
	Group   string
}

// eligible reports whether r falls under the plan's selectors.
func (s Selectors) eligible(r Request) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(s.Channels, r.Channel) || !in(s.Accounts, r.Account) {
		return false
	}
	if len(s.Agents) == 0 && len(s.Groups) == 0 {
		return true
	}
	return (r.Agent != "" && slices.Contains(s.Agents, r.Agent)) || (r.Group != "" && slices.Contains(s.Groups, r.Group))
}

// Bucket is the stable bucket 0..9999 of a customer key under a target and candidate: a key
// whose bucket is below Percent×100 goes to the candidate. Raising the share keeps every
// customer already on the candidate there; the rollout id does not enter the hash, so a
// restarted or re-set rollout picks the same customers.
func Bucket(target, candidate, key string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(target))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(candidate))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	// FNV's low bits mix poorly for short keys differing in their last bytes: fold the high half in.
	v := h.Sum64()
	v ^= v >> 29
	v *= 0xbf58476d1ce4e5b9
	v ^= v >> 32
	return int(v % 10000)
}

// picks reports whether r goes to the candidate under p for target.
func (p *Plan) picks(target string, r Request) bool {
	if p.Percent <= 0 || r.Key == "" || !p.Selectors.eligible(r) {
		return false
	}
	if p.Percent >= 100 {
		return true
	}
	return Bucket(target, p.Candidate, r.Key) < int(p.Percent*100+0.5)
}

var (
	listValue   = regexp.MustCompile(`^[^,;=\s]+$`)
	selectorKey = []string{"channel", "account", "group", "agent", "margin", "min_calls"}
)

// Off is the plan text that ends a rollout (in configuration: no rollout).
const Off = "off"

// Parse reads a plan in the configuration syntax (see the package doc), with baseline the
// variant the service uses without a rollout and variants every variant it can use. An empty
// text or "off" is no rollout: nil, nil. Errors wrap ErrInvalidPlan and say what to write.
func Parse(text, baseline string, variants []string) (*Plan, error) {
	text = strings.TrimSpace(text)
	if text == "" || strings.EqualFold(text, Off) {
		return nil, nil
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidPlan, text, fmt.Sprintf(format, a...))
	}
	clauses := strings.Split(text, ";")
	head := strings.TrimSpace(clauses[0])
	cand, share, ok := strings.Cut(head, ":")
	if !ok {
		return nil, bad("want <candidate>:<percent>%%, e.g. tencent:10%%")
	}
	p := &Plan{Baseline: baseline, Candidate: strings.TrimSpace(cand), Margin: DefaultMargin, MinCalls: DefaultMinCalls}
	switch {
	case !slices.Contains(variants, p.Candidate):
		return nil, bad("%q is not a variant (%s)%s", p.Candidate, strings.Join(variants, ", "), config.DidYouMean(p.Candidate, variants))
	case p.Candidate == baseline:
		return nil, bad("%q is already the baseline; name the other variant", p.Candidate)
	}
	pct, err := percent(share)
	if err != nil {
		return nil, bad("share %q: %v", share, err)
	}
	p.Percent = pct
	for _, c := range clauses[1:] {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		k, v, ok := strings.Cut(c, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, bad("clause %q: want <selector>=<value>[,<value>...]", c)
		}
		var list []string
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if !listValue.MatchString(item) {
				return nil, bad("clause %q: empty or malformed value %q", c, item)
			}
			list = append(list, item)
		}
		switch k {
		case "channel":
			p.Selectors.Channels = list
		case "account":
			p.Selectors.Accounts = list
		case "group":
			p.Selectors.Groups = list
		case "agent":
			p.Selectors.Agents = list
		case "margin":
			m, err := percent(v)
			if err != nil || m <= 0 {
				return nil, bad("margin %q: want a share in points, e.g. margin=5%%", v)
			}
			p.Margin = m / 100
		case "min_calls":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, bad("min_calls %q: want a whole number >= 1", v)
			}
			p.MinCalls = n
		default:
			return nil, bad("unknown clause %q (%s)%s", k, strings.Join(selectorKey, ", "), config.DidYouMean(k, selectorKey))
		}
	}
	return p, nil
}

// percent reads "10%", "12.5%" or "10" as a share in 0..100.
func percent(s string) (float64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	switch {
	case err != nil:
		return 0, errors.New("want a percentage such as 10%")
	case v < 0 || v > 100:
		return 0, errors.New("want 0% to 100%")
	}
	return float64(int(v*100+0.5)) / 100, nil
}

// String writes p in the configuration syntax; Parse reads it back.
func (p *Plan) String() string {
	if p == nil {
		return Off
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s%%", p.Candidate, strconv.FormatFloat(p.Percent, 'f', -1, 64))
	for _, s := range []struct {
		k string
		v []string
	}{{"channel", p.Selectors.Channels}, {"account", p.Selectors.Accounts}, {"group", p.Selectors.Groups}, {"agent", p.Selectors.Agents}} {
		if len(s.v) > 0 {
			fmt.Fprintf(&b, ";%s=%s", s.k, strings.Join(s.v, ","))
		}
	}
	if p.Margin != DefaultMargin {
		fmt.Fprintf(&b, ";margin=%s%%", strconv.FormatFloat(p.Margin*100, 'f', -1, 64))
	}
	if p.MinCalls != DefaultMinCalls {
		fmt.Fprintf(&b, ";min_calls=%d", p.MinCalls)
	}
	return b.String()
}
