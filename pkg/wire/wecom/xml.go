package wecom

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by the XML parsers for input that is not the expected document.
var ErrMalformed = errors.New("wecom: malformed callback")

// Envelope is the body of an encrypted callback POST:
//
//	<xml><ToUserName><![CDATA[corpid]]></ToUserName><Encrypt><![CDATA[...]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>
//
// AgentID is absent on 微信客服 callbacks. ToUserName is not covered by the signature.
type Envelope struct {
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
	AgentID    string `xml:"AgentID"`
}

type envelopeXML struct {
	XMLName xml.Name `xml:"xml"`
	Envelope
}

// ParseEnvelope parses an encrypted callback body. Errors wrap ErrMalformed.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e envelopeXML
	if err := xml.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: body is not <xml>...</xml>: %w", ErrMalformed, err)
	}
	e.Encrypt = strings.TrimSpace(e.Encrypt)
	if e.Encrypt == "" {
		return Envelope{}, fmt.Errorf("%w: no Encrypt element", ErrMalformed)
	}
	return e.Envelope, nil
}

// Marshal returns the envelope as WeCom sends it (AgentID omitted when empty).
func (e Envelope) Marshal() []byte {
	var b strings.Builder
	b.WriteString("<xml>")
	cdataElem(&b, "ToUserName", e.ToUserName)
	cdataElem(&b, "Encrypt", e.Encrypt)
	if e.AgentID != "" {
		cdataElem(&b, "AgentID", e.AgentID)
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// Callback is a decrypted callback message. For 微信客服 it is the kf_msg_or_event notice
// (MsgType event, Event kf_msg_or_event) with the sync_msg Token and the OpenKfId that has news:
//
//	<xml><ToUserName><![CDATA[ww12345678910]]></ToUserName><CreateTime>1348831860</CreateTime>
//	<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>
//	<Token><![CDATA[ENCApHxn...]]></Token><OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId></xml>
//
// Other WeCom callbacks (an app's text message, contact changes) parse too, with their
// MsgType/Event; only the fields below are read.
type Callback struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Event        string `xml:"Event"`
	Token        string `xml:"Token"`
	OpenKfID     string `xml:"OpenKfId"`
	Content      string `xml:"Content"`
	MsgID        string `xml:"MsgId"`
	AgentID      string `xml:"AgentID"`
}

// Kf callback constants.
const (
	MsgTypeEvent      = "event"
	EventKfMsgOrEvent = "kf_msg_or_event"
)

// IsKfNotice reports whether the callback is the 微信客服 "new messages or events" notice.
func (c Callback) IsKfNotice() bool {
	return c.MsgType == MsgTypeEvent && c.Event == EventKfMsgOrEvent
}

// ParseCallback parses a decrypted callback. Errors wrap ErrMalformed.
func ParseCallback(msg []byte) (Callback, error) {
	var c struct {
		XMLName      xml.Name `xml:"xml"`
		ToUserName   string   `xml:"ToUserName"`
		FromUserName string   `xml:"FromUserName"`
		CreateTime   string   `xml:"CreateTime"`
		MsgType      string   `xml:"MsgType"`
		Event        string   `xml:"Event"`
		Token        string   `xml:"Token"`
		OpenKfID     string   `xml:"OpenKfId"`
		Content      string   `xml:"Content"`
		MsgID        string   `xml:"MsgId"`
		AgentID      string   `xml:"AgentID"`
	}
	if err := xml.Unmarshal(msg, &c); err != nil {
		return Callback{}, fmt.Errorf("%w: decrypted message is not <xml>...</xml>: %w", ErrMalformed, err)
	}
	out := Callback{ToUserName: c.ToUserName, FromUserName: c.FromUserName, MsgType: strings.TrimSpace(c.MsgType),
		Event: strings.TrimSpace(c.Event), Token: strings.TrimSpace(c.Token), OpenKfID: strings.TrimSpace(c.OpenKfID),
		Content: c.Content, MsgID: strings.TrimSpace(c.MsgID), AgentID: strings.TrimSpace(c.AgentID)}
	if ct := strings.TrimSpace(c.CreateTime); ct != "" {
		n, err := strconv.ParseInt(ct, 10, 64)
		if err != nil {
			return Callback{}, fmt.Errorf("%w: CreateTime %q is not Unix seconds", ErrMalformed, truncate(ct, 32))
		}
		out.CreateTime = n
	}
	if out.MsgType == "" {
		return Callback{}, fmt.Errorf("%w: no MsgType", ErrMalformed)
	}
	return out, nil
}

// MarshalKfNotice returns the kf_msg_or_event callback XML for corpID, as WeCom encrypts it.
func MarshalKfNotice(corpID string, createTime int64, token, openKfID string) []byte {
	var b strings.Builder
	b.WriteString("<xml>")
	cdataElem(&b, "ToUserName", corpID)
	b.WriteString("<CreateTime>" + strconv.FormatInt(createTime, 10) + "</CreateTime>")
	cdataElem(&b, "MsgType", MsgTypeEvent)
	cdataElem(&b, "Event", EventKfMsgOrEvent)
	cdataElem(&b, "Token", token)
	cdataElem(&b, "OpenKfId", openKfID)
	b.WriteString("</xml>")
	return []byte(b.String())
}

// cdataElem writes <name><![CDATA[v]]></name>, splitting any "]]>" in v across two sections.
func cdataElem(b *strings.Builder, name, v string) {
	b.WriteString("<" + name + "><![CDATA[")
	b.WriteString(strings.ReplaceAll(v, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]></" + name + ">")
}
