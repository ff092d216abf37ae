package loginas

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// record is the signed proof, kept in the target's session, of who started
// an impersonation, as whom, when, and until when.
type record struct {
	ID       string // random, names this impersonation in the audit trail
	ActorID  string
	TargetID string
	Started  time.Time
	Deadline time.Time
}

// recordVersion prefixes every encoded record so the format can change.
const recordVersion = "v1"

// maxRecordLength bounds what decodeRecord reads: two IDs of at most
// maxIDLength bytes, base64-encoded, plus the fixed fields.
const maxRecordLength = 512

// strictBase64 decodes unpadded base64url and refuses encodings with
// nonzero padding bits, so that each value has exactly one encoding.
var strictBase64 = base64.RawURLEncoding.Strict()

var errBadRecord = errors.New("loginas: impersonation record is malformed or its signature does not match")

// maxVerified bounds how many verified encodings a signer remembers.
const maxVerified = 4096

// signer holds the current key and the older keys still accepted.
type signer struct {
	keys [][]byte // keys[0] signs; all verify
	// verified maps encodings whose signature already checked out to their
	// record, so that the requests of one impersonation verify it once. It
	// is emptied when it reaches maxVerified entries.
	verified      sync.Map
	verifiedCount atomic.Int64
}

func newSigner(current []byte, previous [][]byte) *signer {
	return &signer{keys: deriveKeys(current, previous, "record")}
}

// deriveKeys derives the key for purpose from the current secret, then from
// each previous one.
func deriveKeys(current []byte, previous [][]byte, purpose string) [][]byte {
	keys := make([][]byte, 0, 1+len(previous))
	keys = append(keys, deriveKey(current, purpose))
	for _, k := range previous {
		keys = append(keys, deriveKey(k, purpose))
	}
	return keys
}

// deriveKey gives each use of the secret its own key, so a value signed for
// one purpose can never pass as another.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("loginas/" + purpose))
	return m.Sum(nil)
}

// newRecordID returns 16 random bytes in hex.
func newRecordID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// encode returns "v1.<actor>.<target>.<started>.<deadline>.<id>.<mac>", the
// IDs in unpadded base64url, times in Unix milliseconds, the MAC the first
// 128 bits of an HMAC-SHA256 of everything before it.
func (s *signer) encode(r record) string {
	var b strings.Builder
	b.WriteString(recordVersion)
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(r.ActorID)))
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(r.TargetID)))
	b.WriteByte('.')
	b.WriteString(strconv.FormatInt(r.Started.UnixMilli(), 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatInt(r.Deadline.UnixMilli(), 10))
	b.WriteByte('.')
	b.WriteString(r.ID)
	payload := b.String()
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac(s.keys[0], payload))
}

// macLength is how much of the HMAC-SHA256 a record keeps: 128 bits, which
// keeps the cookie short and is far beyond what forging by trial allows.
const macLength = 16

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)[:macLength]
}

// decode verifies and parses an encoded record. Any defect, in format or
// signature, gives errBadRecord.
func (s *signer) decode(encoded string) (record, error) {
	if r, ok := s.verified.Load(encoded); ok {
		return r.(record), nil
	}
	if len(encoded) > maxRecordLength {
		return record{}, errBadRecord
	}
	cut := strings.LastIndexByte(encoded, '.')
	if cut < 0 {
		return record{}, errBadRecord
	}
	payload, sig := encoded[:cut], encoded[cut+1:]
	got, err := strictBase64.DecodeString(sig)
	if err != nil || len(got) != macLength {
		return record{}, errBadRecord
	}
	valid := false
	for _, k := range s.keys {
		if hmac.Equal(got, mac(k, payload)) {
			valid = true
			break
		}
	}
	if !valid {
		return record{}, errBadRecord
	}
	r, err := parseRecordPayload(payload)
	if err != nil {
		return record{}, err
	}
	if s.verifiedCount.Add(1) > maxVerified {
		s.verified.Clear()
		s.verifiedCount.Store(1)
	}
	s.verified.Store(encoded, r)
	return r, nil
}

// parseRecordPayload parses the signed part of a record. It is separate so
// the fuzzer can reach it without forging signatures.
func parseRecordPayload(payload string) (record, error) {
	parts := strings.Split(payload, ".")
	if len(parts) != 6 || parts[0] != recordVersion {
		return record{}, errBadRecord
	}
	actor, err1 := strictBase64.DecodeString(parts[1])
	target, err2 := strictBase64.DecodeString(parts[2])
	started, err3 := strconv.ParseInt(parts[3], 10, 64)
	deadline, err4 := strconv.ParseInt(parts[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return record{}, errBadRecord
	}
	if ParseID(string(actor)) != nil || ParseID(string(target)) != nil || deadline < started || !isRecordID(parts[5]) {
		return record{}, errBadRecord
	}
	return record{
		ID:       parts[5],
		ActorID:  string(actor),
		TargetID: string(target),
		Started:  time.UnixMilli(started),
		Deadline: time.UnixMilli(deadline),
	}, nil
}

func isRecordID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
