package loginas

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIDLength is the longest user ID accepted, in bytes.
const maxIDLength = 128

// maxNextLength is the longest next value followed, in bytes.
const maxNextLength = 2048

// ErrBadID is returned by ParseID for a value that cannot be a user ID.
var ErrBadID = errors.New("loginas: malformed user ID")

// ParseID checks a user ID taken from a URL or a session: non-empty, at most
// 128 bytes of valid UTF-8, no white space at either end, no control
// characters, no slash or backslash, and not "." or "..". It returns ErrBadID
// otherwise.
func ParseID(id string) error {
	if id == "" || len(id) > maxIDLength || id == "." || id == ".." || !utf8.ValidString(id) {
		return ErrBadID
	}
	for _, r := range id {
		if r == '/' || r == '\\' || unicode.IsControl(r) || r == utf8.RuneError {
			return ErrBadID
		}
	}
	if strings.TrimSpace(id) != id {
		return ErrBadID
	}
	return nil
}

// IsLocalURL reports whether u is a path on this site that is safe to
// redirect to: it starts with a single "/", has no scheme or host, no
// backslash and no control characters, parses as a URL, and is at most 2048
// bytes. "//x" and "/\x" are refused: browsers read both as another host.
func IsLocalURL(u string) bool {
	if u == "" || len(u) > maxNextLength || u[0] != '/' {
		return false
	}
	if len(u) > 1 && (u[1] == '/' || u[1] == '\\') {
		return false
	}
	for i := 0; i < len(u); i++ {
		if b := u[i]; b == '\\' || b < 0x20 || b == 0x7f {
			return false
		}
	}
	if !utf8.ValidString(u) {
		return false
	}
	parsed, err := url.Parse(u)
	return err == nil && parsed.Scheme == "" && parsed.Host == "" && parsed.User == nil
}

// reasonError says why a reason was refused.
type reasonError int

const (
	reasonOK reasonError = iota
	reasonMissing
	reasonTooLong
	reasonInvalid
)

// refusal returns the refusal for a reason problem, in the request's
// language.
func (e reasonError) refusal(msg *Messages) *Refusal {
	switch e {
	case reasonMissing:
		return &Refusal{Cause: CauseReasonRequired, Message: msg.ReasonRequired}
	case reasonTooLong:
		return &Refusal{Cause: CauseReasonTooLong, Message: msg.ReasonTooLong}
	}
	return &Refusal{Cause: CauseReasonInvalid, Message: msg.ReasonInvalid}
}

// cleanReason trims a reason and checks it: valid UTF-8, no control
// characters but tab and line breaks, at most max characters, and present
// when required. Line breaks are normalised to "\n".
func cleanReason(raw string, max int, required bool) (string, reasonError) {
	if !utf8.ValidString(raw) {
		return "", reasonInvalid
	}
	reason := strings.TrimSpace(strings.ReplaceAll(raw, "\r\n", "\n"))
	for _, r := range reason {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", reasonInvalid
		}
		if r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			// Line separators and bidi overrides could disguise the text in a
			// log or an audit page.
			return "", reasonInvalid
		}
	}
	if utf8.RuneCountInString(reason) > max {
		return "", reasonTooLong
	}
	if required && reason == "" {
		return "", reasonMissing
	}
	return reason, reasonOK
}
