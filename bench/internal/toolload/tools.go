package toolload

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/services/sandbox"
	omssim "github.com/omnibus-dev/omnibus/services/sandbox/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Tools are the tool connectors the generator loads, in the order it runs them.
var Tools = []string{"crm", "oms", "logistics", "ticket"}

// faultRoute is one sandbox route a tool calls: its fault key is "<vendor> <op>".
type faultRoute struct {
	Vendor, Op string
}

func (r faultRoute) key() string { return r.Vendor + " " + r.Op }

// DefaultErrorCodes are the vendor error codes the errors phase injects, each vendor's own
// transient failure: Salesforce SERVER_UNAVAILABLE (503), the OMS's 50001 system busy, SF's
// A1099 system error, Cainiao's S99 system error, Jira's and Zendesk's HTTP 503.
var DefaultErrorCodes = map[string]string{
	"salesforce": "SERVER_UNAVAILABLE",
	"oms":        "50001",
	"sfexpress":  "A1099",
	"cainiao":    "S99",
	"jira":       "503",
	"zendesk":    "503",
}

// key is one request's subject matter: what is looked up or which conversation gets a ticket.
type key struct {
	Kind, Value string // crm: phone|email; oms: phone|order_no; logistics: waybill; ticket: conversation
	CustomerID  string
	Customer    *sim.Customer // nil for numbers nobody in the population owns
	Subject     string        // ticket
	Priority    string        // ticket
}

// toolDef is what the generator knows about one tool.
type toolDef struct {
	name              string
	requested         string // the request's type and subject
	completed, failed string
	durable           string // the connector's consumer, which must exist before the load starts
	cache             string // the connector's pkg/cache name ("" if none)
	routes            []faultRoute
	baselineOp        string // what a direct call does
}

func toolDefs(ticketProvider string) map[string]*toolDef {
	ticketRoutes := []faultRoute{{"jira", "search"}, {"jira", "issue/create"}}
	if ticketProvider == "zendesk" {
		ticketRoutes = []faultRoute{{"zendesk", "tickets/list"}, {"zendesk", "tickets/create"}}
	}
	return map[string]*toolDef{
		"crm": {name: "crm", requested: "omni.tool.crm.lookup.requested", completed: "omni.tool.crm.lookup.completed",
			failed: "omni.tool.crm.lookup.failed", durable: "crm-lookup-requested", cache: "crm_lookup",
			routes:     []faultRoute{{"salesforce", "oauth2/token"}, {"salesforce", "query"}},
			baselineOp: "salesforce SOQL query (token fetched beforehand)"},
		"oms": {name: "oms", requested: "omni.tool.oms.lookup.requested", completed: "omni.tool.oms.lookup.completed",
			failed: "omni.tool.oms.lookup.failed", durable: "oms-lookup-requested", cache: "oms_lookup",
			routes:     []faultRoute{{"oms", "orders/list"}, {"oms", "orders/get"}},
			baselineOp: "signed OMS orders/list or orders/get, as the request asks"},
		"logistics": {name: "logistics", requested: "omni.tool.logistics.route.requested", completed: "omni.tool.logistics.route.completed",
			failed: "omni.tool.logistics.route.failed", durable: "logistics-route-requested", cache: "logistics_route",
			routes:     []faultRoute{{"sfexpress", "EXP_RECE_SEARCH_ROUTES"}, {"cainiao", "TRACEQUERY"}},
			baselineOp: "one SF route query (1 waybill) or Cainiao trace query per request"},
		"ticket": {name: "ticket", requested: "omni.tool.ticket.create.requested", completed: "omni.tool.ticket.create.completed",
			failed: "omni.tool.ticket.create.failed", durable: "ticket-create-requested",
			routes:     ticketRoutes,
			baselineOp: ticketProvider + " create only (the tool searches first: 2 calls per new ticket)"},
	}
}

// workload makes each tool's keys from the sandbox's simulated population (the same Population
// the Salesforce and OMS simulators build their records from), so lookups find real records.
type workload struct {
	r      *rand.Rand
	people []sim.Customer
	ids    []string // customer UUIDs by population index
	orders *omssim.Sim
	repeat float64
	fresh  map[string]func() key // per tool: the next key never asked before
}

