package logistics

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
)

// Provider names, as they appear in events (the provider field) and in LOGISTICS_PROVIDER.
const (
	ProviderSF      = "sf_express"
	ProviderCainiao = "cainiao"
)

// Normalised statuses of a track (the status enum of omni.tool.logistics.route.completed).
const (
	StatusCreated        = "created"
	StatusInTransit      = "in_transit"
	StatusOutForDelivery = "out_for_delivery"
	StatusDelivered      = "delivered"
	StatusException      = "exception"
	StatusReturned       = "returned"
	StatusUnknown        = "unknown"
)

// Track is the one timeline shape every provider is normalised to: the data of
// omni.tool.logistics.route.completed minus the request's ids.
type Track struct {
	TrackingNumber string       `json:"tracking_number"`
	Provider       string       `json:"provider"`
	Carrier        string       `json:"carrier,omitempty"`
	Status         string       `json:"status"`
	StatusText     string       `json:"status_text,omitempty"`
	Events         []TrackEvent `json:"events"`
	FetchedAt      time.Time    `json:"fetched_at"`
}

// TrackEvent is one checkpoint. Descriptions have phone numbers masked.
type TrackEvent struct {
	At          time.Time `json:"at"`
	Location    string    `json:"location,omitempty"`
	Description string    `json:"description"`
	Code        string    `json:"code,omitempty"`
}

// clean masks personal data the carrier writes into free text (the courier's or receiver's
// phone in "正在派送途中（联系电话：13912345678）") and caps the length at the schema's limit.
func clean(s string, max int) string {
	s = strings.TrimSpace(pii.Redact(s))
	if r := []rune(s); len(r) > max {
		s = string(r[:max])
	}
	return s
}

// finish sorts events newest first, fills an empty description, and derives the status from the
// newest event with a known status.
func finish(t Track, statusOf func(TrackEvent) (string, string)) Track {
	sort.SliceStable(t.Events, func(i, j int) bool { return t.Events[i].At.After(t.Events[j].At) })
	if len(t.Events) > 200 {
		t.Events = t.Events[:200]
	}
	t.Status = StatusUnknown
	for _, e := range t.Events {
		if st, text := statusOf(e); st != "" {
			t.Status, t.StatusText = st, text
			break
		}
	}
	if t.Events == nil {
		t.Events = []TrackEvent{}
	}
	return t
}

// sfStatus maps an SF scan. opCode 50 (picked up) and 80 (delivered) are documented; 30/31/36
// (sorted, arrived, departed), 44 (out for delivery) and 70 (delivery failed) are the codes seen
// in practice; firstStatusCode (1 picked up, 2 in transit, 3 out for delivery, 4 delivered) is
// used when present and wins.
func sfStatus(code, firstStatus, firstName string) (string, string) {
	switch firstStatus {
	case "1", "2":
		return StatusInTransit, firstName
	case "3":
		return StatusOutForDelivery, firstName
	case "4":
		return StatusDelivered, firstName
	}
	switch code {
	case sfexpress.OpPickedUp, "54":
		return StatusInTransit, "已揽收"
	case sfexpress.OpSorted, sfexpress.OpArrived, sfexpress.OpDeparted:
		return StatusInTransit, "运送中"
	case sfexpress.OpOutForDelivery:
		return StatusOutForDelivery, "派送中"
	case sfexpress.OpDelivered, "8000":
		return StatusDelivered, "已签收"
	case sfexpress.OpDeliveryFailed:
		return StatusException, "派送失败"
	case "99", "648":
		return StatusReturned, "已退回"
	}
	return "", ""
}

