package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the vendor's signature scheme is SHA-1
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinels of the callback crypto. Each error returned by this file wraps one of them.
var (
	// ErrKey: the EncodingAESKey is not 43 characters of base64 decoding to 32 bytes.
	ErrKey = errors.New("wecom: invalid EncodingAESKey")
	// ErrSignature: msg_signature does not match sha1(sort(token, timestamp, nonce, encrypt)).
	ErrSignature = errors.New("wecom: msg_signature mismatch")
	// ErrDecrypt: the ciphertext is not base64, not whole AES blocks, badly padded, or its
	// plaintext layout (random16 | msg_len | msg | receiveid) does not hold.
	ErrDecrypt = errors.New("wecom: cannot decrypt")
	// ErrReceiveID: the plaintext is addressed to another corp (or suite/app).
	ErrReceiveID = errors.New("wecom: receive id mismatch")
)

// BlockSize is the PKCS#7 block of WXBizMsgCrypt: 32 bytes (pad values 1..32), not AES's 16.
const BlockSize = 32

// Crypto signs, verifies, encrypts and decrypts callbacks of one WeCom app: its Token,
// EncodingAESKey and receive id (the CorpID for a WeCom or 微信客服 callback).
type Crypto struct {
	token     string
	receiveID string
	key       []byte
	block     cipher.Block
}

// NewCrypto checks the EncodingAESKey (43 characters; base64 of the 32-byte AES key without its
// "=") and returns the Crypto of token and receiveID. Errors wrap ErrKey.
func NewCrypto(token, encodingAESKey, receiveID string) (*Crypto, error) {
	key, err := DecodeAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, fmt.Errorf("%w: empty Token", ErrKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &Crypto{token: token, receiveID: receiveID, key: key, block: block}, nil
}

// DecodeAESKey returns the AES-256 key of an EncodingAESKey: Base64Decode(key + "=").
func DecodeAESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("%w: want 43 characters, got %d", ErrKey, len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %w", ErrKey, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want 32", ErrKey, len(key))
	}
	return key, nil
}

// GenerateEncodingAESKey returns a random EncodingAESKey (43 characters), as the WeCom console
// generates one: for test and demo setups that configure both the simulator and the connector.
func GenerateEncodingAESKey() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("wecom: %w", err)
	}
	return base64.StdEncoding.EncodeToString(key)[:43], nil
}

// ReceiveID is the receive id this Crypto checks and writes.
func (c *Crypto) ReceiveID() string { return c.receiveID }

// Signature returns msg_signature: the lower-case hex SHA-1 of the lexicographically sorted
// concatenation of token, timestamp, nonce and encrypt.
func Signature(token, timestamp, nonce, encrypt string) string {
	parts := []string{token, timestamp, nonce, encrypt}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, ""))) //nolint:gosec // vendor scheme
	return hex.EncodeToString(sum[:])
}

// Sign returns the msg_signature of encrypt at timestamp and nonce under this app's Token.
func (c *Crypto) Sign(timestamp, nonce, encrypt string) string {
	return Signature(c.token, timestamp, nonce, encrypt)
}

// Verify reports whether signature is the msg_signature of encrypt, in constant time.
func (c *Crypto) Verify(signature, timestamp, nonce, encrypt string) bool {
	want := c.Sign(timestamp, nonce, encrypt)
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(signature)), []byte(want)) == 1
}

// Encrypt encrypts msg with a random 16-character prefix and this Crypto's receive id and
// returns the base64 ciphertext (the Encrypt element, or an echostr).
func (c *Crypto) Encrypt(msg []byte) (string, error) {
	random, err := randomPrefix()
	if err != nil {
		return "", err
	}
	return c.EncryptWithRandom(random, msg)
}

// randomPrefix returns 16 random letters and digits, as the official SDKs use.
func randomPrefix() ([]byte, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("wecom: random prefix: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return b, nil
}

// EncryptWithRandom encrypts msg with the given 16-byte random prefix (deterministic: the
// official vectors fix the prefix): AES-256-CBC, IV = key[:16], over
// random16 | big-endian uint32 len(msg) | msg | receiveid, PKCS#7-padded to 32 bytes.
func (c *Crypto) EncryptWithRandom(random, msg []byte) (string, error) {
	if len(random) != 16 {
		return "", fmt.Errorf("wecom: random prefix must be 16 bytes, got %d", len(random))
	}
	if uint64(len(msg)) > 1<<31 {
		return "", fmt.Errorf("wecom: message of %d bytes is too large", len(msg))
	}
	n := 16 + 4 + len(msg) + len(c.receiveID)
	pad := BlockSize - n%BlockSize
	plain := make([]byte, 0, n+pad)
	plain = append(plain, random...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, c.receiveID...)
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(out, plain)
	return base64.StdEncoding.EncodeToString(out), nil
}

// Decrypt decrypts a base64 ciphertext and returns the message and the receive id it carries,
// without checking the receive id (Open does). Errors wrap ErrDecrypt.
func (c *Crypto) Decrypt(encrypt string) (msg []byte, receiveID string, err error) {
	raw, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, "", fmt.Errorf("%w: ciphertext is not base64: %w", ErrDecrypt, err)
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: ciphertext of %d bytes is not whole AES blocks", ErrDecrypt, len(raw))
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(plain, raw)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > BlockSize || pad > len(plain) {
		return nil, "", fmt.Errorf("%w: bad PKCS#7 pad value %d (wrong key?)", ErrDecrypt, pad)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, "", fmt.Errorf("%w: inconsistent PKCS#7 padding (wrong key?)", ErrDecrypt)
		}
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < 20 {
		return nil, "", fmt.Errorf("%w: plaintext of %d bytes is shorter than its 20-byte header", ErrDecrypt, len(plain))
	}
	msgLen := uint64(binary.BigEndian.Uint32(plain[16:20]))
	if 20+msgLen > uint64(len(plain)) {
		return nil, "", fmt.Errorf("%w: msg_len %d exceeds the %d bytes after the header (wrong key?)", ErrDecrypt, msgLen, len(plain)-20)
	}
	return plain[20 : 20+msgLen], string(plain[20+msgLen:]), nil
}

// Open verifies signature over encrypt, decrypts it and checks that it is addressed to this
// Crypto's receive id. Errors wrap ErrSignature, ErrDecrypt or ErrReceiveID.
func (c *Crypto) Open(signature, timestamp, nonce, encrypt string) ([]byte, error) {
	if !c.Verify(signature, timestamp, nonce, encrypt) {
		return nil, ErrSignature
	}
	msg, rid, err := c.Decrypt(encrypt)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(rid), []byte(c.receiveID)) != 1 {
		return nil, fmt.Errorf("%w: payload is for %q", ErrReceiveID, truncate(rid, 64))
	}
	return msg, nil
}

// Seal encrypts msg and signs it at timestamp and nonce, returning the Encrypt text and its
// msg_signature: what WeCom sends, and what the simulator needs.
func (c *Crypto) Seal(msg []byte, timestamp, nonce string) (encrypt, signature string, err error) {
	encrypt, err = c.Encrypt(msg)
	if err != nil {
		return "", "", err
	}
	return encrypt, c.Sign(timestamp, nonce, encrypt), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
