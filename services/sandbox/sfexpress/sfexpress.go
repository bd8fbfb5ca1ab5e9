// Package sfexpress simulates the SF Express (顺丰) open platform's route query, mounted on a
// sim.Env under /sandbox/sfexpress:
//
//	POST /sandbox/sfexpress/std/service   serviceCode=EXP_RECE_SEARCH_ROUTES   op "EXP_RECE_SEARCH_ROUTES"
//
// It takes SF's form (partnerID, requestID, serviceCode, timestamp, msgData, msgDigest), checks the
// partner and the 标准MD5 msgDigest exactly as SF does, and answers HTTP 200 with SF's envelope:
// apiResultCode A1001 (missing parameter), A1004 (unknown partner or service), A1006 (bad digest),
// A1005 (rate limit, when Config.RateLimit is set), or A1000 with apiResultData — a JSON string —
// holding the business result: 8013 (no number), 8003 (more than 10), 6133 (bad methodType), or
// S0000 with one routeResps entry per number asked.
//
// Timelines: the waybills of Config.Known (by default SF1234567890123, delivered, and
// SF7788990011223, out for delivery — the parcels of the simulated customers) have fixed
// timelines; any other well-formed number gets a deterministic, plausible timeline derived from
// the number and the current day (pickup, sorting, line haul, arrival, delivery, with the
// courier's phone in the out-for-delivery remark as SF writes it). Numbers that are not 8-20
// letters and digits come back with no routes, as SF answers for numbers it does not know.
// When a known waybill has an owner phone and the query carries checkPhoneNo, a mismatch also
// answers no routes.
//
// Injected faults (sim.Fault.Code): "" is A1099 (system error); a platform code ("A1005",
// "A1099", ...) answers that code; a business code ("8003", "8013", "6133") answers A1000 with
// that business error; "http_503" answers a bare HTTP 503 (a gateway failure).
package sfexpress

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	wire "github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "sfexpress"

// OpRoutes is the op of the route query (fault key "sfexpress EXP_RECE_SEARCH_ROUTES").
const OpRoutes = wire.ServiceRouteQuery

// Waybill is a parcel with a fixed timeline.
type Waybill struct {
	// Phone is the receiver's phone (checkPhoneNo must be its last 4 digits when given).
	Phone  string
	Routes []wire.Route
}

// Config configures the simulated SF account. Zero fields take the defaults shown.
type Config struct {
	// PartnerID is the customer code (the connector's SF_PARTNER_ID). Required.
	PartnerID string
	// Checkword is the 客户校验码 (the connector's SF_CHECKWORD). Required.
	Checkword string
	// Known are the waybills with fixed timelines. Default: DefaultKnown.
	Known map[string]Waybill
	// RateLimit, when > 0, answers A1005 beyond this many calls per second.
	RateLimit int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Waybills the simulated customers own.
const (
	WaybillDelivered  = "SF1234567890123"
	WaybillInDelivery = "SF7788990011223"
)

// DefaultKnown returns the fixed timelines of the simulated customers' parcels, relative to now.
func DefaultKnown(now time.Time) map[string]Waybill {
	day := chinaMidnight(now)
	at := func(d int, h, m int) string {
		return wire.FormatAcceptTime(day.AddDate(0, 0, d).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute))
	}
	return map[string]Waybill{
		WaybillDelivered: {Routes: []wire.Route{
			{AcceptAddress: "深圳市", AcceptTime: at(-3, 9, 12), Remark: "顺丰速运 已收取快件", OpCode: wire.OpPickedUp, FirstStatusCode: "1", FirstStatusName: "已揽收"},
			{AcceptAddress: "深圳市", AcceptTime: at(-3, 20, 40), Remark: "快件在【深圳华南陆运枢纽】完成分拣，准备发往【上海虹桥集散中心】", OpCode: wire.OpSorted, FirstStatusCode: "2", FirstStatusName: "运送中"},
			{AcceptAddress: "上海市", AcceptTime: at(-2, 6, 5), Remark: "快件到达【上海虹桥集散中心】", OpCode: wire.OpArrived, FirstStatusCode: "2", FirstStatusName: "运送中"},
			{AcceptAddress: "上海市", AcceptTime: at(-2, 8, 30), Remark: "快件交给王师傅，正在派送途中（联系电话：13912345678）", OpCode: wire.OpOutForDelivery, FirstStatusCode: "3", FirstStatusName: "派送中"},
			{AcceptAddress: "上海市", AcceptTime: at(-2, 11, 2), Remark: "快件已签收，签收人：本人，感谢使用顺丰，期待再次为您服务", OpCode: wire.OpDelivered, FirstStatusCode: "4", FirstStatusName: "已签收"},
		}},
		WaybillInDelivery: {Routes: []wire.Route{
			{AcceptAddress: "广州市", AcceptTime: at(-1, 15, 20), Remark: "顺丰速运 已收取快件", OpCode: wire.OpPickedUp, FirstStatusCode: "1", FirstStatusName: "已揽收"},
			{AcceptAddress: "广州市", AcceptTime: at(-1, 22, 10), Remark: "快件在【广州白云集散中心】完成分拣，准备发往【北京顺义集散中心】", OpCode: wire.OpSorted, FirstStatusCode: "2", FirstStatusName: "运送中"},
			{AcceptAddress: "北京市", AcceptTime: at(0, 5, 45), Remark: "快件到达【北京顺义集散中心】", OpCode: wire.OpArrived, FirstStatusCode: "2", FirstStatusName: "运送中"},
			{AcceptAddress: "北京市", AcceptTime: at(0, 8, 15), Remark: "快件交给李师傅，正在派送途中（联系电话：13687654321）", OpCode: wire.OpOutForDelivery, FirstStatusCode: "3", FirstStatusName: "派送中"},
		}},
	}
}

