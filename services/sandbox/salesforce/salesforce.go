// Package salesforce simulates the Salesforce REST API the crm connector calls (vendor reference
// §6), mounted at /sandbox/salesforce, which is both the My Domain login host and the instance:
//
//	POST /sandbox/salesforce/services/oauth2/token                  OAuth 2.0 client credentials
//	GET  /sandbox/salesforce/services/data/{version}/query?q=SOQL   SOQL query
//	GET  /sandbox/salesforce/services/data/{version}/query/{cursor} next batch of a query
//	GET  /sandbox/salesforce/services/data/{version}/sobjects/Contact/describe  Contact's fields
//
// The describe answers the real response's shape (name, label, queryable, fields with name,
// type, custom, filterable, relationshipName, ...) for the fields the simulator serves, less
// Config.HiddenFields: an org without those custom fields, or whose field-level security hides
// them from the connected app's user. Queries naming a hidden field get 400 INVALID_FIELD, as
// Salesforce answers them.
//
// The token endpoint takes grant_type=client_credentials with the client id and secret in the form
// body or as HTTP Basic, answers {access_token, signature, scope, instance_url, id, token_type,
// issued_at} with signature = Base64(HMAC-SHA256(client_secret, id + issued_at)), and refuses wrong
// credentials with 400 invalid_client (unknown client id: invalid_client_id). Tokens carry no
// expiry, as Salesforce's; a session lives Config.SessionTTL and ExpireSessions ends every session
// at once. A query with a missing, unknown or expired token gets 401 INVALID_SESSION_ID.
//
// Queries are parsed with the SOQL subset of pkg/wire/salesforce (SELECT ... FROM Contact WHERE
// ... ORDER BY ... LIMIT n): bad SOQL → 400 MALFORMED_QUERY, an object other than Contact or
// Account → 400 INVALID_TYPE, an unknown field → 400 INVALID_FIELD, an unknown API version → 404
// NOT_FOUND. Text comparisons are case-insensitive, as in Salesforce. Batches hold at most
// Config.BatchSize records (2000), the rest behind nextRecordsUrl.
//
// The Contacts are the simulated customers of sim.Population(Config.Customers, Config.Seed):
// every customer but one in ten is known, with the phone stored in one of the formats users type
// (E.164, 13800138000, 138 0013 8000, +86 138 0013 8000, ...), sometimes as MobilePhone next to
// an office landline, the email sometimes in another case, and a membership number
// (Member_Number__c) and VIP level (VIP_Level__c) for most. One customer in seven has an older
// duplicate Contact, so lookups must order by LastModifiedDate.
//
// Fault keys: "salesforce oauth2/token", "salesforce query" and "salesforce describe". Injected codes render in the
// vendor's shape: REQUEST_LIMIT_EXCEEDED (403), INVALID_SESSION_ID (401), MALFORMED_QUERY (400),
// SERVER_UNAVAILABLE (503), "" (500 UNKNOWN_EXCEPTION); on the token route a lower-case code is an
// OAuth error (400 {"error": code}), anything else 503.
package salesforce

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

// Vendor is the simulator's name under /sandbox/.
const Vendor = "salesforce"

// Fault keys (route ops).
const (
	OpToken    = "oauth2/token"
	OpQuery    = "query"
	OpDescribe = "describe"
)

// Config configures the simulator.
type Config struct {
	// ClientID and ClientSecret are the connected app's consumer key and secret (required).
	ClientID, ClientSecret string
	// Customers and Seed select the simulated population (sim.Population) the Contacts are made
	// from; Customers 0 means 40, the sandbox default.
	Customers int
	Seed      uint64
	// OrgID is the 18-character organisation id (default 00D5g0000000007EAA).
	OrgID string
	// SessionTTL is how long a token stays valid (default 2h, Salesforce's default session timeout).
	SessionTTL time.Duration
	// BatchSize is the most records one query response holds (default and maximum 2000).
	BatchSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HiddenFields are Contact fields (API names) the simulated org does not have or does not
	// let the client read, e.g. VIP_Level__c: left out of the describe, refused by queries.
	HiddenFields []string
}

