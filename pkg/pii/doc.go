// Package pii protects personal data in omnibus: AES-256-GCM field encryption with key ids for
// rotation, masking helpers for display and logs, and a scanner that finds unmasked phone, ID-card
// and bank-card numbers in free text or JSON.
//
// # Encryption
//
// A Keyring holds named 256-bit keys; the first is active. PII_KEYS="k2:<base64>,k1:<base64>"
// encrypts with k2 and still decrypts values written under k1, so a key is rotated by putting a
// new one first and re-encrypting (NeedsRotation tells which values to rewrite) before the old one
// is removed. A ciphertext is one printable token that names its key:
//
//	pii:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// The optional associated data binds a ciphertext to its place (e.g. "customers.id_card"), so a
// value copied into another column does not decrypt there.
//
// # Masking
//
// The maskers keep what an agent needs to confirm a value with a customer and nothing more:
//
//	MaskPhone("13800138000")          138****8000     national: first 3 and last 4
//	MaskPhone("+8613800138000")       +86******8000   E.164: "+", two digits of the country code, last 4
//	MaskIDCard("11010519491231002X")  110***********002X   first 3 and last 4, the display most
//	                                                  PRC banks and government portals use
//	MaskBankCard("6222021234567890123") ***************0123 last 4 only
//	MaskName("张三丰")                 张**            first character only
//	MaskEmail("alice@example.com")    a***@example.com
//
// # Scanning
//
// Scan finds digit sequences (optionally grouped by single spaces or dashes, optionally "+"-led)
// that are a mainland mobile number (1[3-9] and 11 digits, with or without 86/+86), an 18-character
// resident ID with a valid birth date and ISO 7064 check character, or a 13-19 digit card number
// starting 3-6 that passes the Luhn check; and e-mail addresses. Redact replaces each finding by its
// mask, and Scan(Redact(s)) is always empty (fuzzed). The scanner is what the audit masker runs on
// free-form bodies and what tests run over audit records and logs to prove nothing leaks.
// Landline numbers and 15-digit first-generation ID cards are not detected.
package pii
