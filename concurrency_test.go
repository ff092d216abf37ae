package loginas_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// statusTally counts response statuses from many goroutines.
type statusTally struct {
	mu     sync.Mutex
	counts map[int]int
}

func (s *statusTally) add(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[int]int{}
	}
	s.counts[status]++
}

func (s *statusTally) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(func(yield func(int) bool) {
		for k := range s.counts {
			if !yield(k) {
				return
			}
		}
	})
	out := ""
	for _, k := range keys {
		out += fmt.Sprintf(" %d×%d", k, s.counts[k])
	}
	return out
}

// wantNo5xx fails the test if any status was a 5xx or a transport error
// (0), or anything but 2xx, 303 and 4xx.
func (s *statusTally) wantNo5xx(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for status, n := range s.counts {
		ok := (status >= 200 && status < 300) || status == http.StatusSeeOther || (status >= 400 && status < 500)
		if !ok {
			t.Errorf("%d responses with status %d", n, status)
		}
	}
}

// stateProblem reports what is wrong with a state seen by the client of
// actor, or "" when it is one of the states a session may be in: signed
// out, the actor as themselves, or one of targets with a valid record that
// names the actor.
func stateProblem(st rigState, actor string, targets []string) string {
	switch {
	case st.User == "":
		if st.HasRecord || st.Impersonated {
			return "signed out, yet a record or the impersonation flag remains"
		}
	case st.User == actor:
		if st.HasRecord || st.Impersonated || st.Actor != "" {
			return "the actor as themselves, yet with a record or the impersonation flag"
		}
	case slices.Contains(targets, st.User):
		if !st.HasRecord {
			return "a target session without its record"
		}
		if !st.Impersonated || st.Actor != actor || st.Target != st.User {
			return "a target session whose record was not accepted or names someone else"
		}
	default:
		return "a session of a user nobody switched to"
	}
	return ""
}

// wantCleanTrail fails the test if the plugin ever had to throw away a
// session it found broken: with consistent sessions, no impersonation ends
// as revoked or failed, and one ends as invalid only when it had already
// ended by a return (a request that still carried its cookie).
func wantCleanTrail(t *testing.T, a *auditTrail) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	returned := map[string]bool{}
	for _, e := range a.events {
		if e.Action == loginas.ActionEnd && e.Cause == loginas.CauseLogout {
			returned[e.ImpersonationID] = true
		}
	}
	for _, e := range a.events {
		if e.Action != loginas.ActionEnd {
			continue
		}
		switch {
		case e.Cause == loginas.CauseInvalid && e.ImpersonationID != "" && returned[e.ImpersonationID]:
			// A replay of an impersonation that was returned from.
		case e.Cause == loginas.CauseInvalid || e.Cause == loginas.CauseRevoked || e.Cause == loginas.CauseFailed:
			t.Errorf("audit trail holds an end of cause %s (%s; actor %q, target %q): a session was found broken", e.Cause, e.Detail, e.ActorID, e.TargetID)
		}
	}
}

// TestConcurrentOneSession runs switches, returns and reads in parallel on
// one browser session (one cookie jar), so that requests carry cookies that
// other requests are replacing. Whatever the interleaving, no answer is a
// 5xx, and every state observed is one a session may legitimately be in.
func TestConcurrentOneSession(t *testing.T) {
	t.Parallel()
	const goroutines, rounds = 8, 40
	targets := []string{rigAlice, rigBob}
	for _, kind := range rigStoreKinds {
		// With the plugin's CSRF token most concurrent posts carry a token
		// that another request has just replaced, and are refused; with
		// the app's own CSRF protection (ExternalCSRF) every post goes
		// through to the switch logic.
		for _, csrf := range []string{"plugin", "external"} {
			t.Run("store="+kind+"/csrf="+csrf, func(t *testing.T) {
				t.Parallel()
				trail := &auditTrail{}
				app := newRigApp(t, newRigStore(t, kind), newRigDirectory(0), true, func(o *loginas.Options) {
					o.Audit = trail.sink
					o.ExternalCSRF = csrf == "external"
				})
				rc := newRigClientURL(t, rigServer(t, app).URL)
				if status := rc.signIn(rigAdmin); status != http.StatusSeeOther {
					t.Fatalf("sign-in: status %d", status)
				}
				var tally statusTally
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						rng := rand.New(rand.NewPCG(uint64(g), 7))
						for range rounds {
							st, status := rc.state()
							tally.add(status)
							if status == http.StatusOK {
								if problem := stateProblem(st, rigAdmin, targets); problem != "" {
									t.Errorf("%s: %+v", problem, st)
								}
							}
							switch rng.IntN(3) {
							case 0:
								id := targets[rng.IntN(len(targets))]
								tally.add(rc.post("/admin/loginas/"+id, tokenForm(st.Token)))
							case 1:
								tally.add(rc.post("/admin/loginas/logout", tokenForm(st.Token)))
							case 2:
								// A plain logout that raced a switch signs the
								// session out; sign in again, as a person would.
								if st.User == "" && status == http.StatusOK {
									tally.add(rc.signIn(rigAdmin))
								}
							}
						}
					})
				}
				wg.Wait()
				tally.wantNo5xx(t)
				st, status := rc.state()
				if status != http.StatusOK {
					t.Fatalf("final GET /me: status %d", status)
				}
				if problem := stateProblem(st, rigAdmin, targets); problem != "" {
					t.Errorf("final state: %s: %+v", problem, st)
				}
				wantCleanTrail(t, trail)
				t.Logf("statuses:%s", tally.String())
			})
		}
	}
}