// fromSF normalises one routeResps entry.
func fromSF(r sfexpress.RouteResp, fetched time.Time) Track {
	t := Track{TrackingNumber: r.MailNo, Provider: ProviderSF, Carrier: "顺丰速运", FetchedAt: fetched}
	first := map[string][2]string{}
	for _, rt := range r.Routes {
		at, err := sfexpress.ParseAcceptTime(rt.AcceptTime)
		if err != nil {
			continue // a scan without a readable time cannot be placed on the timeline
		}
		desc := clean(rt.Remark, 1024)
		if desc == "" {
			desc = clean(rt.SecondaryStatusName+rt.FirstStatusName, 1024)
		}
		if desc == "" {
			desc = "opCode " + rt.OpCode
		}
		e := TrackEvent{At: at.UTC(), Location: clean(rt.AcceptAddress, 256), Description: desc, Code: capLen(rt.OpCode, 64)}
		first[e.At.String()+e.Code] = [2]string{rt.FirstStatusCode, rt.FirstStatusName}
		t.Events = append(t.Events, e)
	}
	return finish(t, func(e TrackEvent) (string, string) {
		f := first[e.At.String()+e.Code]
		return sfStatus(e.Code, f[0], f[1])
	})
}

func capLen(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// cainiaoStatus maps operate_action (the documented trace query's field; the value set is not
// documented, these are the ones the sandbox writes and Cainiao's public pages show).
func cainiaoStatus(action, display string) (string, string) {
	switch strings.ToUpper(action) {
	case cainiao.ActionAccept, "GOT", cainiao.ActionTransport, cainiao.ActionArrive, "DEPARTURE", "ARRIVAL":
		return StatusInTransit, display
	case cainiao.ActionDelivering, "SENT_SCAN":
		return StatusOutForDelivery, display
	case cainiao.ActionSign, "SIGNED":
		return StatusDelivered, display
	case cainiao.ActionFailed, "FAILED_SIGN", "REJECT":
		return StatusException, display
	case cainiao.ActionReturn:
		return StatusReturned, display
	case "CREATE", "CONSIGN":
		return StatusCreated, display
	}
	return "", ""
}

// fromCainiao normalises a trace.
func fromCainiao(d cainiao.TraceData, carrier string, fetched time.Time) Track {
	t := Track{TrackingNumber: d.MailNo, Provider: ProviderCainiao, Carrier: carrier, FetchedAt: fetched}
	display := map[string]string{}
	for _, e := range d.Traces {
		tr := e.Trace
		loc := ""
		switch {
		case tr.Address != nil && tr.Address.City != "":
			loc = tr.Address.City
		case tr.Site != nil:
			loc = tr.Site.Name
		}
		desc := clean(tr.Detail.OperateDesc, 1024)
		if desc == "" {
			desc = clean(tr.Detail.DisplayAction, 1024)
		}
		if desc == "" {
			desc = tr.Detail.OperateAction
		}
		if desc == "" {
			continue
		}
		ev := TrackEvent{At: tr.Detail.OperateTime.UTC(), Location: clean(loc, 256), Description: desc, Code: capLen(tr.Detail.OperateAction, 64)}
		display[ev.At.String()+ev.Code] = tr.Detail.DisplayAction
		t.Events = append(t.Events, ev)
	}
	return finish(t, func(e TrackEvent) (string, string) {
		return cainiaoStatus(e.Code, clean(display[e.At.String()+e.Code], 256))
	})
}

// validNumber is the schema's trackingNumber pattern, ^[A-Za-z0-9-]{4,64}$.
func validNumber(no string) bool {
	if len(no) < 4 || len(no) > 64 {
		return false
	}
	for _, c := range no {
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

// NormaliseSF parses an SF route query answer and returns, per waybill whose number omnibus could
// have asked for, the data of the
// omni.tool.logistics.route.completed event it becomes (tools and the fuzz test use it).
func NormaliseSF(body []byte) ([]json.RawMessage, error) {
	_, routes, err := sfexpress.ParseRouteResponse(body)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(routes))
	for _, r := range routes {
		if !validNumber(r.MailNo) {
			continue // not a number omnibus could have asked for
		}
		b, err := json.Marshal(fromSF(r, time.Now().UTC()))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
