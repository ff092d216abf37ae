package loginas_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gin-contrib/sessions"
	gsessions "github.com/gorilla/sessions"

	"github.com/gin-loginas/loginas"
)

var errFaultStoreDown = errors.New("fault: session store is down")

// faultStore wraps a gin-contrib session store and fails on demand: every
// load, every save, or only the saves that delete a session (MaxAge < 0),
// which is how a server-side store is asked to forget an ID. It also keeps
// a copy of every server-side session it holds, so a test can look at all
// of them.
type faultStore struct {
	sessions.Store
	failLoads   atomic.Bool
	failSaves   atomic.Bool
	failDeletes atomic.Bool

	mu   sync.Mutex
	live map[string]map[any]any // by session ID
}

func newFaultStore(tb testing.TB, kind string) *faultStore {
	return &faultStore{Store: newRigStore(tb, kind)}
}

// Get registers the session under this store, so that saving it comes back
// here rather than to the wrapped store.
func (f *faultStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(f, name)
}

func (f *faultStore) New(r *http.Request, name string) (*gsessions.Session, error) {
	s, err := f.Store.New(r, name)
	if f.failLoads.Load() {
		s.ID, s.IsNew, s.Values = "", true, map[any]any{}
		return s, errFaultStoreDown
	}
	return s, err
}

func (f *faultStore) Save(r *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	deleting := s.Options != nil && s.Options.MaxAge < 0
	if f.failSaves.Load() || (deleting && f.failDeletes.Load()) {
		return errFaultStoreDown
	}
	id := s.ID
	values := maps.Clone(s.Values)
	if err := f.Store.Save(r, w, s); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[string]map[any]any{}
	}
	switch {
	case deleting:
		delete(f.live, id)
	case s.ID != "":
		f.live[s.ID] = values
	}
	return nil
}

// sessionsOf returns the server-side sessions whose user is id.
func (f *faultStore) sessionsOf(id string) []map[any]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[any]any
	for _, values := range f.live {
		if values[rigSessionKey] == id {
			out = append(out, values)
		}
	}
	return out
}

// auditTrail collects audit events and can fail on starts.
type auditTrail struct {
	failStarts atomic.Bool
	mu         sync.Mutex
	events     []loginas.Event
}

func (a *auditTrail) sink(_ context.Context, e loginas.Event) error {
	if e.Action == loginas.ActionStart && a.failStarts.Load() {
		return errAuditDown
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

// summary lists the events as "action/cause".
func (a *auditTrail) summary() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, string(e.Action)+"/"+string(e.Cause))
	}
	return out
}

// faultRig is an app on a faultStore with an audit trail, served over
// loopback HTTP.
type faultRig struct {
	store *faultStore
	dir   *rigDirectory
	audit *auditTrail
	app   *rigApp
	base  string
}

func newFaultRig(t *testing.T, kind string, tweak func(*loginas.Options)) *faultRig {
	t.Helper()
	r := &faultRig{store: newFaultStore(t, kind), dir: newRigDirectory(0), audit: &auditTrail{}}
	r.app = newRigApp(t, r.store, r.dir, true, func(o *loginas.Options) {
		o.Audit = r.audit.sink
		if tweak != nil {
			tweak(o)
		}
	})
	srv := rigServer(t, r.app)
	r.base = srv.URL
	return r
}

