// Package oms simulates the order management system the oms connector calls, mounted at
// /sandbox/oms. The API is the one documented in pkg/wire/oms (a typical Chinese e-commerce OMS:
// JSON envelope {code, msg, request_id, data}, HMAC-SHA256 request signature over method, path,
// sorted query and body hash, with app_key, timestamp, nonce, sign_method and sign in the query):
//
//	GET  /sandbox/oms/v1/orders?mobile=13800138000&page=1&page_size=10   a buyer's orders, newest first
//	GET  /sandbox/oms/v1/orders/{order_no}                               one order
//	POST /sandbox/oms/v1/aftersale/service-records                       archive a service record
//	POST /sandbox/oms/v1/aftersale/service-records/remarks               append a remark to a record
//
// so the connector's OMS_API_BASE is http://<host>/sandbox/oms. Unsigned requests get 400 with
// code 40001; mis-signed ones 401 with 40101 (unknown app_key), 40102 (signature), 40103
// (timestamp more than 300 s off) or 40104 (nonce seen before); bad parameters 400 (40001/40002);
// unknown orders 404 (40401).
//
// Orders are generated deterministically from the buyer's phone and Config.Seed: the customers of
// sim.Population(Config.Customers, Config.Seed) have one to four recent orders each, except one
// in five who has none; any other Chinese mobile gets zero to three. Orders have items, amounts in
// yuan, a status, and — once shipped — waybills, most of them SF Express (SF + 13 digits, e.g.
// SF1234567890123) so the logistics tool can track them. Receiver data is masked, as OMSs return
// it.
//
// Service records are idempotent by external_id (the conversation id): the first POST writes the
// record and is recorded with env.Record (op "aftersale/service-records", To = the order number);
// a repeat answers the same record with duplicate true and writes nothing (counted by
// Duplicates).
//
// Remarks are idempotent by remark_id within their record: the first POST appends the remark and
// is recorded (op "aftersale/service-records/remarks", To = the order number); a repeat answers
// the same remark with duplicate true; a remark on an unknown external_id gets 404 (40402).
//
// Fault keys: "oms orders/list", "oms orders/get", "oms aftersale/service-records",
// "oms aftersale/service-records/remarks". Injected
// codes are OMS codes ("42901" throttled with Retry-After: 1, "50301" maintenance, ""
// system busy 50001).
package oms

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "oms"

// Route ops (fault keys "oms <op>").
const (
	OpList    = "orders/list"
	OpGet     = "orders/get"
	OpArchive = "aftersale/service-records"
	OpRemark  = "aftersale/service-records/remarks"
)

// Config configures the simulator.
type Config struct {
	// AppKey and AppSecret are the connector's credentials (required).
	AppKey, AppSecret string
	// Customers and Seed select the simulated population whose orders are generated up front;
	// Customers 0 means 40, the sandbox default.
	Customers int
	Seed      uint64
	// Now is the clock (default time.Now). Order dates count back from the day the simulator
	// was built.
	Now func() time.Time
}

// Sim is the running simulator.
type Sim struct {
	cfg   Config
	env   *sim.Env
	today time.Time

	mu         sync.Mutex
	orders     map[string]*omswire.Order // order_no → order
	byMobile   map[string][]string       // national mobile → order numbers, newest first
	generated  map[string]bool           // mobiles whose orders exist
	nonces     map[string]time.Time      // nonce → when it may be forgotten
	records    map[string]omswire.ServiceRecordResult
	written    []omswire.ServiceRecord
	duplicates int
	reqSeq     int
	// remarks: external_id → the record's remarks in order; remarkIDs: external_id → remark_id → result.
	remarks   map[string][]omswire.RecordRemark
	remarkIDs map[string]map[string]omswire.RecordRemarkResult
}

