// Package cainiao simulates the Cainiao (菜鸟) link gateway's trace query, mounted on a sim.Env
// under /sandbox/cainiao:
//
//	POST /sandbox/cainiao/gateway/link.do   msg_type=<Config.MsgType>   op "TRACEQUERY"
//
// It takes the gateway's form (logistic_provider_id, msg_type, to_code, logistics_interface,
// data_digest), checks the provider and data_digest = Base64(MD5(logistics_interface + secretKey)),
// and answers {success, error_code, error_message, data:{mail_no, traces:[{trace:{detail, site,
// address, operator}}]}}. The documentation is partial (vendors/README.md §8): the error codes
// (S01 bad digest, S02 missing parameter, S07 rate limit, S99 system, B01 unknown waybill) and
// the inner fields of site/address/operator are the sandbox's choice, shared with the connector
// through pkg/wire/cainiao.
//
// Timelines are deterministic per (mail_no, day): 1 to 5 nodes (ACCEPT, TRANSPORT, ARRIVE,
// DELIVERING with the courier's phone, SIGN). Numbers that are not 8-20 letters and digits are
// unknown (B01). Injected faults: "" is S99, any other code is answered as that error_code, and
// "http_503" is a bare HTTP 503.
package cainiao

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "cainiao"

// OpTrace is the op of the trace query (fault key "cainiao TRACEQUERY").
const OpTrace = "TRACEQUERY"

// Config configures the simulated Cainiao account. Zero fields take the defaults shown.
type Config struct {
	// ProviderID is the logistic_provider_id (the connector's CAINIAO_PROVIDER_ID). Required.
	ProviderID string
	// SecretKey signs data_digest (the connector's CAINIAO_SECRET_KEY). Required.
	SecretKey string
	// MsgType is the accepted msg_type. Default wire.MsgTypeTraceQuery.
	MsgType string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.ProviderID == "" || cfg.SecretKey == "" {
		return nil, errors.New("cainiao sandbox: ProviderID and SecretKey are required")
	}
	if cfg.MsgType == "" {
		cfg.MsgType = wire.MsgTypeTraceQuery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{env: env, cfg: cfg}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpTrace, Pattern: "POST " + wire.Path, Handler: s.serve, Fail: s.fail})
	return s, nil
}

func writeJSON(w http.ResponseWriter, body []byte) {
	sim.WriteBody(w, http.StatusOK, "application/json;charset=UTF-8", body)
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	switch {
	case code == "":
		writeJSON(w, wire.EncodeError(wire.ErrorCodeSystem, "系统异常"))
	case strings.HasPrefix(code, "http_"):
		n, err := strconv.Atoi(strings.TrimPrefix(code, "http_"))
		if err != nil || n < 400 || n > 599 {
			n = http.StatusServiceUnavailable
		}
		http.Error(w, http.StatusText(n), n)
	default:
		writeJSON(w, wire.EncodeError(code, "injected fault "+code))
	}
}

func (s *Sim) reject(w http.ResponseWriter, to string, data any, code, msg string) {
	s.env.Record(Vendor, OpTrace, to, data, fmt.Errorf("%s %s", code, msg))
	writeJSON(w, wire.EncodeError(code, msg))
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.reject(w, "", nil, wire.ErrorCodeMissing, "请求参数解析失败")
		return
	}
	req, err := wire.ParseRequest(r.PostForm)
	if err != nil {
		s.reject(w, "", nil, wire.ErrorCodeMissing, err.Error())
		return
	}
	switch {
	case req.ProviderID != s.cfg.ProviderID:
		s.reject(w, "", nil, wire.ErrorCodeSign, "logistic_provider_id不存在")
		return
	case !wire.VerifyDigest(req.LogisticsInterface, s.cfg.SecretKey, req.DataDigest):
		s.reject(w, "", map[string]string{"data_digest": req.DataDigest}, wire.ErrorCodeSign, "签名错误 (data_digest)")
		return
	case req.MsgType != s.cfg.MsgType:
		s.reject(w, "", nil, wire.ErrorCodeMissing, "msg_type不支持: "+req.MsgType)
		return
	}
	var q wire.TraceQuery
	if err := json.Unmarshal([]byte(req.LogisticsInterface), &q); err != nil || q.MailNo == "" {
		s.reject(w, "", nil, wire.ErrorCodeMissing, "logistics_interface缺少mail_no")
		return
	}
	if q.Type != "" && q.Type != wire.TypeOrigin && q.Type != wire.TypeSeller {
		s.reject(w, q.MailNo, q, wire.ErrorCodeMissing, "type不合法")
		return
	}
	traces := s.Traces(q.MailNo)
	if traces == nil {
		s.reject(w, q.MailNo, q, wire.ErrorCodeNotFound, "运单不存在")
		return
	}
	body, err := wire.EncodeTraceResponse(wire.TraceData{MailNo: q.MailNo, Traces: traces})
	if err != nil {
		writeJSON(w, wire.EncodeError(wire.ErrorCodeSystem, "系统异常"))
		return
	}
	s.env.Record(Vendor, OpTrace, q.MailNo, q, nil)
	writeJSON(w, body)
}