// post sends a same-origin form with an explicit token and returns the
// status and body.
func (r *faultRig) post(t *testing.T, rc *rigClient, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.base+path, strings.NewReader(url.Values{"loginas_csrf": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", r.base)
	resp, err := rc.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rigDrain(resp)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// mustState reads /me and fails the test unless it answers 200.
func mustState(t *testing.T, rc *rigClient) rigState {
	t.Helper()
	st, status := rc.state()
	if status != http.StatusOK {
		t.Fatalf("GET /me: status %d", status)
	}
	return st
}

// wantAdmin checks that the client is the admin, signed in as themselves.
func wantAdmin(t *testing.T, rc *rigClient) {
	t.Helper()
	st := mustState(t, rc)
	if st.User != rigAdmin || st.HasRecord || st.Impersonated {
		t.Fatalf("after the failure: user %q, record %v, impersonated %v; want the admin as themselves", st.User, st.HasRecord, st.Impersonated)
	}
}

// wantImpersonating checks that the admin is still logged in as alice.
func wantImpersonating(t *testing.T, rc *rigClient) {
	t.Helper()
	st := mustState(t, rc)
	if st.User != rigAlice || !st.HasRecord || !st.Impersonated || st.Actor != rigAdmin || st.Target != rigAlice {
		t.Fatalf("after the failure: %+v; want admin still logged in as alice", st)
	}
}

// want5xx checks a failure answer: a server error, with a body that says
// so without repeating the internal error.
func want5xx(t *testing.T, status int, body string, internal error) {
	t.Helper()
	if status < 500 || status > 599 {
		t.Fatalf("status %d, want 5xx (body %q)", status, body)
	}
	if strings.TrimSpace(body) == "" {
		t.Errorf("5xx with an empty body")
	}
	if strings.Contains(body, internal.Error()) {
		t.Errorf("body %q repeats the internal error", body)
	}
}

// wantNoOrphans checks the server-side store: every session of the target
// still holds a record.
func wantNoOrphans(t *testing.T, store *faultStore) {
	t.Helper()
	for _, values := range store.sessionsOf(rigAlice) {
		if _, ok := values[loginas.DefaultRecordKey].(string); !ok {
			t.Fatalf("a session of the target exists without its record: %v", values)
		}
	}
}

// signedInAdmin returns a client signed in as the admin, with a token.
func (r *faultRig) signedInAdmin(t *testing.T) (*rigClient, string) {
	t.Helper()
	rc := newRigClientURL(t, r.base)
	if status := rc.signIn(rigAdmin); status != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d", status)
	}
	return rc, mustState(t, rc).Token
}

// impersonating returns a client of the admin logged in as alice, with a
// token for the banner's form.
func (r *faultRig) impersonating(t *testing.T) (*rigClient, string) {
	t.Helper()
	rc, token := r.signedInAdmin(t)
	if status, body := r.post(t, rc, "/admin/loginas/"+rigAlice, token); status != http.StatusSeeOther {
		t.Fatalf("switch: status %d: %s", status, body)
	}
	wantImpersonating(t, rc)
	return rc, mustState(t, rc).Token
}

func TestFaultUserDirectory(t *testing.T) {
	t.Parallel()
	for _, kind := range rigStoreKinds {
		t.Run("store="+kind, func(t *testing.T) {
			t.Parallel()
			t.Run("switch", func(t *testing.T) {
				r := newFaultRig(t, kind, nil)
				rc, token := r.signedInAdmin(t)
				r.dir.failing.Store(true)
				status, body := r.post(t, rc, "/admin/loginas/"+rigAlice, token)
				r.dir.failing.Store(false)
				want5xx(t, status, body, errRigDirectoryDown)
				wantAdmin(t, rc)
				wantNoOrphans(t, r.store)
			})
			t.Run("impersonated page", func(t *testing.T) {
				r := newFaultRig(t, kind, nil)
				rc, _ := r.impersonating(t)
				r.dir.failing.Store(true)
				resp, err := rc.http.Get(r.base + "/page")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				rigDrain(resp)
				r.dir.failing.Store(false)
				want5xx(t, resp.StatusCode, string(body), errRigDirectoryDown)
				wantImpersonating(t, rc)
			})
			t.Run("return", func(t *testing.T) {
				r := newFaultRig(t, kind, nil)
				rc, token := r.impersonating(t)
				r.dir.failing.Store(true)
				status, body := r.post(t, rc, "/admin/loginas/logout", token)
				r.dir.failing.Store(false)
				want5xx(t, status, body, errRigDirectoryDown)
				wantImpersonating(t, rc)
				if status, body := r.post(t, rc, "/admin/loginas/logout", mustState(t, rc).Token); status != http.StatusSeeOther {
					t.Fatalf("return once the directory is back: status %d: %s", status, body)
				}
				wantAdmin(t, rc)
			})
		})
	}
}

func TestFaultSessionStore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		kinds []string // stores the case applies to
		// fail turns the fault on; the request runs while it is on.
		fail func(s *faultStore)
		// returning: the request is the return to the actor, else the
		// switch.
		returning bool
		// completes: the return goes through all the same, because the
		// impersonation has ended in the Store and the old session that
		// could not be deleted is worthless.
		completes bool
	}{
		{"switch, every save fails", rigStoreKinds, func(s *faultStore) { s.failSaves.Store(true) }, false, false},
		{"switch, deleting the old ID fails", []string{"memstore"}, func(s *faultStore) { s.failDeletes.Store(true) }, false, false},
		{"switch, loading fails", rigStoreKinds, func(s *faultStore) { s.failLoads.Store(true) }, false, false},
		{"return, every save fails", rigStoreKinds, func(s *faultStore) { s.failSaves.Store(true) }, true, false},
		{"return, deleting the old ID fails", []string{"memstore"}, func(s *faultStore) { s.failDeletes.Store(true) }, true, true},
		{"return, loading fails", rigStoreKinds, func(s *faultStore) { s.failLoads.Store(true) }, true, false},
	}
	for _, kind := range rigStoreKinds {
		t.Run("store="+kind, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				if !slices.Contains(tc.kinds, kind) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					r := newFaultRig(t, kind, nil)
					heal := func() {
						r.store.failLoads.Store(false)
						r.store.failSaves.Store(false)
						r.store.failDeletes.Store(false)
					}
					if !tc.returning {
						rc, token := r.signedInAdmin(t)
						tc.fail(r.store)
						status, body := r.post(t, rc, "/admin/loginas/"+rigAlice, token)
						heal()
						want5xx(t, status, body, errFaultStoreDown)
						wantAdmin(t, rc)
						wantNoOrphans(t, r.store)
						if got := r.audit.summary(); slices.Contains(got, "start/") && !slices.Contains(got, "end/failed") {
							t.Errorf("audit trail %v: a start without its failed end", got)
						}
						return
					}
					rc, token := r.impersonating(t)
					copied := rc.http.Jar.Cookies(rc.url())
					tc.fail(r.store)
					status, body := r.post(t, rc, "/admin/loginas/logout", token)
					heal()
					if tc.completes {
						if status != http.StatusSeeOther {
							t.Fatalf("return: status %d, want 303: %s", status, body)
						}
						wantAdmin(t, rc)
						replay := newRigClientURL(t, r.base)
						replay.http.Jar.SetCookies(replay.url(), copied)
						if st := mustState(t, replay); st.User != "" || st.Impersonated {
							t.Fatalf("the impersonated session that could not be deleted = %+v; want it refused", st)
						}
						return
					}
					want5xx(t, status, body, errFaultStoreDown)
					wantImpersonating(t, rc)
					wantNoOrphans(t, r.store)
					if got := r.audit.summary(); slices.Contains(got, "end/logout") {
						t.Errorf("audit trail %v: an end recorded for a return that failed", got)
					}
					if status, body := r.post(t, rc, "/admin/loginas/logout", mustState(t, rc).Token); status != http.StatusSeeOther {
						t.Fatalf("return once the store is back: status %d: %s", status, body)
					}
					wantAdmin(t, rc)
				})
			}
		})
	}
}

func TestFaultAuditAndHooks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		tweak    func(*loginas.Options)
		fail     func(r *faultRig)
		internal error
	}{
		{"audit sink fails on start", nil, func(r *faultRig) { r.audit.failStarts.Store(true) }, errAuditDown},
	}
	for _, kind := range rigStoreKinds {
		t.Run("store="+kind, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := newFaultRig(t, kind, tc.tweak)
					rc, token := r.signedInAdmin(t)
					tc.fail(r)
					status, body := r.post(t, rc, "/admin/loginas/"+rigAlice, token)
					want5xx(t, status, body, tc.internal)
					wantAdmin(t, rc)
					wantNoOrphans(t, r.store)
					if got := r.audit.summary(); slices.Contains(got, "start/") {
						t.Errorf("audit trail %v: a start recorded for a switch that was not made", got)
					}
				})
			}
		})
	}
}