// New generates the population's orders and mounts the routes on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.AppKey == "" || cfg.AppSecret == "" {
		return nil, errors.New("oms sandbox: AppKey and AppSecret are required")
	}
	if cfg.Customers == 0 {
		cfg.Customers = 40
	}
	if cfg.Customers < 0 {
		return nil, errors.New("oms sandbox: Customers must be >= 0")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now().In(omswire.CST)
	s := &Sim{cfg: cfg, env: env, today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, omswire.CST),
		orders: map[string]*omswire.Order{}, byMobile: map[string][]string{}, generated: map[string]bool{},
		nonces: map[string]time.Time{}, records: map[string]omswire.ServiceRecordResult{},
		remarks: map[string][]omswire.RecordRemark{}, remarkIDs: map[string]map[string]omswire.RecordRemarkResult{}}
	for _, c := range sim.Population(cfg.Customers, cfg.Seed) {
		n := 1 + c.ID%4
		if c.ID%5 == 0 {
			n = 0
		}
		s.generate(omswire.NationalMobile(c.Phone), c.Name, n)
	}
	env.Handle(sim.Route{Vendor: Vendor, Op: OpList, Pattern: "GET " + omswire.PathOrders, Handler: s.list, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpGet, Pattern: "GET " + omswire.PathOrders + "/{order_no}", Handler: s.get, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpArchive, Pattern: "POST " + omswire.PathServiceRecords, Handler: s.archive, Fail: s.fail})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpRemark, Pattern: "POST " + omswire.PathRecordRemarks, Handler: s.remark, Fail: s.fail})
	return s, nil
}

// Orders returns the orders of a phone (E.164 or national), newest first, generating them if
// needed, as the list endpoint does.
func (s *Sim) Orders(phone string) []omswire.Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := omswire.NationalMobile(phone)
	s.ensure(m)
	out := make([]omswire.Order, 0, len(s.byMobile[m]))
	for _, no := range s.byMobile[m] {
		out = append(out, *s.orders[no])
	}
	return out
}

// Remarks returns the remarks appended to the record of externalID, in order.
func (s *Sim) Remarks(externalID string) []omswire.RecordRemark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]omswire.RecordRemark(nil), s.remarks[externalID]...)
}

// ServiceRecords returns the records written, in order.
func (s *Sim) ServiceRecords() []omswire.ServiceRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]omswire.ServiceRecord(nil), s.written...)
}

// Duplicates counts service-record POSTs answered from an earlier write.
func (s *Sim) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.duplicates
}

func isMobile(m string) bool {
	if len(m) != 11 || m[0] != '1' {
		return false
	}
	for i := range len(m) {
		if m[i] < '0' || m[i] > '9' {
			return false
		}
	}
	return true
}

// ensure generates the orders of a mobile not seen yet (s.mu held).
func (s *Sim) ensure(m string) {
	if s.generated[m] || !isMobile(m) {
		return
	}
	s.generate(m, "", int(hash(m, s.cfg.Seed)%4))
}

func hash(m string, seed uint64) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(m))
	return h.Sum64() ^ seed
}

var (
	surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"}
	catalog  = []struct {
		sku, name, spec string
		fen             int
	}{
		{"SKU-1001", "真空保温杯", "500ml 白色", 12900}, {"SKU-1002", "无线蓝牙耳机", "Pro 黑色", 39900},
		{"SKU-1003", "纯棉四件套", "1.8m 床 灰色", 29900}, {"SKU-1004", "智能电饭煲", "4L", 49900},
		{"SKU-1005", "运动跑鞋", "42 码", 35900}, {"SKU-1006", "护手霜礼盒", "3 支装", 8900},
		{"SKU-1007", "机械键盘", "青轴 87 键", 45900}, {"SKU-1008", "有机绿茶", "250g 罐装", 6800},
	}
	platforms = []struct{ code, shop string }{{"tmall", "星河家居天猫旗舰店"}, {"jd", "星河京东自营旗舰店"},
		{"douyin", "星河抖音小店"}, {"pdd", "星河拼多多官方店"}, {"wechat_shop", "星河微信小店"}}
	carriers = []struct{ code, name string }{{"SF", "顺丰速运"}, {"SF", "顺丰速运"}, {"SF", "顺丰速运"},
		{"YTO", "圆通速递"}, {"ZTO", "中通快递"}, {"JD", "京东物流"}}
	places = [][4]string{{"上海", "上海市", "浦东新区", "世纪大道**号"}, {"浙江省", "杭州市", "西湖区", "文三路***号"},
		{"广东省", "深圳市", "南山区", "科技园南路**号"}, {"北京", "北京市", "朝阳区", "建国路**号院"},
		{"四川省", "成都市", "武侯区", "天府大道***号"}}
	// status by age: recent orders are still moving, old ones are done.
	recentStatuses = []string{"WAIT_PAY", "WAIT_SEND", "SENT", "SENT", "REFUNDING"}
	olderStatuses  = []string{"SIGNED", "FINISHED", "FINISHED", "CLOSED"}
)

