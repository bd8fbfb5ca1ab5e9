package wecom

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
)

// Signed scene_param: how a business's own app hands a logged-in customer's phone to 微信客服.
//
// The app opens the kf link (https://work.weixin.qq.com/kfid/<id>?enc_scene=..&scene_param=..)
// with scene_param = "p.<E.164 phone>.<16 hex>", the hex being the first 16 characters of
// hex(HMAC-SHA256(scene key, "p.<E.164 phone>")). WeCom hands scene_param back unchanged in the
// customer's enter_session event. Anyone can edit a link, so only a scene_param whose MAC checks
// against the scene key the app and the connector share may become a phone identity; any other
// scene_param is kept as data and trusted for nothing.
//
// What the MAC proves: the business issued this link for this phone. It does not prove that the
// WeChat user who opened the link is that person (a forwarded link carries the phone with it), so
// the app should build the link only inside a logged-in session and never show or share it.

// ScenePhonePrefix starts a phone scene_param.
const ScenePhonePrefix = "p."

// SceneMACLen is the number of hex characters of the MAC kept in a scene_param (64 bits).
const SceneMACLen = 16

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// ValidE164 reports whether phone is in E.164 form (+, country code, 7..15 digits in all).
func ValidE164(phone string) bool { return e164.MatchString(phone) }

// SignScenePhone returns the scene_param carrying phone, signed with key. phone must be E.164.
func SignScenePhone(key []byte, phone string) string {
	return ScenePhonePrefix + phone + "." + sceneMAC(key, phone)
}

func sceneMAC(key []byte, phone string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ScenePhonePrefix + phone))
	return hex.EncodeToString(m.Sum(nil))[:SceneMACLen]
}

// VerifyScenePhone returns the phone of a scene_param signed with key, and whether the
// scene_param is one (well formed, E.164, MAC matching). An empty key verifies nothing.
// A percent-encoded scene_param ("p.%2B86...") is decoded first.
func VerifyScenePhone(key []byte, param string) (string, bool) {
	if len(key) == 0 || len(param) > 256 || !strings.HasPrefix(param, ScenePhonePrefix) {
		return "", false
	}
	if strings.Contains(param, "%") {
		p, err := url.QueryUnescape(param)
		if err != nil {
			return "", false
		}
		param = p
	}
	i := strings.LastIndexByte(param, '.')
	if i < len(ScenePhonePrefix) {
		return "", false
	}
	phone, mac := param[len(ScenePhonePrefix):i], strings.ToLower(param[i+1:])
	if !ValidE164(phone) || len(mac) != SceneMACLen {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(sceneMAC(key, phone))) {
		return "", false
	}
	return phone, true
}