// Sim is the running simulator.
type Sim struct {
	env *sim.Env
	cfg Config
	seq atomic.Uint64

	mu     sync.Mutex
	window time.Time
	calls  int
}

// New mounts the simulator on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.PartnerID == "" || cfg.Checkword == "" {
		return nil, errors.New("sfexpress sandbox: PartnerID and Checkword are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Known == nil {
		cfg.Known = DefaultKnown(cfg.Now())
	}
	s := &Sim{env: env, cfg: cfg}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpRoutes, Pattern: "POST " + wire.Path, Handler: s.serve, Fail: s.fail})
	return s, nil
}

func (s *Sim) responseID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.cfg.Now().UnixNano()))
	binary.BigEndian.PutUint64(b[8:], s.seq.Add(1))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func writeJSON(w http.ResponseWriter, body []byte) {
	sim.WriteBody(w, http.StatusOK, "application/json;charset=UTF-8", body)
}

func (s *Sim) platform(w http.ResponseWriter, code, msg string) {
	writeJSON(w, wire.EncodePlatformError(s.responseID(), code, msg))
}

func (s *Sim) business(w http.ResponseWriter, code, msg string) {
	b, _ := wire.EncodeBusinessError(s.responseID(), code, msg)
	writeJSON(w, b)
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	switch {
	case code == "":
		s.platform(w, wire.CodeSystem, "系统异常")
	case strings.HasPrefix(code, "http_"):
		n, err := strconv.Atoi(strings.TrimPrefix(code, "http_"))
		if err != nil || n < 400 || n > 599 {
			n = http.StatusServiceUnavailable
		}
		http.Error(w, http.StatusText(n), n)
	case strings.HasPrefix(code, "A"):
		s.platform(w, code, "injected fault "+code)
	default:
		s.business(w, code, "injected fault "+code)
	}
}

func (s *Sim) limited() bool {
	if s.cfg.RateLimit <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().Truncate(time.Second)
	if !now.Equal(s.window) {
		s.window, s.calls = now, 0
	}
	s.calls++
	return s.calls > s.cfg.RateLimit
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"error": err.Error()}, err)
		s.platform(w, wire.CodeMissingParam, "请求参数解析失败")
		return
	}
	req, err := wire.ParseRequest(r.PostForm)
	if err != nil {
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, err)
		s.platform(w, wire.CodeMissingParam, "缺少必要参数: "+strings.TrimPrefix(err.Error(), wire.ErrMissingParam.Error()+": "))
		return
	}
	switch {
	case req.PartnerID != s.cfg.PartnerID:
		err := fmt.Errorf("unknown partnerID %q", req.PartnerID)
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, err)
		s.platform(w, wire.CodeNoPermission, "顾客编码不存在或无权限")
		return
	case req.MsgDigest == "":
		err := errors.New("accessToken is not supported by the sandbox; sign with msgDigest")
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, err)
		s.platform(w, wire.CodeTokenExpired, "accessToken无效")
		return
	case !wire.VerifyDigest(req.MsgData, req.Timestamp, s.cfg.Checkword, req.MsgDigest):
		err := errors.New("msgDigest does not verify (标准MD5 over msgData+timestamp+checkword)")
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID, "msgDigest": req.MsgDigest}, err)
		s.platform(w, wire.CodeBadDigest, "数字签名无效")
		return
	case req.ServiceCode != wire.ServiceRouteQuery:
		err := fmt.Errorf("service %q not simulated", req.ServiceCode)
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, err)
		s.platform(w, wire.CodeNoPermission, "服务未授权: "+req.ServiceCode)
		return
	case s.limited():
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, errors.New("rate limited"))
		s.platform(w, wire.CodeRateLimited, "流量超限")
		return
	}
	var q wire.RouteQuery
	if err := json.Unmarshal([]byte(req.MsgData), &q); err != nil {
		s.env.Record(Vendor, OpRoutes, "", map[string]string{"requestID": req.RequestID}, err)
		s.platform(w, wire.CodeMissingParam, "msgData不是合法的JSON")
		return
	}
	if e := q.Validate(); e != nil {
		s.env.Record(Vendor, OpRoutes, strings.Join(q.TrackingNumber, ","), q, e)
		s.business(w, e.Code, e.Msg)
		return
	}
	resps := make([]wire.RouteResp, 0, len(q.TrackingNumber))
	for _, no := range q.TrackingNumber {
		resps = append(resps, wire.RouteResp{MailNo: no, Routes: s.Routes(no, q.CheckPhoneNo)})
	}
	body, err := wire.EncodeRouteResponse(s.responseID(), resps)
	if err != nil {
		s.platform(w, wire.CodeSystem, "系统异常")
		return
	}
	s.env.Record(Vendor, OpRoutes, strings.Join(q.TrackingNumber, ","), q, nil)
	writeJSON(w, body)
}