func yuan(fen int) string { return fmt.Sprintf("%d.%02d", fen/100, fen%100) }

// waybillNo returns a plausible waybill number of a carrier: SF + 13 digits (SF1234567890123),
// YT + 13 digits, 14 digits for ZTO, JD + 13 digits.
func waybillNo(r *rand.Rand, carrier string) string {
	switch carrier {
	case "SF":
		return fmt.Sprintf("SF1%012d", r.Int64N(1e12))
	case "YTO":
		return fmt.Sprintf("YT7%012d", r.Int64N(1e12))
	case "ZTO":
		return fmt.Sprintf("7%013d", r.Int64N(1e13))
	default:
		return fmt.Sprintf("JD00%011d", r.Int64N(1e11))
	}
}

// generate makes n orders for mobile m (s.mu held or not yet shared).
func (s *Sim) generate(m, name string, n int) {
	s.generated[m] = true
	r := rand.New(rand.NewPCG(hash(m, s.cfg.Seed), 0x6f6d73))
	if name == "" {
		name = surnames[r.IntN(len(surnames))] + "先生"
	}
	masked := omswire.MaskMobile(m)
	receiverName := string([]rune(name)[:1]) + "*"
	place := places[r.IntN(len(places))]
	var nos []string
	for i := 0; i < n; i++ {
		days := i*9 + r.IntN(9) // newest first, spread over the last weeks
		created := s.today.Add(-time.Duration(days)*24*time.Hour + time.Duration(8*3600+r.IntN(14*3600))*time.Second)
		p := platforms[r.IntN(len(platforms))]
		status := olderStatuses[r.IntN(len(olderStatuses))]
		if days < 7 {
			status = recentStatuses[r.IntN(len(recentStatuses))]
		}
		o := &omswire.Order{
			OrderNo:         fmt.Sprintf("SO%s%010d", created.Format("060102"), r.Int64N(1e10)),
			Platform:        p.code,
			PlatformOrderNo: fmt.Sprintf("2%018d", r.Int64N(1e18)),
			ShopName:        p.shop, Status: status, StatusText: omswire.StatusText[status],
			CreatedAt: omswire.FormatTime(created), Currency: "CNY", BuyerMobile: masked,
			Receiver:        omswire.Receiver{Name: receiverName, Mobile: masked, Province: place[0], City: place[1], District: place[2], Address: place[3]},
			AftersaleStatus: "NONE", Items: []omswire.Item{}, Waybills: []omswire.Waybill{},
		}
		total := 0
		for range 1 + r.IntN(3) {
			it := catalog[r.IntN(len(catalog))]
			q := 1 + r.IntN(2)
			o.Items = append(o.Items, omswire.Item{SKUCode: it.sku, ItemName: it.name, Spec: it.spec, Quantity: q,
				Price: yuan(it.fen), Amount: yuan(it.fen * q)})
			total += it.fen * q
		}
		discount := []int{0, 500, 1000, 2000}[r.IntN(4)]
		freight := []int{0, 0, 800, 1000}[r.IntN(4)]
		o.TotalAmount, o.DiscountAmount, o.FreightAmount = yuan(total), yuan(discount), yuan(freight)
		o.PayAmount = yuan(total - discount + freight)
		if status != "WAIT_PAY" && status != "CLOSED" {
			o.PaidAt = omswire.FormatTime(created.Add(time.Duration(30+r.IntN(600)) * time.Second))
		}
		switch status {
		case "SENT", "SIGNED", "FINISHED", "REFUNDING":
			c := carriers[r.IntN(len(carriers))]
			o.Waybills = append(o.Waybills, omswire.Waybill{LogisticsCode: c.code, LogisticsName: c.name,
				WaybillNo: waybillNo(r, c.code), ShippedAt: omswire.FormatTime(created.Add(20 * time.Hour))})
		}
		if status == "REFUNDING" {
			o.AftersaleStatus = "REFUNDING"
		}
		s.orders[o.OrderNo] = o
		nos = append(nos, o.OrderNo)
	}
	s.byMobile[m] = nos
}