func newWorkload(customers int, seed uint64, repeat float64) (*workload, error) {
	w := &workload{r: rand.New(rand.NewPCG(seed, 0x746f6f6c)), people: sim.Population(customers, seed), repeat: repeat}
	w.ids = make([]string, len(w.people))
	for i := range w.ids {
		w.ids[i] = w.uuid()
	}
	// A private copy of the OMS simulator: orders are deterministic in (phone, seed, day), so
	// it names the order numbers and waybills the sandbox's OMS holds.
	env := sim.NewEnv(http.NewServeMux(), "", nil, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	o, err := omssim.New(env, omssim.Config{AppKey: sandbox.Credentials["OMS_APP_KEY"], AppSecret: sandbox.Credentials["OMS_APP_SECRET"],
		Customers: customers, Seed: seed})
	if err != nil {
		return nil, err
	}
	w.orders = o
	w.fresh = map[string]func() key{"crm": w.crmKeys(), "oms": w.omsKeys(), "logistics": w.logisticsKeys(), "ticket": w.ticketKeys()}
	return w, nil
}

// uuid is a random-looking UUID (v4 layout) from the workload's generator.
func (w *workload) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(w.r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuid.UUID(b).String()
}

// unknownPhone is a valid Chinese mobile number nobody in the population has (almost surely).
func (w *workload) unknownPhone() string {
	return fmt.Sprintf("+86136%08d", w.r.IntN(1e8))
}

// keys returns n keys of tool: fresh ones, and a share w.repeat asked again (a key from earlier
// in the same list, as agents re-open a customer or re-track a parcel). repeat[i] tells which.
func (w *workload) keys(tool string, n int) (keys []key, repeat []bool) {
	keys, repeat = make([]key, 0, n), make([]bool, 0, n)
	for range n {
		if len(keys) > 0 && w.r.Float64() < w.repeat {
			keys, repeat = append(keys, keys[w.r.IntN(len(keys))]), append(repeat, true)
			continue
		}
		keys, repeat = append(keys, w.fresh[tool]()), append(repeat, false)
	}
	return keys, repeat
}

// variant names the kind of request k is, for the latency breakdown: what is looked up, the
// carrier asked, or whether the conversation already has its ticket.
func variant(tool string, k key, repeat bool) string {
	switch tool {
	case "logistics":
		if strings.HasPrefix(strings.ToUpper(k.Value), "SF") {
			return "sfexpress"
		}
		return "cainiao"
	case "ticket":
		if repeat {
			return "repeat (ticket exists)"
		}
		return "new conversation"
	}
	if k.Customer == nil {
		return k.Kind + " (unknown)"
	}
	return k.Kind
}

// cycle walks a shuffled index list forever (reshuffled per pass).
func (w *workload) cycle(n int) func() int {
	var perm []int
	return func() int {
		if len(perm) == 0 {
			perm = w.r.Perm(n)
		}
		i := perm[0]
		perm = perm[1:]
		return i
	}
}

// crmKeys: the identities the unifier asks about — a customer's phone (E.164) or email — and one
// lookup in twelve of a number the CRM does not know.
func (w *workload) crmKeys() func() key {
	next := w.cycle(len(w.people))
	return func() key {
		if w.r.IntN(12) == 0 {
			return key{Kind: "phone", Value: w.unknownPhone(), CustomerID: w.uuid()}
		}
		i := next()
		c := &w.people[i]
		if w.r.IntN(10) < 7 {
			return key{Kind: "phone", Value: c.Phone, CustomerID: w.ids[i], Customer: c}
		}
		return key{Kind: "email", Value: c.Email, CustomerID: w.ids[i], Customer: c}
	}
}

// omsKeys: a buyer's phone (recent orders) or one of their order numbers; one in twenty phones is
// a number the OMS has never seen (it answers with zero to three orders, as for any mobile).
func (w *workload) omsKeys() func() key {
	next := w.cycle(len(w.people))
	return func() key {
		if w.r.IntN(20) == 0 {
			return key{Kind: "phone", Value: w.unknownPhone(), CustomerID: w.uuid()}
		}
		i := next()
		c := &w.people[i]
		if w.r.IntN(100) < 35 {
			if os := w.orders.Orders(c.Phone); len(os) > 0 {
				return key{Kind: "order_no", Value: os[w.r.IntN(len(os))].OrderNo, CustomerID: w.ids[i], Customer: c}
			}
		}
		return key{Kind: "phone", Value: c.Phone, CustomerID: w.ids[i], Customer: c}
	}
}

// logisticsKeys: the waybills on the population's shipped orders (about half SF Express, half
// YTO, ZTO and JD numbers that go to Cainiao), in a shuffled cycle.
func (w *workload) logisticsKeys() func() key {
	type bill struct {
		no string
		i  int
	}
	var bills []bill
	for i, c := range w.people {
		for _, o := range w.orders.Orders(c.Phone) {
			for _, wb := range o.Waybills {
				if wb.WaybillNo != "" {
					bills = append(bills, bill{wb.WaybillNo, i})
				}
			}
		}
	}
	if len(bills) == 0 { // a tiny population without shipped orders
		return func() key {
			return key{Kind: "waybill", Value: fmt.Sprintf("SF1%012d", w.r.Int64N(1e12)), CustomerID: w.uuid()}
		}
	}
	next := w.cycle(len(bills))
	return func() key {
		b := bills[next()]
		return key{Kind: "waybill", Value: b.no, CustomerID: w.ids[b.i], Customer: &w.people[b.i]}
	}
}

var ticketSubjects = []string{
	"包裹破损，申请售后", "Parcel arrived damaged", "重复扣款，请核实订单", "Charged twice for one order",
	"修改收货地址", "发票开具申请", "退货运费争议", "Refund not received after 7 days",
	"会员积分未到账", "Wrong item delivered", "物流长时间未更新", "Request a callback from a supervisor",
}

// ticketKeys: a new conversation each (one ticket per conversation); repeats are the same
// conversation asking again, which the connector answers with the existing ticket.
func (w *workload) ticketKeys() func() key {
	next := w.cycle(len(w.people))
	prios := []string{"low", "normal", "normal", "normal", "high", "urgent"}
	return func() key {
		i := next()
		return key{Kind: "conversation", Value: w.uuid(), CustomerID: w.ids[i], Customer: &w.people[i],
			Subject: ticketSubjects[w.r.IntN(len(ticketSubjects))], Priority: prios[w.r.IntN(len(prios))]}
	}
}

// requestData is the data of a tool's request event for k, as the unifier or the desk sends it.
func requestData(tool string, k key, conversation string) any {
	switch tool {
	case "crm":
		return map[string]any{"customer_id": k.CustomerID, "conversation_id": conversation,
			"query": map[string]string{"kind": k.Kind, "value": k.Value}}
	case "oms":
		return map[string]any{"customer_id": k.CustomerID, "conversation_id": conversation,
			"query": map[string]string{"kind": k.Kind, "value": k.Value}}
	case "logistics":
		return map[string]any{"customer_id": k.CustomerID, "conversation_id": conversation, "tracking_number": k.Value,
			"agent_id": "agent-bench"}
	default:
		d := map[string]any{"customer_id": k.CustomerID, "conversation_id": k.Value, "subject": k.Subject,
			"description": ticketDescription(k), "priority": k.Priority, "agent_id": "agent-bench",
			"tags": []string{"bench"}}
		if k.Customer != nil {
			d["requester"] = map[string]string{"name": k.Customer.Name, "email": k.Customer.Email}
		}
		return d
	}
}

func ticketDescription(k key) string {
	var b strings.Builder
	b.WriteString("客户反馈：" + k.Subject + "\n\n")
	if k.Customer != nil {
		b.WriteString("联系电话 " + k.Customer.Phone + "，邮箱 " + k.Customer.Email + "。\n\n")
	}
	b.WriteString("Created by omnibus bench tools.")
	return b.String()
}
