package loginas

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIDLength is the longest user ID accepted, in bytes.
const maxIDLength = 128

// maxNextLength is the longest next value followed, in bytes.
const maxNextLength = 2048

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

// cleanReason trims a reason and checks it: valid UTF-8, no control
// characters but tab and line breaks, no line separators or bidirectional
// controls (they could disguise the text in a log or an audit page), at most
// max characters, and present when required. Line breaks are normalised to
// "\n". It returns the cause of a refusal, or "".
func cleanReason(raw string, max int, required bool) (string, Cause) {
	if !utf8.ValidString(raw) {
		return "", CauseReasonInvalid
	}
	reason := strings.TrimSpace(strings.ReplaceAll(raw, "\r\n", "\n"))
	for _, r := range reason {
		if unsafeRune(r, true) {
			return "", CauseReasonInvalid
		}
	}
	if utf8.RuneCountInString(reason) > max {
		return "", CauseReasonTooLong
	}
	if required && reason == "" {
		return "", CauseReasonRequired
	}
	return reason, ""
}
