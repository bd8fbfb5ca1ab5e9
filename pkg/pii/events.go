package pii

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/identity"
)

// SealedKinds are the identity kinds whose values Events seals: those that name a person outside
// omnibus. A phone number and an e-mail address do by themselves; a WeChat unionid, a Weibo uid,
// a CRM id and a membership number are stable across applications (a Weibo uid is a public
// profile), so whoever holds them can find the person. Kinds left clear: the app-scoped openids
// (wechat_openid, wecom_external_userid, douyin_openid, kuaishou_openid), pseudonyms that only
// the vendor, with the application's secret, can tie to a person, and web_visitor, a random id the
// web chat widget mints; vendor send APIs address customers by them, and the partitioning of
// OMNI_IN keeps them readable for operators. Add a kind here and it is sealed from the next
// publish on; consumers read both forms.
var SealedKinds = map[string]bool{
	identity.Phone: true, identity.Email: true, identity.WechatUnionID: true, identity.WeiboUID: true,
	identity.CRMID: true, identity.MemberID: true,
}

// Events seals and opens the personal fields of CloudEvents data: every JSON object
// {"kind": k, "value": v} with k in SealedKinds — an identity, wherever it sits in the data —
// becomes {"kind": k, "value": <ciphertext>, "index": <blind index>, "masked": <display form>}
// on Seal, and is restored on Open. It is the pkg/bus data protector (bus.WithDataProtector).
// Safe for concurrent use.
type Events struct {
	keys *Keys
	norm identity.Normalizer
}

// NewEvents returns the event sealer of k. National phone numbers are read as Chinese when the
// blind index is computed (identity.DefaultRegion), as the unifier reads them.
func NewEvents(k *Keys) *Events { return &Events{keys: k} }

// Keys returns the keys x seals with.
func (x *Events) Keys() *Keys { return x.keys }

// Sealed is an identity in its sealed form.
type Sealed struct {
	Kind   string `json:"kind"`
	Value  string `json:"value"`  // Prefix + ciphertext of the value as written
	Index  string `json:"index"`  // BlindIndex of the normalised value
	Masked string `json:"masked"` // identity.Mask of the normalised value
}

// SealIdentity seals one identity: the value as written is encrypted (Open gives back what the
// producer published), the index and the mask are of the normalised value (pkg/identity), so
// every spelling of a phone number has one index. A value that does not normalise is indexed
// trimmed (it matches only that spelling) and masked as identity.Mask masks what it cannot read.
func (x *Events) SealIdentity(kind, value string) (Sealed, error) {
	id, err := x.norm.Normalize(kind, value)
	if err != nil {
		id = identity.ID{Kind: kind, Value: strings.TrimSpace(value)}
	}
	ct, err := x.keys.Encrypt(value)
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Kind: kind, Value: ct, Index: x.keys.BlindIndex(kind, id.Value), Masked: identity.Mask(id)}, nil
}

var kindKey = []byte(`"kind"`)

// Seal returns data with the identities of SealedKinds sealed, or data itself when it holds
// none. Identities already sealed are left as they are.
//
// Identities written the way Go encodes them ({"kind":"…","value":"…"}, no white space) are
// sealed in place, without decoding the rest of the data; if anything that may be a clear
// identity of a sealed kind is left after that (another layout), the data is decoded and walked.
func (x *Events) Seal(data []byte) ([]byte, error) {
	if !bytes.Contains(data, kindKey) {
		return data, nil
	}
	out, err := x.sealFast(data)
	if err != nil {
		return nil, err
	}
	if !clearLeft(out) {
		return out, nil
	}
	return x.walk(out, x.sealObject)
}

// Open returns data with every sealed identity restored to {"kind", "value"}, or data itself
// when it holds none. A value this keyset cannot open is an error (wrapping ErrDecrypt).
// Sealed identities as Seal writes them are opened in place; any other layout is decoded and
// walked.
func (x *Events) Open(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte(Prefix)) {
		return data, nil
	}
	out, err := x.openFast(data)
	if err != nil || !bytes.Contains(out, []byte(Prefix)) {
		return out, err
	}
	return x.walk(out, x.openObject)
}

// The layouts the fast paths read: a clear identity as encoding/json writes a {Kind, Value}
// struct, and a sealed one as Seal writes it (members in byte order, as json writes a map).
var (
	clearIdentityRE  = regexp.MustCompile(`\{"kind":"([a-z][a-z0-9_]*)","value":("(?:[^"\\]|\\.)*")\}`)
	sealedIdentityRE = regexp.MustCompile(`\{"index":"[A-Za-z0-9_-]{22}","kind":"([a-z][a-z0-9_]*)","masked":"(?:[^"\\]|\\.)*","value":"(pii:v2:[A-Za-z0-9_-]+)"\}`)
	// kindValueRE finds "kind":"<k>" next to a "value" member, in either order and with white
	// space: what may still be a clear identity after the fast path.
	kindValueRE = regexp.MustCompile(`"kind"\s*:\s*"([a-z][a-z0-9_]*)"\s*,\s*"value"\s*:\s*"(.{0,7})|"value"\s*:\s*"(.{0,7})(?:[^"\\]|\\.)*"\s*,\s*"kind"\s*:\s*"([a-z][a-z0-9_]*)"`)
)

