// Package identity normalizes customer identities so that the unifier can merge every channel's
// view of a customer into one customer (DESIGN.md §4, table identities, primary key (kind, value)).
//
// Two raw values that name the same customer must normalize to the same [ID], and normalizing an
// already normalized value must return it unchanged (Normalize is idempotent). Anything that cannot
// be normalized with confidence is rejected with an error wrapping [ErrInvalid]: a false merge of
// two customers is worse than a missed one. Error messages never contain the raw value (it is
// personal data and errors end up in logs); they say what is wrong with it.
//
// # Kinds
//
// A kind is one of the constants [Phone], [Email], [WechatOpenID], [WechatUnionID],
// [WecomExternalUserID], [DouyinOpenID], [KuaishouOpenID], [WeiboUID], [WebVisitor], [CRMID],
// [MemberID], or any other vendor kind matching ^[a-z][a-z0-9_]{0,39}$. Kinds are not
// normalized: "Phone" is an invalid kind, not the phone kind.
//
// # Phone numbers
//
// Phones are stored in E.164 ("+8613800138000"), produced by [NormalizePhone] in two steps:
// a strict reading of what was written, then Google's libphonenumber metadata
// (github.com/nyaruka/phonenumbers, the library the web chat connector checks numbers with, so the
// two never disagree) for the numbering plan:
//
//   - Accepted decoration: white space (including the ideographic space), dashes (ASCII and the
//     Unicode hyphens/dashes), dots and parentheses. Full-width forms (１３８…, ＋, （）, －) are
//     folded to ASCII first.
//   - International form: a leading "+" (also inside a leading parenthesis, "(+86)138…") or the
//     "00" international prefix ("0086…"); in the US region also "011". The country code must
//     not start with 0. A "(0)" group right after the country code is the conventional
//     trunk-prefix notation and is dropped ("+44 (0)20 …", "+86 (0)10 …"); for +86 a stray trunk
//     0 after the country code ("+86 010 1234 5678") is dropped too.
//   - National form (no "+" or "00") is read in the default region, "CN" unless the
//     [Normalizer] says otherwise; any region libphonenumber knows works. In CN, "86" written
//     before a mobile (13 digits starting 861) is read as the country code.
//   - The number must be valid in its country's plan (libphonenumber's IsValidNumber: a real
//     area code or mobile range and a length it has), so ranges reserved for fiction (UK 07700
//     900xxx) are refused; the error says whether the number is too short, too long, of a length
//     the plan does not have, or outside its ranges.
//   - Rejected: empty input, letters, any other character, a misplaced or repeated "+",
//     unbalanced or nested parentheses, more than 20 digits. Extensions ("ext", "x",
//     "转"/"轉", "分机"/"分機", "#", ",", ";") are rejected rather than stripped: whether the
//     extension belongs to the customer or to a switchboard is ambiguous, and stripping it could
//     merge everyone who ever called from the same office switchboard into one customer.
//
// # Email addresses
//
// [NormalizeEmail] trims surrounding white space and lower-cases the whole address, local part
// included. RFC 5321 makes the local part case-sensitive, but no mail provider a contact center
// meets treats it so, and customers type their address in every case; matching on the lower-cased
// address is the contact-center practice. Internationalized domains are kept as typed (lower-cased),
// not converted to punycode. The address must have exactly one "@", a non-empty local part of at
// most 64 bytes without leading, trailing or doubled dots, a domain with at least one dot whose
// labels are 1–63 bytes and do not start or end with "-", at most 254 bytes in all, and no white
// space, control characters or the characters that need quoting (<>()[]\,;:"). Quoted local parts
// and address literals are not supported.
//
// # Vendor identifiers
//
// Every other kind (openids, unionids, visitor ids, CRM and member ids) is opaque: surrounding
// white space is trimmed and nothing else changes — case is preserved because openids are
// case-sensitive. The value must be non-empty, valid UTF-8, at most 256 bytes, and free of control
// characters and invisible format characters (zero-width spaces, byte-order marks, bidi overrides),
// which would make two identical-looking ids differ or spoof what an agent sees.
//
// # Masking
//
// [Mask] renders an ID for logs and agent screens: phones keep the country code, the first three
// and last four national digits ("+86 138****8000"), hiding at least four digits on short numbers;
// emails keep the first character of the local part and the domain ("j***@example.com"); vendor ids
// keep the first four and last two characters ("oUpF…6o"), and ids shorter than ten characters are
// fully starred.
package identity