// Contact is one simulated Contact (the fields the simulator serves).
type Contact struct {
	ID, FirstName, LastName, Name, Phone, MobilePhone, Email, Title, MailingCity string
	AccountID, AccountName                                                       string
	MemberNumber, VIPLevel                                                       string
	LastModified                                                                 time.Time
	// Customer is the sim.Customer.ID the contact was made from.
	Customer int
}

// Sim is the running simulator.
type Sim struct {
	cfg      Config
	env      *sim.Env
	contacts []Contact

	mu       sync.Mutex
	sessions map[string]time.Time // token → expiry
	cursors  map[string]cursor
	seq      int
}

type cursor struct {
	version string
	fields  []string
	rows    []Contact
	total   int
	expires time.Time
}

// New builds the simulator's Contacts and mounts its routes on env.
func New(env *sim.Env, cfg Config) (*Sim, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("salesforce sandbox: ClientID and ClientSecret are required")
	}
	if cfg.Customers == 0 {
		cfg.Customers = 40
	}
	if cfg.Customers < 0 {
		return nil, errors.New("salesforce sandbox: Customers must be >= 0")
	}
	if cfg.OrgID == "" {
		cfg.OrgID = salesforceID("00D", 7)
	}
	if len(cfg.OrgID) != 18 {
		return nil, fmt.Errorf("salesforce sandbox: OrgID %q must have 18 characters", cfg.OrgID)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 2 * time.Hour
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > 2000 {
		cfg.BatchSize = 2000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sim{cfg: cfg, env: env, sessions: map[string]time.Time{}, cursors: map[string]cursor{}}
	s.contacts = Contacts(sim.Population(cfg.Customers, cfg.Seed), cfg.Now())
	env.Handle(sim.Route{Vendor: Vendor, Op: OpToken, Pattern: "POST " + sfwire.TokenPath, Handler: s.token, Fail: failToken})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpQuery, Pattern: "GET " + sfwire.DataPrefix + "{version}/query", Handler: s.query, Fail: failREST})
	env.Handle(sim.Route{Vendor: Vendor, Op: OpDescribe, Pattern: "GET " + sfwire.DataPrefix + "{version}/sobjects/{object}/describe", Handler: s.describe, Fail: failREST})
	env.Handle(sim.Route{Vendor: Vendor, Op: "query/more", Pattern: "GET " + sfwire.DataPrefix + "{version}/query/{cursor}", Handler: s.more, Fail: failREST})
	return s, nil
}

// Contacts returns the simulator's Contacts.
func (s *Sim) Contacts() []Contact { return append([]Contact(nil), s.contacts...) }

// ExpireSessions ends every session, as a session timeout or an admin's revocation does: the next
// query with any issued token gets 401 INVALID_SESSION_ID.
func (s *Sim) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
}

