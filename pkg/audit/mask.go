package audit

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// DefaultFields maps normalised field names (lower case, without _ - . and spaces) to the kind of
// personal data they hold. A JSON key, form key or XML element whose normalised name is listed, or
// ends with one of SuffixFields, is masked as that kind wherever it appears in a body.
var DefaultFields = map[string]pii.Kind{
	"phone": pii.KindPhone, "mobile": pii.KindPhone, "tel": pii.KindPhone, "telephone": pii.KindPhone,
	"cellphone": pii.KindPhone, "phonenumber": pii.KindPhone, "mobileno": pii.KindPhone, "msisdn": pii.KindPhone,
	"phonenumbers": pii.KindPhone, "to": pii.KindPhone, "from": pii.KindPhone,

	"idcard": pii.KindIDCard, "idno": pii.KindIDCard, "idnumber": pii.KindIDCard, "idcardno": pii.KindIDCard,
	"certno": pii.KindIDCard, "certificateno": pii.KindIDCard, "identitycard": pii.KindIDCard,
	"identityno": pii.KindIDCard, "certid": pii.KindIDCard,

	"bankcard": pii.KindBankCard, "cardno": pii.KindBankCard, "cardnumber": pii.KindBankCard,
	"bankaccount": pii.KindBankCard, "accountno": pii.KindBankCard, "pan": pii.KindBankCard,

	"name": pii.KindName, "realname": pii.KindName, "fullname": pii.KindName, "username": pii.KindName,
	"nickname": pii.KindName, "customername": pii.KindName, "contactname": pii.KindName,
	"receivername": pii.KindName, "sendername": pii.KindName, "consignee": pii.KindName,
	"recipient": pii.KindName, "firstname": pii.KindName, "lastname": pii.KindName, "contact": pii.KindName,

	"email": pii.KindEmail, "mail": pii.KindEmail, "emailaddress": pii.KindEmail,

	"address": pii.KindAddress, "addr": pii.KindAddress, "detailaddress": pii.KindAddress,
	"street": pii.KindAddress,

	"password": pii.KindSecret, "passwd": pii.KindSecret, "secret": pii.KindSecret, "token": pii.KindSecret,
	"authorization": pii.KindSecret, "sign": pii.KindSecret, "signature": pii.KindSecret, "apikey": pii.KindSecret,
	"privatekey": pii.KindSecret, "cvv": pii.KindSecret, "cvn": pii.KindSecret, "pin": pii.KindSecret,
	"paysign": pii.KindSecret, "credential": pii.KindSecret, "cookie": pii.KindSecret, "otp": pii.KindSecret,
	"verifycode": pii.KindSecret, "smscode": pii.KindSecret,
}

// SuffixFields: a normalised name ending with one of these (receiverMobile, appSecret,
// accessToken, senderAddress) is masked as that kind.
var SuffixFields = map[string]pii.Kind{
	"phone": pii.KindPhone, "mobile": pii.KindPhone, "idcard": pii.KindIDCard, "idno": pii.KindIDCard,
	"cardno": pii.KindBankCard, "email": pii.KindEmail, "address": pii.KindAddress,
	"password": pii.KindSecret, "secret": pii.KindSecret, "token": pii.KindSecret, "signature": pii.KindSecret,
	"apikey": pii.KindSecret, "privatekey": pii.KindSecret,
}

// DefaultMaxBody caps a masked body (bytes) in a record.
const DefaultMaxBody = 4096

// Masker masks request and response bodies for audit records: field rules by name (JSON, form
// and XML bodies), then the pii scanner over every remaining value (and over text it cannot
// parse), then a size cap. It is safe for concurrent use.
type Masker struct {
	fields  map[string]pii.Kind
	suffix  map[string]pii.Kind
	maxBody int
}

// NewMasker returns a masker with DefaultFields plus extra (normalised like DefaultFields;
// pii.Kind("") removes a default), capping bodies at maxBody bytes (0: DefaultMaxBody).
func NewMasker(extra map[string]pii.Kind, maxBody int) *Masker {
	m := &Masker{fields: map[string]pii.Kind{}, suffix: SuffixFields, maxBody: maxBody}
	for k, v := range DefaultFields {
		m.fields[k] = v
	}
	for k, v := range extra {
		k = normalise(k)
		if v == "" {
			delete(m.fields, k)
			continue
		}
		m.fields[k] = v
	}
	if m.maxBody <= 0 {
		m.maxBody = DefaultMaxBody
	}
	return m
}

