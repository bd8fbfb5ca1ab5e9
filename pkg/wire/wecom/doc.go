// Package wecom is the WeCom (企业微信) wire format that the wechatkf connector and the sandbox's
// WeCom simulator share: the WXBizMsgCrypt callback scheme (msg_signature, AES-256-CBC with
// 32-byte PKCS#7 blocks, receive-id check), the callback XML, the 微信客服 (kf) API request and
// response shapes (gettoken, kf/sync_msg, kf/send_msg) with WeCom's error codes, and the signed
// scene_param omnibus uses to carry a customer's phone into an enter_session event.
//
// Everything here is byte-exact with the official samples: crypto_test.go checks every vector of
// shared/vendors/vectors.md §1 and the wechatpy WeCom crypto vectors. Parsers of outside input
// (ParseEnvelope, ParseCallback, DecodeMessage, Decrypt) are fuzzed.
package wecom