// respond writes an envelope.
func (s *Sim) respond(w http.ResponseWriter, code int, msg string, data any) {
	s.mu.Lock()
	s.reqSeq++
	id := fmt.Sprintf("sim-%d-%06d", s.cfg.Now().Unix(), s.reqSeq)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if code == omswire.CodeRateLimited {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(omswire.Status(code))
	_, _ = w.Write(omswire.NewEnvelope(code, msg, id, data))
}

func (s *Sim) fail(w http.ResponseWriter, _ *http.Request, code string) {
	switch n, err := strconv.Atoi(code); {
	case code == "":
		s.respond(w, omswire.CodeSystemError, "系统繁忙，请稍后再试", nil)
	case err != nil || n <= 0:
		s.respond(w, omswire.CodeSystemError, "系统繁忙 ("+code+")", nil)
	case n == omswire.CodeRateLimited:
		s.respond(w, n, "请求过于频繁，请稍后再试", nil)
	default:
		s.respond(w, n, "injected error", nil)
	}
}

// verify checks the signature and the nonce; on failure it answers and records the rejection.
func (s *Sim) verify(w http.ResponseWriter, r *http.Request, op string, body []byte) bool {
	now := s.cfg.Now()
	v, err := omswire.Verify(r, body, func(k string) (string, bool) { return s.cfg.AppSecret, k == s.cfg.AppKey }, now)
	code, msg := 0, ""
	switch {
	case errors.Is(err, omswire.ErrMissing):
		code, msg = omswire.CodeMissingParam, err.Error()
	case errors.Is(err, omswire.ErrAppKey):
		code, msg = omswire.CodeInvalidAppKey, "app_key 无效"
	case errors.Is(err, omswire.ErrTimestamp):
		code, msg = omswire.CodeTimestamp, "timestamp 已过期"
	case errors.Is(err, omswire.ErrSignature):
		code, msg = omswire.CodeSignature, "签名错误"
	case err != nil:
		code, msg = omswire.CodeSignature, err.Error()
	}
	if code == 0 {
		s.mu.Lock()
		if until, seen := s.nonces[v.Nonce]; seen && now.Before(until) {
			code, msg = omswire.CodeNonceReplayed, "nonce 重复"
		} else {
			if len(s.nonces) > 10000 {
				for n, until := range s.nonces {
					if now.After(until) {
						delete(s.nonces, n)
					}
				}
			}
			s.nonces[v.Nonce] = now.Add(2 * omswire.Window)
		}
		s.mu.Unlock()
	}
	if code != 0 {
		s.env.Record(Vendor, op, "", map[string]string{"path": r.URL.Path}, errors.New(msg))
		s.respond(w, code, msg, nil)
		return false
	}
	return true
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request) {
	if !s.verify(w, r, OpList, nil) {
		return
	}
	q := r.URL.Query()
	m := omswire.NationalMobile(q.Get("mobile"))
	if q.Get("mobile") == "" {
		s.respond(w, omswire.CodeMissingParam, "mobile 不能为空", nil)
		return
	}
	page, size := 1, 10
	var err1, err2 error
	if v := q.Get("page"); v != "" {
		page, err1 = strconv.Atoi(v)
	}
	if v := q.Get("page_size"); v != "" {
		size, err2 = strconv.Atoi(v)
	}
	if err1 != nil || err2 != nil || page < 1 || size < 1 || size > 50 {
		s.respond(w, omswire.CodeInvalidParam, "page >= 1, page_size 1..50", nil)
		return
	}
	all := s.Orders(m)
	sort.SliceStable(all, func(i, j int) bool { return all[i].CreatedAt > all[j].CreatedAt })
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	s.env.Record(Vendor, OpList, omswire.MaskMobile(m), map[string]any{"page": page, "page_size": size, "total": len(all)}, nil)
	s.respond(w, omswire.CodeOK, "success", omswire.OrderPage{Total: len(all), Page: page, PageSize: size, Orders: all[from:to]})
}

func (s *Sim) get(w http.ResponseWriter, r *http.Request) {
	if !s.verify(w, r, OpGet, nil) {
		return
	}
	no := r.PathValue("order_no")
	s.mu.Lock()
	o, ok := s.orders[no]
	var cp omswire.Order
	if ok {
		cp = *o
	}
	s.mu.Unlock()
	s.env.Record(Vendor, OpGet, no, map[string]bool{"found": ok}, nil)
	if !ok {
		s.respond(w, omswire.CodeOrderNotFound, "订单不存在", nil)
		return
	}
	s.respond(w, omswire.CodeOK, "success", cp)
}

func (s *Sim) archive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.respond(w, omswire.CodeInvalidParam, "body too large", nil)
		return
	}
	if !s.verify(w, r, OpArchive, body) {
		return
	}
	var rec omswire.ServiceRecord
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		s.respond(w, omswire.CodeInvalidParam, "body: "+err.Error(), nil)
		return
	}
	_, errOpen := omswire.ParseTime(rec.OpenedAt)
	_, errClose := omswire.ParseTime(rec.ClosedAt)
	switch {
	case rec.ExternalID == "" || len(rec.ExternalID) > 128:
		s.respond(w, omswire.CodeMissingParam, "external_id 必填，最长 128", nil)
		return
	case strings.TrimSpace(rec.Summary) == "" || len([]rune(rec.Summary)) > 2000:
		s.respond(w, omswire.CodeInvalidParam, "summary 必填，最长 2000 字", nil)
		return
	case rec.Outcome == "" || rec.Source == "" || rec.Channels == nil:
		s.respond(w, omswire.CodeMissingParam, "outcome, source, channels 必填", nil)
		return
	case errOpen != nil || errClose != nil:
		s.respond(w, omswire.CodeInvalidParam, "opened_at / closed_at 格式 yyyy-MM-dd HH:mm:ss", nil)
		return
	}
	s.mu.Lock()
	if prev, dup := s.records[rec.ExternalID]; dup {
		s.duplicates++
		s.mu.Unlock()
		prev.Duplicate = true
		s.respond(w, omswire.CodeOK, "success", prev)
		return
	}
	if _, ok := s.orders[rec.OrderNo]; !ok {
		s.mu.Unlock()
		s.env.Record(Vendor, OpArchive, rec.OrderNo, rec, errors.New("order not found"))
		s.respond(w, omswire.CodeOrderNotFound, "订单不存在", nil)
		return
	}
	res := omswire.ServiceRecordResult{RecordID: fmt.Sprintf("SR%s%06d", s.today.Format("20060102"), len(s.records)+1),
		OrderNo: rec.OrderNo, ExternalID: rec.ExternalID, CreatedAt: omswire.FormatTime(s.cfg.Now())}
	s.records[rec.ExternalID] = res
	s.written = append(s.written, rec)
	s.mu.Unlock()
	s.env.Record(Vendor, OpArchive, rec.OrderNo, rec, nil)
	s.respond(w, omswire.CodeOK, "success", res)
}