func normalise(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', '.', ' ':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, k)
}

// KindOf returns the kind a field name is masked as, or "" if it is not a rule.
func (m *Masker) KindOf(field string) pii.Kind {
	n := normalise(field)
	if k, ok := m.fields[n]; ok {
		return k
	}
	for suf, k := range m.suffix {
		if strings.HasSuffix(n, suf) {
			return k
		}
	}
	return ""
}

// Body masks a body and caps it. It returns the masked text, the original size and whether it
// was truncated.
func (m *Masker) Body(b []byte) (masked string, size int, truncated bool) {
	size = len(b)
	if len(b) == 0 {
		return "", 0, false
	}
	trimmed := bytes.TrimSpace(b)
	switch {
	case len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed):
		masked = m.json(trimmed)
	case len(trimmed) > 0 && trimmed[0] == '<':
		masked = m.xml(string(trimmed))
	case looksLikeForm(trimmed):
		masked = m.form(string(trimmed))
	default:
		masked = strings.ToValidUTF8(string(b), "\uFFFD")
	}
	// The scanner runs over the whole result too: re-encoding (URL or JSON escapes) can put digits
	// side by side that were apart in the decoded values.
	masked, truncated = capUTF8(pii.Redact(masked), m.maxBody)
	return masked, size, truncated
}

// Text masks free text (error messages) with the scanner and caps it.
func (m *Masker) Text(s string) string {
	out, _ := capUTF8(pii.Redact(strings.ToValidUTF8(s, "\uFFFD")), m.maxBody)
	return out
}

func (m *Masker) json(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return pii.Redact(string(b))
	}
	v = m.walk(v, "")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return pii.Redact(string(b))
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// walk masks v; kind is the rule of the field v sits under ("" if none).
func (m *Masker) walk(v any, kind pii.Kind) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			fk := m.KindOf(k)
			if fk == "" {
				fk = kind
			}
			x[k] = m.walk(val, fk)
		}
		return x
	case []any:
		for i := range x {
			x[i] = m.walk(x[i], kind)
		}
		return x
	case string:
		if kind != "" {
			return pii.Mask(kind, x)
		}
		return pii.Redact(x)
	case json.Number:
		if kind != "" {
			return pii.Mask(kind, x.String())
		}
		if s := x.String(); pii.Contains(s) {
			return pii.Redact(s)
		}
		return x
	case bool:
		return x
	case nil:
		return nil
	}
	return v
}

var xmlElemRE = regexp.MustCompile(`<([A-Za-z_][\w.\-]*)>(?:<!\[CDATA\[)?([^<\]]*)(?:\]\]>)?</([A-Za-z_][\w.\-]*)>`)

func (m *Masker) xml(s string) string {
	s = xmlElemRE.ReplaceAllStringFunc(s, func(el string) string {
		sub := xmlElemRE.FindStringSubmatch(el)
		if sub[1] != sub[3] {
			return el
		}
		if k := m.KindOf(sub[1]); k != "" {
			return "<" + sub[1] + ">" + pii.Mask(k, sub[2]) + "</" + sub[1] + ">"
		}
		return el
	})
	return pii.Redact(s)
}

func looksLikeForm(b []byte) bool {
	if bytes.ContainsAny(b, " \n{}<>\"") || !bytes.Contains(b, []byte("=")) {
		return false
	}
	_, err := url.ParseQuery(string(b))
	return err == nil
}

func (m *Masker) form(s string) string {
	parts := strings.Split(s, "&")
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			parts[i] = pii.Redact(p)
			continue
		}
		if kind := m.KindOf(key); kind != "" {
			val = pii.Mask(kind, val)
		} else {
			val = pii.Redact(val)
		}
		parts[i] = k + "=" + url.QueryEscape(val)
	}
	return strings.Join(parts, "&")
}

// capUTF8 cuts s to at most n bytes on a rune boundary.
func capUTF8(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