// Contacts makes the Contacts of a population (see the package documentation); now anchors
// LastModifiedDate.
func Contacts(pop []sim.Customer, now time.Time) []Contact {
	companies := []string{"上海星河贸易有限公司", "杭州云帆科技有限公司", "深圳前海物流有限公司", "北京华联百货", "Acme China Ltd.", "广州南方电器有限公司"}
	cities := []string{"上海", "杭州", "深圳", "北京", "广州", "成都"}
	titles := []string{"采购经理", "店长", "Operations Manager", "个人客户", "行政主管"}
	vip := []string{"普通会员", "银卡", "金卡", "钻石"}
	base := now.UTC().Truncate(24 * time.Hour)
	var out []Contact
	n := 0
	for _, c := range pop {
		if c.ID%10 == 0 {
			continue // one in ten is not in the CRM
		}
		last, first := splitName(c.Name)
		mobile := phoneAsTyped(c.Phone, c.ID)
		ct := Contact{
			FirstName: first, LastName: last, Name: last + first, Email: c.Email,
			Title: titles[c.ID%len(titles)], MailingCity: cities[c.ID%len(cities)],
			AccountName: companies[c.ID%len(companies)], AccountID: salesforceID("001", c.ID%len(companies)+1),
			LastModified: base.Add(-time.Duration(c.ID%30) * 24 * time.Hour).Add(time.Duration(c.ID) * time.Minute),
			Customer:     c.ID,
		}
		if c.ID%3 == 0 {
			ct.Phone, ct.MobilePhone = fmt.Sprintf("+86 21 %04d %04d", 5000+c.ID%5000, c.ID*37%10000), mobile
		} else {
			ct.Phone = mobile
		}
		if c.ID%4 == 1 {
			ct.Email = strings.ToUpper(c.Email[:1]) + c.Email[1:] // stored as typed: Customer1@example.com
		}
		if c.ID%5 != 4 {
			ct.MemberNumber = fmt.Sprintf("M%08d", 10000000+c.ID*7919%90000000)
			ct.VIPLevel = vip[c.ID%len(vip)]
		}
		n++
		ct.ID = salesforceID("003", n)
		out = append(out, ct)
		if c.ID%7 == 0 {
			// An older duplicate (a lead converted twice): same phone, no membership.
			dup := ct
			n++
			dup.ID, dup.MemberNumber, dup.VIPLevel, dup.Title = salesforceID("003", n), "", "", ""
			dup.LastModified = ct.LastModified.Add(-400 * 24 * time.Hour)
			out = append(out, dup)
		}
	}
	return out
}

func splitName(name string) (last, first string) {
	for i := range name {
		if i > 0 {
			return name[:i], name[i:]
		}
	}
	return name, ""
}

// phoneAsTyped writes an E.164 number in one of the formats users type into Salesforce.
func phoneAsTyped(e164 string, id int) string {
	if !strings.HasPrefix(e164, "+86") || len(e164) != 14 {
		return e164
	}
	n := e164[3:]
	g := n[:3] + " " + n[3:7] + " " + n[7:]
	formats := []string{e164, n, g, "+86 " + g, n[:3] + "-" + n[3:7] + "-" + n[7:], "(+86) " + g, "+86 " + n, "0086" + n}
	return formats[id%len(formats)]
}

// salesforceID returns an 18-character id with the given key prefix (003 Contact, 001 Account):
// 15 case-sensitive characters and the 3-character case checksum Salesforce appends.
func salesforceID(prefix string, n int) string {
	const b62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	id := []byte(prefix + "5g00000")
	tail := make([]byte, 5)
	v := n
	for i := 4; i >= 0; i-- {
		tail[i] = b62[v%62]
		v /= 62
	}
	id = append(id, tail...)
	const sfx = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	for chunk := 0; chunk < 3; chunk++ {
		flags := 0
		for i := 0; i < 5; i++ {
			if c := id[chunk*5+i]; c >= 'A' && c <= 'Z' {
				flags |= 1 << i
			}
		}
		id = append(id, sfx[flags])
	}
	return string(id)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	sim.WriteJSON(w, status, "application/json;charset=UTF-8", v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(sfwire.ErrorBody(sfwire.APIError{Message: msg, ErrorCode: code}))
}

func failToken(w http.ResponseWriter, _ *http.Request, code string) {
	if code != "" && code == strings.ToLower(code) {
		writeJSON(w, http.StatusBadRequest, sfwire.OAuthError{Code: code, Description: "injected " + code})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, sfwire.OAuthError{Code: "temporarily_unavailable", Description: "service temporarily unavailable"})
}

func failREST(w http.ResponseWriter, _ *http.Request, code string) {
	switch code {
	case sfwire.CodeRequestLimit:
		writeErr(w, http.StatusForbidden, code, "TotalRequests Limit exceeded.")
	case sfwire.CodeInvalidSession:
		writeErr(w, http.StatusUnauthorized, code, "Session expired or invalid")
	case sfwire.CodeServerUnavailable:
		writeErr(w, http.StatusServiceUnavailable, code, "Server temporarily unavailable")
	case "":
		writeErr(w, http.StatusInternalServerError, sfwire.CodeUnknownException,
			"An unexpected error occurred. Please include this ErrorId if you contact support: 1974263058-98765 (-1402512458)")
	default:
		writeErr(w, http.StatusBadRequest, code, "injected "+code)
	}
}

// instanceURL is the simulator's base as the caller reached it.
func instanceURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + sim.Prefix + Vendor
}

