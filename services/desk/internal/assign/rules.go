// Package assign routes conversations to agents: the rules (pure functions, table-tested) and
// the assigner that applies them to the desk's store and publishes each decision as an
// omni.desk.assignment.changed event.
//
// The rules, in order:
//  1. sticky: a returning customer goes to the agent of their previous conversation, if that
//     agent is active, serves the channel and has capacity;
//  2. least_loaded: otherwise the active agent with capacity who serves the channel, speaks the
//     customer's language and has every skill the conversation needs, with the fewest open
//     conversations (then the lowest load/capacity ratio, then the id);
//  3. relaxed: when nobody matches language and skills, the least-loaded agent on the channel;
//  4. nobody has capacity: the conversation waits, unassigned, for the next pass.
package assign

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Rule names, as in omni.desk.assignment.changed.
const (
	RuleSticky      = "sticky"
	RuleLeastLoaded = "least_loaded"
	RuleRelaxed     = "relaxed"
	RuleTransfer    = "transfer"
	RuleClaimed     = "claimed"
)

// Need is what a conversation asks of its agent.
type Need struct {
	Channel   string
	Language  string   // "" when unknown
	Skills    []string // every one is required
	LastAgent string   // the agent of the customer's previous conversation, if any
}

// Candidate is an agent with its current load.
type Candidate struct {
	ID        string
	Skills    []string
	Languages []string // empty: any language
	Channels  []string // empty: every channel
	Capacity  int
	Load      int
	Active    bool
}

// Decision is the chosen agent and why.
type Decision struct {
	AgentID string
	Rule    string
	Note    string
}

func (c Candidate) free() bool { return c.Active && c.Load < c.Capacity }
func (c Candidate) serves(ch string) bool {
	return len(c.Channels) == 0 || ch == "" || slices.Contains(c.Channels, ch)
}
func (c Candidate) speaks(lang string) bool {
	return lang == "" || len(c.Languages) == 0 || slices.Contains(c.Languages, lang)
}
func (c Candidate) has(skills []string) bool {
	for _, s := range skills {
		if !slices.Contains(c.Skills, s) {
			return false
		}
	}
	return true
}

// less orders candidates by load, then load ratio, then id.
func less(a, b Candidate) bool {
	if a.Load != b.Load {
		return a.Load < b.Load
	}
	ra, rb := float64(a.Load)/float64(max(a.Capacity, 1)), float64(b.Load)/float64(max(b.Capacity, 1))
	if ra != rb {
		return ra < rb
	}
	return a.ID < b.ID
}

// Choose applies the rules; ok is false when no agent can take the conversation now.
func Choose(n Need, agents []Candidate) (d Decision, ok bool) {
	if n.LastAgent != "" {
		for _, a := range agents {
			if a.ID == n.LastAgent && a.free() && a.serves(n.Channel) {
				return Decision{AgentID: a.ID, Rule: RuleSticky, Note: fmt.Sprintf("returning customer; %d of %d open", a.Load, a.Capacity)}, true
			}
		}
	}
	var best, relaxed *Candidate
	for i := range agents {
		a := agents[i]
		if !a.free() || !a.serves(n.Channel) {
			continue
		}
		if relaxed == nil || less(a, *relaxed) {
			relaxed = &agents[i]
		}
		if a.speaks(n.Language) && a.has(n.Skills) && (best == nil || less(a, *best)) {
			best = &agents[i]
		}
	}
	want := describe(n)
	switch {
	case best != nil:
		return Decision{AgentID: best.ID, Rule: RuleLeastLoaded, Note: fmt.Sprintf("%s; %d of %d open", want, best.Load, best.Capacity)}, true
	case relaxed != nil:
		return Decision{AgentID: relaxed.ID, Rule: RuleRelaxed, Note: fmt.Sprintf("nobody free with %s; %d of %d open", want, relaxed.Load, relaxed.Capacity)}, true
	}
	return Decision{}, false
}

func describe(n Need) string {
	parts := []string{}
	if n.Channel != "" {
		parts = append(parts, n.Channel)
	}
	if n.Language != "" {
		parts = append(parts, n.Language)
	}
	parts = append(parts, n.Skills...)
	if len(parts) == 0 {
		return "any agent"
	}
	return strings.Join(parts, ", ")
}

// DetectLanguage guesses the language of a customer's text: zh when it has Han characters, en
// when it is mostly Latin letters, "" when it cannot tell.
func DetectLanguage(text string) string {
	var han, latin int
	for _, r := range text {
		switch {
		case unicode.Is(unicode.Han, r):
			han++
		case r < unicode.MaxASCII && unicode.IsLetter(r):
			latin++
		}
	}
	switch {
	case han > 0 && han*4 >= latin:
		return "zh"
	case latin >= 3:
		return "en"
	}
	return ""
}

var skillWords = []struct {
	skill string
	re    *regexp.Regexp
}{
	{"logistics", regexp.MustCompile(`(?i)快递|物流|包裹|运单|发货|配送|parcel|package|tracking|shipping|delivery|\bSF\d{8,}`)},
	{"billing", regexp.MustCompile(`(?i)退款|付款|支付|发票|扣款|账单|refund|payment|invoice|charge|billing`)},
}

// Skills returns the skills a conversation needs: vip when the customer's profile says so, and
// the topics its last customer text mentions.
func Skills(profile json.RawMessage, lastText string) []string {
	var out []string
	var p map[string]any
	if json.Unmarshal(profile, &p) == nil {
		for _, k := range []string{"vip_level", "vip", "tier"} {
			switch v := p[k].(type) {
			case string:
				if v != "" && v != "0" && !strings.EqualFold(v, "none") && !strings.EqualFold(v, "false") && !strings.EqualFold(v, "standard") {
					out = append(out, "vip")
				}
			case bool:
				if v {
					out = append(out, "vip")
				}
			case float64:
				if v > 0 {
					out = append(out, "vip")
				}
			}
			if len(out) > 0 {
				break
			}
		}
	}
	for _, w := range skillWords {
		if w.re.MatchString(lastText) {
			out = append(out, w.skill)
		}
	}
	return out
}