func (x *Events) sealFast(data []byte) ([]byte, error) {
	var err error
	out := clearIdentityRE.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := clearIdentityRE.FindSubmatch(m)
		kind := string(sub[1])
		var value string
		if err != nil || !SealedKinds[kind] || json.Unmarshal(sub[2], &value) != nil || strings.HasPrefix(value, Prefix) {
			return m
		}
		var s Sealed
		if s, err = x.SealIdentity(kind, value); err != nil {
			return m
		}
		b, e := json.Marshal(map[string]string{"kind": s.Kind, "value": s.Value, "index": s.Index, "masked": s.Masked})
		if e != nil {
			err = e
			return m
		}
		return b
	})
	return out, err
}

// clearLeft reports whether data may still hold a clear identity of a sealed kind.
func clearLeft(data []byte) bool {
	for _, m := range kindValueRE.FindAllSubmatch(data, -1) {
		kind, head := m[1], m[2]
		if len(kind) == 0 {
			kind, head = m[4], m[3]
		}
		if SealedKinds[string(kind)] && !strings.HasPrefix(Prefix, string(head)) && !bytes.HasPrefix(head, []byte(Prefix)) {
			return true
		}
	}
	return false
}

func (x *Events) openFast(data []byte) ([]byte, error) {
	var err error
	out := sealedIdentityRE.ReplaceAllFunc(data, func(m []byte) []byte {
		if err != nil {
			return m
		}
		sub := sealedIdentityRE.FindSubmatch(m)
		clear, e := x.keys.Decrypt(string(sub[2]))
		if e != nil {
			err = e
			return m
		}
		b, e := json.Marshal(struct {
			Kind  string `json:"kind"`
			Value string `json:"value"`
		}{string(sub[1]), clear})
		if e != nil {
			err = e
			return m
		}
		return b
	})
	return out, err
}

// SealPartitionKey replaces the value of a "<kind>:<value>" partition key of a sealed kind by
// its blind index, so that the key orders the same identity's events without showing it.
func (x *Events) SealPartitionKey(key string) string {
	kind, v, ok := strings.Cut(key, ":")
	if !ok || !SealedKinds[kind] || strings.HasPrefix(v, "~") {
		return key
	}
	id, err := x.norm.Normalize(kind, v)
	if err != nil {
		id.Value = strings.TrimSpace(v)
	}
	return kind + ":~" + x.keys.BlindIndex(kind, id.Value)
}

// walk decodes data, applies fn to every object and re-encodes it if fn changed one.
func (x *Events) walk(data []byte, fn func(map[string]any) (bool, error)) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("pii: event data: %w", err)
	}
	changed, err := visit(v, fn)
	if err != nil || !changed {
		return data, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("pii: event data: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func visit(v any, fn func(map[string]any) (bool, error)) (bool, error) {
	changed := false
	switch t := v.(type) {
	case map[string]any:
		c, err := fn(t)
		if err != nil {
			return false, err
		}
		changed = c
		for _, e := range t {
			c, err := visit(e, fn)
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
	case []any:
		for _, e := range t {
			c, err := visit(e, fn)
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
	}
	return changed, nil
}

// sealObject seals o in place if it is a clear identity of a sealed kind: exactly the members
// kind and value, both strings.
func (x *Events) sealObject(o map[string]any) (bool, error) {
	if len(o) != 2 {
		return false, nil
	}
	kind, ok1 := o["kind"].(string)
	value, ok2 := o["value"].(string)
	if !ok1 || !ok2 || !SealedKinds[kind] || strings.HasPrefix(value, Prefix) {
		return false, nil
	}
	s, err := x.SealIdentity(kind, value)
	if err != nil {
		return false, err
	}
	o["value"], o["index"], o["masked"] = s.Value, s.Index, s.Masked
	return true, nil
}

// openObject restores o in place if it is a sealed identity.
func (x *Events) openObject(o map[string]any) (bool, error) {
	if len(o) != 4 {
		return false, nil
	}
	value, ok := o["value"].(string)
	if !ok || !strings.HasPrefix(value, Prefix) {
		return false, nil
	}
	if _, ok := o["index"]; !ok {
		return false, nil
	}
	clear, err := x.keys.Decrypt(value)
	if err != nil {
		return false, err
	}
	o["value"] = clear
	delete(o, "index")
	delete(o, "masked")
	return true, nil
}

// Conceal returns data with every sealed identity reduced to its kind and mask
// ({"kind", "masked"}): what a screen shows of sealed data, with no ciphertext or index to copy.
// It needs no keys; data without sealed identities is returned as is.
func Conceal(data []byte) []byte {
	if !bytes.Contains(data, []byte(Prefix)) {
		return data
	}
	out, err := (&Events{}).walk(data, func(o map[string]any) (bool, error) {
		if len(o) != 4 {
			return false, nil
		}
		v, ok := o["value"].(string)
		if _, hasIndex := o["index"]; !ok || !hasIndex || !strings.HasPrefix(v, Prefix) {
			return false, nil
		}
		delete(o, "value")
		delete(o, "index")
		return true, nil
	})
	if err != nil {
		return data
	}
	return out
}