// Routes returns the timeline SF would answer for waybill no (nil when SF does not know it).
func (s *Sim) Routes(no, checkPhone string) []wire.Route {
	if k, ok := s.cfg.Known[no]; ok {
		if checkPhone != "" && k.Phone != "" && !strings.HasSuffix(k.Phone, checkPhone) {
			return nil
		}
		return append([]wire.Route(nil), k.Routes...)
	}
	if !wellFormed(no) {
		return nil
	}
	return Generate(no, s.cfg.Now())
}

func wellFormed(no string) bool {
	if len(no) < 8 || len(no) > 20 {
		return false
	}
	for _, c := range no {
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

type city struct{ name, hub string }

var cities = []city{
	{"深圳市", "深圳华南陆运枢纽"}, {"上海市", "上海虹桥集散中心"}, {"北京市", "北京顺义集散中心"},
	{"广州市", "广州白云集散中心"}, {"杭州市", "杭州萧山集散中心"}, {"成都市", "成都双流集散中心"},
	{"武汉市", "武汉东西湖集散中心"}, {"南京市", "南京江宁集散中心"}, {"西安市", "西安咸阳集散中心"},
	{"重庆市", "重庆渝北集散中心"},
}

var couriers = []string{"王", "李", "张", "刘", "陈", "杨", "赵", "黄"}

// Generate is the deterministic timeline of an unknown waybill: the same number on the same day
// always gives the same scans. Its progress (1 to 6 scans) and cities come from a hash of the
// number; scans are spread over the days before today.
func Generate(no string, now time.Time) []wire.Route {
	h := sha256.Sum256([]byte("sfexpress\x00" + no))
	u := func(i int) int { return int(binary.BigEndian.Uint16(h[i*2:])) }
	from, to := cities[u(0)%len(cities)], cities[u(1)%len(cities)]
	if from == to {
		to = cities[(u(1)+1)%len(cities)]
	}
	steps := 1 + u(2)%6 // 1..6 scans
	day := chinaMidnight(now).AddDate(0, 0, -(1 + u(3)%3))
	at := day.Add(time.Duration(8+u(4)%10)*time.Hour + time.Duration(u(5)%60)*time.Minute)
	phone := fmt.Sprintf("13%d%08d", 5+u(6)%5, u(7)*1000+u(8)%1000)
	courier := couriers[u(9)%len(couriers)]
	all := []wire.Route{
		{AcceptAddress: from.name, Remark: "顺丰速运 已收取快件", OpCode: wire.OpPickedUp, FirstStatusCode: "1", FirstStatusName: "已揽收"},
		{AcceptAddress: from.name, Remark: "快件在【" + from.hub + "】完成分拣，准备发往【" + to.hub + "】", OpCode: wire.OpSorted, FirstStatusCode: "2", FirstStatusName: "运送中"},
		{AcceptAddress: from.name, Remark: "快件已发车", OpCode: wire.OpDeparted, FirstStatusCode: "2", FirstStatusName: "运送中"},
		{AcceptAddress: to.name, Remark: "快件到达【" + to.hub + "】", OpCode: wire.OpArrived, FirstStatusCode: "2", FirstStatusName: "运送中"},
		{AcceptAddress: to.name, Remark: "快件交给" + courier + "师傅，正在派送途中（联系电话：" + phone + "）", OpCode: wire.OpOutForDelivery, FirstStatusCode: "3", FirstStatusName: "派送中"},
		{AcceptAddress: to.name, Remark: "快件已签收，感谢使用顺丰，期待再次为您服务", OpCode: wire.OpDelivered, FirstStatusCode: "4", FirstStatusName: "已签收"},
	}
	out := all[:steps]
	gaps := []time.Duration{0, 9 * time.Hour, 2 * time.Hour, 10 * time.Hour, 3 * time.Hour, 4 * time.Hour}
	for i := range out {
		at = at.Add(gaps[i] + time.Duration(u(10+i%6)%50)*time.Minute)
		out[i].AcceptTime = wire.FormatAcceptTime(at)
	}
	return out
}

// chinaMidnight is the start of now's day in China time (Truncate would cut at UTC midnight,
// 08:00 in China).
func chinaMidnight(now time.Time) time.Time {
	y, m, d := now.In(wire.China).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, wire.China)
}
