// Package loginastest helps an app's own tests use loginas: start and end an
// impersonation in one line each, over real HTTP with real cookies, and
// assert on the audit trail.
//
// It has four parts:
//
//   - Recorder, an audit sink to put in Options.Audit, with Find, Require,
//     Last, Events and Reset;
//   - Client, a cookie-keeping HTTP client for an httptest.Server, with
//     LoginAs and Return, which fail the test unless the plugin did what was
//     asked, and TryLoginAs and TryReturn, which return any answer for tests
//     of refusals;
//   - Mount, which adds a test-only route handing out the plugin's CSRF
//     token, so that the Client can post to the plugin's routes;
//   - CheckStore, CheckHistory and CheckConsents, which test an
//     implementation of the plugin's storage interfaces against the contract
//     the plugin relies on.
//
// It depends only on the standard library, Gin, gin-contrib/sessions and
// loginas.
//
// # Example
//
// A test of an app whose router is built by app.NewRouter (a function of the
// app that calls loginas.Register and adds the app's routes, its login
// route among them):
//
//	func TestSupportSeesAliceOrders(t *testing.T) {
//		audit := &loginastest.Recorder{}
//		router, plugin := app.NewRouter(app.Config{Audit: audit.Audit})
//		loginastest.Mount(router, plugin)
//		srv := httptest.NewServer(router)
//		defer srv.Close()
//
//		c := loginastest.NewClient(srv.URL, plugin)
//		c.PostForm(t, "/login", url.Values{"username": {"admin"}, "password": {"admin"}})
//
//		c.LoginAs(t, "2", "ticket 42")
//		start := audit.Require(t, loginas.ActionStart, "")
//		if start.TargetID != "2" || start.Reason != "ticket 42" {
//			t.Fatalf("start event = %+v", start)
//		}
//		if resp := c.Get(t, "/orders"); resp.Header.Get(loginas.HeaderImpersonatedUser) != "2" {
//			t.Fatalf("GET /orders was not served to alice: %s", resp.Status)
//		}
//
//		c.Return(t)
//		audit.Require(t, loginas.ActionEnd, loginas.CauseLogout)
//
//		resp := c.TryLoginAs(t, "1", "") // oneself
//		if resp.StatusCode != http.StatusUnprocessableEntity {
//			t.Fatalf("logging in as oneself answered %s", resp.Status)
//		}
//		audit.Require(t, loginas.ActionDenied, loginas.CauseSelf)
//	}
//
// # Signing in
//
// Signing in is the app's business: the test signs the Client in through
// the app's own login route (PostForm, or Do for anything else), and the
// session cookie the app sets is kept in the Client's jar for every later
// request. A session cookie with the Secure flag works too: Go's cookie jar
// (Go 1.25 and 1.26) sends Secure cookies over plain HTTP to localhost and
// loopback addresses, as browsers do, and httptest.NewServer listens on
// 127.0.0.1. For another host name, serve with httptest.NewTLSServer and use
// its transport (see Client.HTTP).
//
// # CSRF tokens
//
// The plugin's routes want a CSRF token tied to the session, and the token
// changes with the session at every switch and return, so LoginAs, Return
// and their Try forms fetch a fresh one before each post, from
// Client.TokenPage. By default that is TokenPath, served by Mount. A test
// that would rather not add a route can point TokenPage at any page of the
// app that renders the plugin's button, banner or logout partial: the token
// is then read from the page's loginas_csrf field (see TokenFromHTML).
// Never Mount on a router that serves real traffic.
//
// # Responses
//
// LoginAs, Return and the Try forms post as a script does (Accept:
// application/json): the plugin answers a switch with 200 and a refusal
// with 403, 404, 409 or 422 and {"error": "…"} instead of a redirect and a
// flash message. To test the browser flow, post the form yourself with
// PostForm, including Token under the field loginas_csrf. Every response a
// Client returns has its body read already: read it once more with
// io.ReadAll, there is nothing to close.
package loginastest