type place struct{ province, city, site string }

var places = []place{
	{"浙江省", "杭州市", "杭州转运中心"}, {"江苏省", "苏州市", "苏州分拨中心"}, {"广东省", "广州市", "广州花都转运中心"},
	{"上海", "上海市", "上海青浦转运中心"}, {"北京", "北京市", "北京大兴分拨中心"}, {"四川省", "成都市", "成都双流转运中心"},
	{"湖北省", "武汉市", "武汉转运中心"}, {"山东省", "济南市", "济南分拨中心"},
}

// Traces is the deterministic trace of mail_no (nil when unknown).
func (s *Sim) Traces(no string) []wire.TraceEntry {
	if len(no) < 8 || len(no) > 20 {
		return nil
	}
	for _, c := range no {
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return nil
		}
	}
	h := sha256.Sum256([]byte("cainiao\x00" + no))
	u := func(i int) int { return int(binary.BigEndian.Uint16(h[i*2:])) }
	from, to := places[u(0)%len(places)], places[u(1)%len(places)]
	if from == to {
		to = places[(u(1)+1)%len(places)]
	}
	phone := fmt.Sprintf("15%d%08d", u(2)%10, u(3)*1000+u(4)%1000)
	nodes := []struct {
		p             place
		action, desc  string
		display       string
		operatorName  string
		operatorPhone string
		gap           time.Duration
	}{
		{from, wire.ActionAccept, "【" + from.city + "】快件已揽收", "已揽件", "", "", 0},
		{from, wire.ActionTransport, "【" + from.site + "】已发出，下一站【" + to.site + "】", "运输中", "", "", 7 * time.Hour},
		{to, wire.ActionArrive, "快件已到达【" + to.site + "】", "运输中", "", "", 11 * time.Hour},
		{to, wire.ActionDelivering, "【" + to.city + "】快递员正在派件，电话：" + phone, "派送中", "刘师傅", phone, 3 * time.Hour},
		{to, wire.ActionSign, "【" + to.city + "】快件已签收，签收人：家门口", "已签收", "", "", 4 * time.Hour},
	}
	n := 1 + u(5)%len(nodes)
	at := s.cfg.Now().In(wire.China).Truncate(24*time.Hour).AddDate(0, 0, -(1 + u(6)%3)).Add(time.Duration(8+u(7)%10) * time.Hour)
	out := make([]wire.TraceEntry, 0, n)
	for i := range n {
		nd := nodes[i]
		at = at.Add(nd.gap + time.Duration(u(8+i)%45)*time.Minute)
		tr := wire.Trace{
			Detail:  wire.Detail{OperateTime: wire.OperateTime{Time: at}, OperateAction: nd.action, OperateDesc: nd.desc, DisplayAction: nd.display},
			Site:    &wire.Site{Name: nd.p.site},
			Address: &wire.Address{Province: nd.p.province, City: nd.p.city},
		}
		if nd.operatorName != "" {
			tr.Operator = &wire.Operator{Name: nd.operatorName, Contact: nd.operatorPhone}
		}
		out = append(out, wire.TraceEntry{Trace: tr})
	}
	return out
}
