// Package pii protects personal data in omnibus: envelope encryption with tink keysets and blind
// indexes, the sealing of identities in events, masking helpers for display and logs, and a
// scanner that finds unmasked phone, ID-card and bank-card numbers in free text or JSON.
//
// # Keys
//
// Keys holds two tink keysets (github.com/tink-crypto/tink-go/v2): an AEAD keyset of
// AES-256-GCM keys, rotated by adding a new primary key (Rotated, RotateFile; every key of the
// keyset still decrypts), and a PRF keyset (HMAC-SHA256) for blind indexes, which stays the same
// across rotations. A ciphertext is one printable token; tink's output prefix inside it names the
// key that sealed it (KeyIDOf, NeedsRotation):
//
//	pii:v2:<base64url(0x01 ‖ key id ‖ nonce ‖ ciphertext ‖ tag)>
//
// The optional associated data binds a ciphertext to its place (e.g. "customers.id_card"), so a
// value copied into another column does not decrypt there. BlindIndex(kind, normalised value) is
// the keyed HMAC that lets the unifier match identities and the desk search by phone without
// decrypting anything.
//
// The keysets live in one file (LoadFile, EnsureFile, WriteFile): {"aead": <tink JSON keyset>,
// "blind_index": <tink JSON keyset>}, clear for development or encrypted with a key-encryption
// key named by a URI: env://VAR and file://PATH are built in (32 bytes, base64); a cloud KMS
// (gcp-kms://, aws-kms://, hcvault://) is added by registering its tink client (RegisterKMS).
//
// # Events
//
// Events seals the identities of SealedKinds wherever they sit in CloudEvents data — value
// replaced by a ciphertext, with the blind index and a masked form beside it — and opens them
// again; pkg/bus applies it on publish and consume (bus.WithDataProtector), so that the log holds
// no clear personal data and only processes holding the keyset read it.
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