func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeJSON(w, http.StatusBadRequest, sfwire.OAuthError{Code: sfwire.OAuthInvalidRequest, Description: "must use application/x-www-form-urlencoded"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, sfwire.OAuthError{Code: sfwire.OAuthInvalidRequest, Description: "bad form body"})
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		id, secret = u, p
	}
	reject := func(code, desc string) {
		s.env.Record(Vendor, OpToken, id, map[string]string{"grant_type": r.PostForm.Get("grant_type"), "client_id": id}, errors.New(code))
		writeJSON(w, http.StatusBadRequest, sfwire.OAuthError{Code: code, Description: desc})
	}
	switch {
	case r.PostForm.Get("grant_type") != "client_credentials":
		reject(sfwire.OAuthUnsupportedType, "grant type not supported")
		return
	case id != s.cfg.ClientID:
		reject("invalid_client_id", "client identifier invalid")
		return
	case secret != s.cfg.ClientSecret:
		reject(sfwire.OAuthInvalidClient, "invalid client credentials")
		return
	}
	raw := make([]byte, 72)
	_, _ = rand.Read(raw)
	tok := s.cfg.OrgID[:15] + "!" + strings.NewReplacer("+", ".", "/", "_", "=", "").Replace(base64.StdEncoding.EncodeToString(raw))
	now := s.cfg.Now()
	s.mu.Lock()
	s.sessions[tok] = now.Add(s.cfg.SessionTTL)
	s.mu.Unlock()
	inst := instanceURL(r)
	resp := sfwire.TokenResponse{AccessToken: tok, Scope: "api", InstanceURL: inst, APIInstanceURL: inst,
		ID: inst + "/id/" + s.cfg.OrgID + "/0055g00000SimUsrAAA", TokenType: "Bearer", IssuedAt: strconv.FormatInt(now.UnixMilli(), 10)}
	resp.Signature = sfwire.TokenSignature(s.cfg.ClientSecret, resp.ID, resp.IssuedAt)
	s.env.Record(Vendor, OpToken, id, map[string]string{"grant_type": "client_credentials", "client_id": id}, nil)
	writeJSON(w, http.StatusOK, resp)
}

// authorized checks the bearer token; it answers 401 itself when it returns false.
func (s *Sim) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.sessions[tok]
	if known && !s.cfg.Now().Before(exp) {
		delete(s.sessions, tok)
		known = false
	}
	s.mu.Unlock()
	if !ok || !known {
		writeErr(w, http.StatusUnauthorized, sfwire.CodeInvalidSession, "Session expired or invalid")
		return false
	}
	return true
}

func supportedVersion(v string) bool {
	if !sfwire.ValidAPIVersion(v) {
		return false
	}
	n, err := strconv.ParseFloat(v[1:], 64)
	return err == nil && n >= 31 && n <= 62
}

func (s *Sim) query(w http.ResponseWriter, r *http.Request) {
	version := r.PathValue("version")
	if !supportedVersion(version) {
		writeErr(w, http.StatusNotFound, sfwire.CodeNotFound, "The requested resource does not exist")
		return
	}
	if !s.authorized(w, r) {
		return
	}
	soql := r.URL.Query().Get("q")
	q, err := sfwire.ParseSOQL(soql)
	if err != nil {
		s.env.Record(Vendor, OpQuery, "", map[string]string{"q": soql}, err)
		writeErr(w, http.StatusBadRequest, sfwire.CodeMalformedQuery, err.Error())
		return
	}
	rows, code, msg := s.run(q)
	if code != "" {
		s.env.Record(Vendor, OpQuery, "", map[string]string{"q": soql}, errors.New(code))
		writeErr(w, http.StatusBadRequest, code, msg)
		return
	}
	s.env.Record(Vendor, OpQuery, "", map[string]any{"q": soql, "total": len(rows)}, nil)
	s.respond(w, version, q.Fields, rows, len(rows))
}

