package loginas

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// gorillaBacked is the method gin-contrib/sessions' session value has, giving
// the gorilla session beneath.
type gorillaBacked interface {
	Session() *gsessions.Session
}

// decodeError is how securecookie marks a cookie it could not decode (bad
// signature, expired, rotated key): the visitor is anonymous, the store is
// fine.
type decodeError interface {
	IsDecode() bool
}

// requestSession returns the request's session and checks that the store
// loaded it. A cookie that does not decode is not a failure: gin-contrib
// treats it as a new, empty session, and so does the plugin.
func requestSession(c *gin.Context) (sessions.Session, *gsessions.Session, error) {
	s, gs, err := sessionOf(c)
	if err != nil {
		return nil, nil, err
	}
	if err := loadError(c, gs); err != nil {
		return nil, nil, err
	}
	return s, gs, nil
}

// sessionOf returns the request's session without asking whether the store
// loaded it; a session that holds a user was loaded.
func sessionOf(c *gin.Context) (sessions.Session, *gsessions.Session, error) {
	v, ok := c.Get(sessions.DefaultKey)
	if !ok {
		return nil, nil, ErrNoSessions
	}
	s, ok := v.(sessions.Session)
	if !ok {
		return nil, nil, fmt.Errorf("%w (found %T under the sessions key; SessionsMany is not supported)", ErrNoSessions, v)
	}
	backed, ok := s.(gorillaBacked)
	if !ok {
		return nil, nil, fmt.Errorf("%w (the session value %T does not expose its gorilla session)", ErrNoSessions, s)
	}
	gs := backed.Session()
	if gs == nil {
		return nil, nil, ErrSessionStore
	}
	return s, gs, nil
}

// loadError returns ErrSessionStore when the store failed to load the
// request's session. The gorilla registry caches the session and the error
// of this request's load, so asking again costs a map lookup.
func loadError(c *gin.Context, gs *gsessions.Session) error {
	_, err := gs.Store().Get(c.Request, gs.Name())
	if err == nil {
		return nil
	}
	var de decodeError
	if errors.As(err, &de) && de.IsDecode() {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrSessionStore, err)
}

// sessionSwap replaces the request's session with a new one holding other
// values, in two steps so that the caller can put a step of its own in
// between: prepare saves the new session, commit retires the old one and
// sends the new cookie, abort undoes prepare.
//   - A server-side store (the session has an ID) gets the new session
//     under a fresh ID; commit deletes the old ID, so that a copy of the old
//     cookie no longer works.
//   - A cookie store gets a new cookie with only the new values.
//
// The old session's cookie options (path, domain, lifetime, SameSite) are
// kept. After commit the response carries exactly one cookie for the
// session.
type sessionSwap struct {
	c         *gin.Context
	gs        *gsessions.Session
	old       gsessions.Session
	oldValues map[any]any
	cookie    *headerWriter
}

// prepareSession saves a new session holding values. If it fails, nothing
// has changed.
func prepareSession(c *gin.Context, gs *gsessions.Session, values map[any]any) (*sessionSwap, error) {
	sw := &sessionSwap{c: c, gs: gs, old: *gs, oldValues: gs.Values, cookie: newHeaderWriter()}
	gs.ID = ""
	gs.IsNew = true
	gs.Values = values
	if err := gs.Save(c.Request, sw.cookie); err != nil {
		sw.restore()
		return nil, fmt.Errorf("%w: saving the new session: %w", ErrSessionStore, err)
	}
	return sw, nil
}

// commit deletes the old session from a server-side store and sends the
// new cookie. If the delete fails and mustDelete is set, the swap is undone
// and the error returned; otherwise the new cookie is sent all the same,
// for a caller that has made the old session worthless by other means, and
// the failure is returned for logging.
func (sw *sessionSwap) commit(mustDelete bool) error {
	var err error
	if sw.old.ID != "" {
		old := sw.old
		if err = deleteSession(sw.c.Request, &old); err != nil {
			err = fmt.Errorf("%w: deleting the old session: %w", ErrSessionStore, err)
			if mustDelete {
				sw.abort()
				return err
			}
		}
	}
	for _, cookie := range sw.cookie.Header().Values("Set-Cookie") {
		sw.c.Writer.Header().Add("Set-Cookie", cookie)
	}
	return err
}

// abort deletes the new session and puts the old one back in the request;
// no cookie is sent.
func (sw *sessionSwap) abort() {
	if sw.gs.ID != "" {
		fresh := *sw.gs
		_ = deleteSession(sw.c.Request, &fresh)
	}
	sw.restore()
}

func (sw *sessionSwap) restore() {
	sw.gs.ID = sw.old.ID
	sw.gs.IsNew = sw.old.IsNew
	sw.gs.Options = sw.old.Options
	sw.gs.Values = sw.oldValues
}

// replaceSession swaps the request's session for a new one holding only
// values, all or nothing.
func replaceSession(c *gin.Context, gs *gsessions.Session, values map[any]any) error {
	sw, err := prepareSession(c, gs, values)
	if err != nil {
		return err
	}
	return sw.commit(true)
}

// RenewSession replaces the request's session with a new one holding only
// values, as the plugin does at a switch and a return: a server-side store
// (Redis, memstore, ...) saves it under a new session ID and the old ID is
// deleted; a cookie store gets a new cookie. Call it from the app's own
// login handler once the password checks out, so that a session ID planted
// before the login is worthless (session fixation). It needs the sessions
// middleware, not the plugin's. When the request is an impersonation, it
// ends it in the Store first (audited as an end with cause logout), so that
// no copy of the old session can resume it. If it fails, the session is as
// it was.
func RenewSession(c *gin.Context, values map[string]any) error {
	_, gs, err := requestSession(c)
	if err != nil {
		return err
	}
	if p, imp := pluginOf(c), current(c); p != nil && imp != nil {
		if _, err := p.endEntries(c, Selector{ID: imp.ID}, CauseLogout, "the app renewed the session"); err != nil {
			return err
		}
		p.setImpersonation(c, nil)
	}
	m := make(map[any]any, len(values))
	for k, v := range values {
		m[k] = v
	}
	return replaceSession(c, gs, m)
}

// deleteSession removes a server-side session from its store. The cookie
// that a store writes for the deletion is dropped: the caller sends the new
// session's cookie instead.
func deleteSession(r *http.Request, s *gsessions.Session) error {
	opts := *s.Options
	opts.MaxAge = -1
	s.Options = &opts
	s.Values = map[any]any{} // some stores clear the map they are given
	return s.Save(r, newHeaderWriter())
}

// headerWriter collects the headers a store writes, so they can be sent or
// dropped.
type headerWriter struct{ h http.Header }

func newHeaderWriter() *headerWriter                { return &headerWriter{h: http.Header{}} }
func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}
