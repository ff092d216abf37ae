package loginas

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
)

// ErrNoSessions means the gin-contrib/sessions middleware did not run before
// the plugin's: add router.Use(sessions.Sessions(...)) before Register.
var ErrNoSessions = errors.New("loginas: no session on this request: add router.Use(sessions.Sessions(name, store)) before loginas.Register")

// ErrSessionStore means the session store failed to load or save a session.
var ErrSessionStore = errors.New("loginas: session store failed")

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

// replaceSession swaps the request's session for a new one holding only
// values, all or nothing:
//   - the new session is saved first; if that fails nothing has changed;
//   - a server-side store (the session has an ID) gets the new session under
//     a fresh ID, and the old ID is then deleted from the store, so a copy of
//     the old cookie no longer works; if the delete fails, the new session is
//     deleted again and its cookie withheld, and the old one stays as it was;
//   - a cookie store gets a new cookie with only the new values.
//
// The old session's cookie options (path, domain, lifetime, SameSite) are
// kept. On success the response carries exactly one cookie for the session.
func replaceSession(c *gin.Context, gs *gsessions.Session, values map[any]any) error {
	old := *gs
	oldValues := gs.Values

	gs.ID = ""
	gs.IsNew = true
	gs.Values = values
	newCookie := newHeaderWriter()
	if err := gs.Save(c.Request, newCookie); err != nil {
		restoreSession(gs, &old, oldValues)
		return fmt.Errorf("%w: saving the new session: %w", ErrSessionStore, err)
	}
	if old.ID != "" {
		if err := deleteSession(c.Request, &old); err != nil {
			fresh := *gs
			_ = deleteSession(c.Request, &fresh)
			restoreSession(gs, &old, oldValues)
			return fmt.Errorf("%w: deleting the old session: %w", ErrSessionStore, err)
		}
	}
	for _, cookie := range newCookie.Header().Values("Set-Cookie") {
		c.Writer.Header().Add("Set-Cookie", cookie)
	}
	return nil
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

func restoreSession(gs, old *gsessions.Session, values map[any]any) {
	gs.ID = old.ID
	gs.IsNew = old.IsNew
	gs.Options = old.Options
	gs.Values = values
}

// headerWriter collects the headers a store writes, so they can be sent or
// dropped.
type headerWriter struct{ h http.Header }

func newHeaderWriter() *headerWriter                { return &headerWriter{h: http.Header{}} }
func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}