func (s *Sim) remark(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.respond(w, omswire.CodeInvalidParam, "body too large", nil)
		return
	}
	if !s.verify(w, r, OpRemark, body) {
		return
	}
	var rm omswire.RecordRemark
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rm); err != nil {
		s.respond(w, omswire.CodeInvalidParam, "body: "+err.Error(), nil)
		return
	}
	switch {
	case rm.ExternalID == "" || rm.RemarkID == "" || len(rm.RemarkID) > 128 || rm.Kind == "" || rm.Source == "":
		s.respond(w, omswire.CodeMissingParam, "external_id, remark_id（最长 128）, kind, source 必填", nil)
		return
	case strings.TrimSpace(rm.Content) == "" || len([]rune(rm.Content)) > 2000:
		s.respond(w, omswire.CodeInvalidParam, "content 必填，最长 2000 字", nil)
		return
	}
	s.mu.Lock()
	rec, ok := s.records[rm.ExternalID]
	if !ok {
		s.mu.Unlock()
		s.env.Record(Vendor, OpRemark, "", rm, errors.New("service record not found"))
		s.respond(w, omswire.CodeRecordNotFound, "服务记录不存在", nil)
		return
	}
	if prev, dup := s.remarkIDs[rm.ExternalID][rm.RemarkID]; dup {
		s.mu.Unlock()
		prev.Duplicate = true
		s.respond(w, omswire.CodeOK, "success", prev)
		return
	}
	res := omswire.RecordRemarkResult{RecordID: rec.RecordID, RemarkID: rm.RemarkID, CreatedAt: omswire.FormatTime(s.cfg.Now())}
	if s.remarkIDs[rm.ExternalID] == nil {
		s.remarkIDs[rm.ExternalID] = map[string]omswire.RecordRemarkResult{}
	}
	s.remarkIDs[rm.ExternalID][rm.RemarkID] = res
	s.remarks[rm.ExternalID] = append(s.remarks[rm.ExternalID], rm)
	s.mu.Unlock()
	s.env.Record(Vendor, OpRemark, rec.OrderNo, rm, nil)
	s.respond(w, omswire.CodeOK, "success", res)
}