func (s *Sim) more(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	c, ok := s.cursors[r.PathValue("cursor")]
	delete(s.cursors, r.PathValue("cursor"))
	s.mu.Unlock()
	if !ok || s.cfg.Now().After(c.expires) || c.version != r.PathValue("version") {
		writeErr(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	s.respond(w, c.version, c.fields, c.rows, c.total)
}

func (s *Sim) respond(w http.ResponseWriter, version string, fields []string, rows []Contact, total int) {
	batch := rows
	resp := map[string]any{"totalSize": total, "done": true}
	if len(rows) > s.cfg.BatchSize {
		batch = rows[:s.cfg.BatchSize]
		s.mu.Lock()
		s.seq++
		id := fmt.Sprintf("01g5g00000Sim%04d-%d", s.seq, total-len(rows)+s.cfg.BatchSize)
		s.cursors[id] = cursor{version: version, fields: fields, rows: rows[s.cfg.BatchSize:], total: total, expires: s.cfg.Now().Add(15 * time.Minute)}
		s.mu.Unlock()
		resp["done"], resp["nextRecordsUrl"] = false, sfwire.QueryPath(version)+"/"+id
	}
	records := make([]map[string]any, len(batch))
	for i, c := range batch {
		records[i] = render(version, c, fields)
	}
	resp["records"] = records
	writeJSON(w, http.StatusOK, resp)
}

// field returns a Contact field by API name ("" and false for an unknown field).
func (c Contact) field(name string) (string, bool) {
	switch strings.ToLower(name) {
	case "id":
		return c.ID, true
	case "name":
		return c.Name, true
	case "firstname":
		return c.FirstName, true
	case "lastname":
		return c.LastName, true
	case "phone":
		return c.Phone, true
	case "mobilephone":
		return c.MobilePhone, true
	case "email":
		return c.Email, true
	case "title":
		return c.Title, true
	case "mailingcity":
		return c.MailingCity, true
	case "accountid":
		return c.AccountID, true
	case "account.name":
		return c.AccountName, true
	case "member_number__c":
		return c.MemberNumber, true
	case "vip_level__c":
		return c.VIPLevel, true
	case "lastmodifieddate":
		return c.LastModified.UTC().Format("2006-01-02T15:04:05.000+0000"), true
	}
	return "", false
}

// canonical is the API name of a field as Salesforce spells it in results.
var canonical = map[string]string{"id": "Id", "name": "Name", "firstname": "FirstName", "lastname": "LastName",
	"phone": "Phone", "mobilephone": "MobilePhone", "email": "Email", "title": "Title", "mailingcity": "MailingCity",
	"accountid": "AccountId", "member_number__c": "Member_Number__c", "vip_level__c": "VIP_Level__c",
	"lastmodifieddate": "LastModifiedDate"}

func render(version string, c Contact, fields []string) map[string]any {
	rec := map[string]any{"attributes": map[string]string{"type": "Contact", "url": sfwire.DataPrefix + version + "/sobjects/Contact/" + c.ID}}
	for _, f := range fields {
		v, _ := c.field(f)
		var val any = v
		if v == "" {
			val = nil
		}
		if strings.EqualFold(f, "Account.Name") {
			rec["Account"] = map[string]any{"attributes": map[string]string{"type": "Account",
				"url": sfwire.DataPrefix + version + "/sobjects/Account/" + c.AccountID}, "Name": val}
			continue
		}
		rec[canonical[strings.ToLower(f)]] = val
	}
	return rec
}

// run evaluates q over the Contacts: rows, or an error code and message.
func (s *Sim) run(q *sfwire.Query) ([]Contact, string, string) {
	if !strings.EqualFold(q.Object, "Contact") {
		return nil, sfwire.CodeInvalidType, fmt.Sprintf("sObject type '%s' is not supported.", q.Object)
	}
	check := func(f string) (string, string) {
		if _, ok := (Contact{}).field(f); !ok || s.hidden(f) {
			return sfwire.CodeInvalidField, fmt.Sprintf("No such column '%s' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.", f)
		}
		return "", ""
	}
	for _, f := range q.Fields {
		if code, msg := check(f); code != "" {
			return nil, code, msg
		}
	}
	for _, o := range q.OrderBy {
		if code, msg := check(o.Field); code != "" {
			return nil, code, msg
		}
	}
	var bad string
	var rows []Contact
	for _, c := range s.contacts {
		ok, unknown := match(q.Where, c)
		if unknown != "" {
			bad = unknown
			break
		}
		if ok {
			rows = append(rows, c)
		}
	}
	if bad != "" {
		code, msg := check(bad)
		return nil, code, msg
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for _, o := range q.OrderBy {
			a, _ := rows[i].field(o.Field)
			b, _ := rows[j].field(o.Field)
			if a == b {
				continue
			}
			return (a < b) != o.Desc
		}
		return false
	})
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
	}
	return rows, "", ""
}