// TestConcurrentManySessions runs full cycles (switch, read, return, read)
// on many sessions at once, two actors sharing the user directory and the
// store. Each session is used by one goroutine, so every step must succeed.
func TestConcurrentManySessions(t *testing.T) {
	t.Parallel()
	const clients, cycles, extraUsers = 12, 15, 20
	for _, kind := range rigStoreKinds {
		t.Run("store="+kind, func(t *testing.T) {
			t.Parallel()
			trail := &auditTrail{}
			app := newRigApp(t, newRigStore(t, kind), newRigDirectory(extraUsers), true, func(o *loginas.Options) {
				o.Audit = trail.sink
			})
			base := rigServer(t, app).URL
			targets := []string{rigAlice, rigBob}
			for i := range extraUsers {
				targets = append(targets, strconv.Itoa(7+i))
			}
			var tally statusTally
			var wg sync.WaitGroup
			for n := range clients {
				wg.Go(func() {
					actor := []string{rigAdmin, rigRoot}[n%2]
					rc := newRigClientURL(t, base)
					tally.add(rc.signIn(actor))
					rng := rand.New(rand.NewPCG(uint64(n), 11))
					for range cycles {
						target := targets[rng.IntN(len(targets))]
						if status := rc.switchTo(target); status != http.StatusSeeOther {
							t.Errorf("switch of %s to %s: status %d", actor, target, status)
							return
						}
						if st, _ := rc.state(); st.User != target || stateProblem(st, actor, targets) != "" {
							t.Errorf("after the switch of %s to %s: %+v", actor, target, st)
							return
						}
						if status := rc.returnBack(); status != http.StatusSeeOther {
							t.Errorf("return of %s from %s: status %d", actor, target, status)
							return
						}
						if st, _ := rc.state(); st.User != actor || stateProblem(st, actor, targets) != "" {
							t.Errorf("after the return of %s from %s: %+v", actor, target, st)
							return
						}
					}
				})
			}
			wg.Wait()
			tally.wantNo5xx(t)
			wantCleanTrail(t, trail)
			if got, want := len(trailOf(trail, "start/")), clients*cycles; got != want {
				t.Errorf("%d starts audited, want %d", got, want)
			}
			if got, want := len(trailOf(trail, "end/logout")), clients*cycles; got != want {
				t.Errorf("%d returns audited, want %d", got, want)
			}
		})
	}
}

// TestConcurrentSaveDoesNotReviveOldSession holds an app request that
// saves the session (as any handler that records something in it does)
// while the same browser switches or returns in another request. On a
// server-side store the switch deletes the old session ID; the held request
// then saves its copy of the old session under that ID again, since the
// store has no compare-and-set. After a return, a copy of the impersonated
// cookie must not be an impersonation any more (its end is already
// audited). After a switch, the revived session may only be what the
// README documents: the actor's own, without a record, granting nothing.
func TestConcurrentSaveDoesNotReviveOldSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// setUp returns the session the held request and the change use.
		setUp func(t *testing.T, app *rigApp) benchSession
		// change is the request made while the other one is held.
		path string
		// problem says what is wrong with the state of the old cookie
		// afterwards, or "".
		problem func(st rigState) string
	}{
		{
			name:  "return",
			setUp: func(t *testing.T, app *rigApp) benchSession { return benchImpersonate(t, app) },
			path:  "/admin/loginas/logout",
			problem: func(st rigState) string {
				if st.Impersonated || st.HasRecord || st.User == rigAlice {
					return "the impersonation ended by the return is alive again"
				}
				return ""
			},
		},
		{
			name:  "switch",
			setUp: func(t *testing.T, app *rigApp) benchSession { return benchSignIn(t, app, rigAdmin) },
			path:  "/admin/loginas/" + rigAlice,
			problem: func(st rigState) string {
				if (st.User != "" && st.User != rigAdmin) || st.HasRecord || st.Impersonated {
					return "the session replaced by the switch came back as more than the actor's own"
				}
				return ""
			},
		},
	} {
		t.Run("store=memstore/"+tc.name, func(t *testing.T) {
			t.Parallel()
			app := newRigApp(t, newRigStore(t, "memstore"), newRigDirectory(0), true, nil)
			loaded, release := make(chan struct{}), make(chan struct{})
			app.engine.GET("/visit", func(c *gin.Context) {
				s := sessions.Default(c)
				close(loaded)
				<-release
				s.Set("last_visit", "/visit")
				if err := s.Save(); err != nil {
					c.AbortWithStatus(http.StatusInternalServerError)
					return
				}
				c.Status(http.StatusNoContent)
			})
			old := tc.setUp(t, app)
			held := make(chan int)
			go func() {
				held <- benchServe(app.engine, http.MethodGet, "/visit", old.cookie, nil).Code
			}()
			<-loaded
			rec := benchServe(app.engine, http.MethodPost, tc.path, old.cookie, tokenForm(old.token))
			close(release)
			if status := <-held; status != http.StatusNoContent {
				t.Fatalf("held request: status %d", status)
			}
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("POST %s: status %d: %s", tc.path, rec.Code, rec.Body)
			}
			replay := benchServe(app.engine, http.MethodGet, "/me", old.cookie, nil)
			var st rigState
			if err := rigDecodeBytes(replay.Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			if problem := tc.problem(st); problem != "" {
				t.Errorf("%s: the old cookie now gives %+v", problem, st)
			}
		})
	}
}

func tokenForm(token string) url.Values {
	return url.Values{"loginas_csrf": {token}}
}

// trailOf returns the audit entries equal to s ("action/cause").
func trailOf(a *auditTrail, s string) []string {
	var out []string
	for _, e := range a.summary() {
		if e == s {
			out = append(out, e)
		}
	}
	return out
}