// hidden reports whether field is one of Config.HiddenFields.
func (s *Sim) hidden(field string) bool {
	for _, h := range s.cfg.HiddenFields {
		if strings.EqualFold(h, field) || (strings.Contains(field, ".") && strings.EqualFold(h, "AccountId") && strings.EqualFold(field, "Account.Name")) {
			return true
		}
	}
	return false
}

// contactFields are the Contact fields the simulator serves, as a describe lists them.
var contactFields = []sfwire.DescribeField{
	{Name: "Id", Label: "Contact ID", Type: "id", Length: 18, Filterable: true, Sortable: true},
	{Name: "LastName", Label: "Last Name", Type: "string", Length: 80, Filterable: true, Sortable: true},
	{Name: "FirstName", Label: "First Name", Type: "string", Length: 40, Nillable: true, Filterable: true, Sortable: true},
	{Name: "Name", Label: "Full Name", Type: "string", Length: 121, Filterable: true, Sortable: true},
	{Name: "AccountId", Label: "Account ID", Type: "reference", Length: 18, Nillable: true, Filterable: true, Sortable: true,
		RelationshipName: ptr("Account"), ReferenceTo: []string{"Account"}},
	{Name: "MailingCity", Label: "Mailing City", Type: "string", Length: 40, Nillable: true, Filterable: true, Sortable: true},
	{Name: "Phone", Label: "Business Phone", Type: "phone", Length: 40, Nillable: true, Filterable: true, Sortable: true},
	{Name: "MobilePhone", Label: "Mobile Phone", Type: "phone", Length: 40, Nillable: true, Filterable: true, Sortable: true},
	{Name: "Email", Label: "Email", Type: "email", Length: 80, Nillable: true, Filterable: true, Sortable: true},
	{Name: "Title", Label: "Title", Type: "string", Length: 128, Nillable: true, Filterable: true, Sortable: true},
	{Name: "LastModifiedDate", Label: "Last Modified Date", Type: "datetime", Filterable: true, Sortable: true},
	{Name: "Member_Number__c", Label: "Member Number", Type: "string", Length: 32, Custom: true, Nillable: true, Filterable: true, Sortable: true},
	{Name: "VIP_Level__c", Label: "VIP Level", Type: "picklist", Length: 255, Custom: true, Nillable: true, Filterable: true, Sortable: true},
}

func ptr(s string) *string { return &s }

// describe answers GET .../sobjects/{object}/describe for Contact (Account and others: 404
// NOT_FOUND, as for an object the user cannot see).
func (s *Sim) describe(w http.ResponseWriter, r *http.Request) {
	version, object := r.PathValue("version"), r.PathValue("object")
	if !supportedVersion(version) {
		writeErr(w, http.StatusNotFound, sfwire.CodeNotFound, "The requested resource does not exist")
		return
	}
	if !s.authorized(w, r) {
		return
	}
	if !strings.EqualFold(object, "Contact") {
		s.env.Record(Vendor, OpDescribe, "", map[string]string{"object": object}, errors.New(sfwire.CodeNotFound))
		writeErr(w, http.StatusNotFound, sfwire.CodeNotFound, "The requested resource does not exist")
		return
	}
	fields := make([]sfwire.DescribeField, 0, len(contactFields))
	for _, f := range contactFields {
		if !s.hidden(f.Name) {
			fields = append(fields, f)
		}
	}
	s.env.Record(Vendor, OpDescribe, "", map[string]any{"object": "Contact", "fields": len(fields)}, nil)
	writeJSON(w, http.StatusOK, sfwire.Describe{Name: "Contact", Label: "Contact", Queryable: true, Retrieveable: true, Fields: fields,
		URLs: map[string]string{"describe": sfwire.DescribePath(version, "Contact"), "sobject": sfwire.DataPrefix + version + "/sobjects/Contact"}})
}

// match evaluates a condition; unknown names a field the Contact does not have.
func match(x sfwire.Expr, c Contact) (ok bool, unknown string) {
	switch x := x.(type) {
	case nil:
		return true, ""
	case *sfwire.Or:
		for _, t := range x.Terms {
			ok, u := match(t, c)
			if u != "" || ok {
				return ok, u
			}
		}
		return false, ""
	case *sfwire.And:
		for _, t := range x.Terms {
			ok, u := match(t, c)
			if u != "" || !ok {
				return ok, u
			}
		}
		return true, ""
	case *sfwire.Not:
		ok, u := match(x.X, c)
		return !ok, u
	case *sfwire.In:
		v, known := c.field(x.Field)
		if !known {
			return false, x.Field
		}
		for _, val := range x.Values {
			if equal(v, val) {
				return !x.Not, ""
			}
		}
		return x.Not, ""
	case *sfwire.Cmp:
		v, known := c.field(x.Field)
		if !known {
			return false, x.Field
		}
		switch x.Op {
		case "=":
			return equal(v, x.Value), ""
		case "!=":
			return !equal(v, x.Value), ""
		case "LIKE":
			return like(v, x.Value.Str), ""
		}
		a, b := strings.ToLower(v), strings.ToLower(x.Value.Str)
		switch x.Op {
		case "<":
			return v != "" && a < b, ""
		case "<=":
			return v != "" && a <= b, ""
		case ">":
			return v != "" && a > b, ""
		case ">=":
			return v != "" && a >= b, ""
		}
	}
	return false, ""
}

func equal(v string, val sfwire.Value) bool {
	if val.Kind == sfwire.ValNull {
		return v == ""
	}
	return v != "" && strings.EqualFold(v, val.Str)
}

// like matches a LIKE pattern (% any run, _ one character, \% and \_ literal), case-insensitively.
func like(v, pattern string) bool {
	vs, ps := []rune(strings.ToLower(v)), []rune(strings.ToLower(pattern))
	var m func(i, j int) bool
	memo := map[[2]int]bool{}
	m = func(i, j int) bool {
		if r, ok := memo[[2]int{i, j}]; ok {
			return r
		}
		var r bool
		switch {
		case j == len(ps):
			r = i == len(vs)
		case ps[j] == '%':
			r = m(i, j+1) || (i < len(vs) && m(i+1, j))
		case ps[j] == '\\' && j+1 < len(ps):
			r = i < len(vs) && vs[i] == ps[j+1] && m(i+1, j+2)
		case ps[j] == '_':
			r = i < len(vs) && m(i+1, j+1)
		default:
			r = i < len(vs) && vs[i] == ps[j] && m(i+1, j+1)
		}
		memo[[2]int{i, j}] = r
		return r
	}
	return m(0, 0)
}
