package loginastest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/gin-loginas/loginas"
)

// TB is the part of testing.TB that the helpers use: *testing.T,
// *testing.B, *testing.F and every testing.TB satisfy it. Fatalf is
// expected to stop the test; the helpers return right after calling it all
// the same, so a TB that only records the failure works too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Client is a browser stand-in for tests: it keeps cookies in a jar, sends
// paths relative to a base URL, and returns redirects instead of following
// them. Its methods read the whole response body and put it back, so a
// response can be read once more and needs no Close. A Client is safe for
// concurrent use, but its requests all share one session.
type Client struct {
	// HTTP sends the requests. NewClient gives it a fresh cookie jar and a
	// CheckRedirect that returns redirects as they are. For a server from
	// httptest.NewTLSServer, set HTTP.Transport to the server's
	// Client().Transport.
	HTTP *http.Client

	// BaseURL is the root that request paths are resolved against, such as
	// an httptest.Server's URL.
	BaseURL string

	// TokenPage is the page Token reads the plugin's CSRF token from. It is
	// TokenPath by default, which Mount serves; it may be any page of the
	// app that renders the plugin's button, banner or logout partial. Set
	// it to "" for an app with Options.ExternalCSRF: no token is sent then.
	TokenPage string

	plugin *loginas.Plugin
}

// NewClient returns a Client for the app at baseURL whose plugin is p. The
// routes it posts to come from p.LoginAsURL and p.LogoutURL; with a nil p,
// from loginas.DefaultPrefix (for an app whose plugin the test cannot
// reach, such as a running binary).
func NewClient(baseURL string, p *loginas.Plugin) *Client {
	jar, _ := cookiejar.New(nil) // cookiejar.New fails only for a bad PublicSuffixList.
	return &Client{
		HTTP: &http.Client{
			Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		BaseURL:   strings.TrimRight(baseURL, "/"),
		TokenPage: TokenPath,
		plugin:    p,
	}
}

// Do sends req and returns its response with the body read. A req.URL
// without a host, such as one made by http.NewRequest("GET", "/me", nil),
// is resolved against BaseURL. Only a failure to send fails t: any status is
// returned to the caller.
func (c *Client) Do(t TB, req *http.Request) *http.Response {
	t.Helper()
	if req.URL.Host == "" {
		base, err := url.Parse(c.BaseURL + "/")
		if err != nil {
			t.Fatalf("loginastest: BaseURL %q: %v", c.BaseURL, err)
			return nil
		}
		req.URL = base.ResolveReference(req.URL)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("loginastest: %s %s: %v", req.Method, req.URL, err)
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("loginastest: %s %s: reading the body: %v", req.Method, req.URL, err)
		return nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// Get requests path (relative to BaseURL, or a full URL) and returns the
// response, whatever its status.
func (c *Client) Get(t TB, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatalf("loginastest: GET %q: %v", path, err)
		return nil
	}
	return c.Do(t, req)
}

// PostForm posts form, URL-encoded, to path (relative to BaseURL, or a full
// URL) and returns the response, whatever its status. It is how a test
// signs in through the app's own login route.
func (c *Client) PostForm(t TB, path string, form url.Values) *http.Response {
	t.Helper()
	return c.post(t, path, form, "")
}

func (c *Client) post(t TB, path string, form url.Values, accept string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("loginastest: POST %q: %v", path, err)
		return nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return c.Do(t, req)
}

// Token returns a fresh CSRF token for the plugin's routes, read from
// TokenPage: the body of a text/plain page (what Mount serves), else the
// value of the first loginas_csrf field of an HTML page. It is "" when the
// session has none, as for a client that has not signed in, and when
// TokenPage is "". A page that does not answer 200 fails t.
func (c *Client) Token(t TB) string {
	t.Helper()
	if c.TokenPage == "" {
		return ""
	}
	resp := c.Get(t, c.TokenPage)
	if resp == nil {
		return ""
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if c.TokenPage == TokenPath {
			hint = " (call loginastest.Mount(router, plugin) after loginas.Register, or set Client.TokenPage to a page with the plugin's partials)"
		}
		t.Fatalf("loginastest: token page %s answered %s%s", c.TokenPage, resp.Status, hint)
		return ""
	}
	if mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mediaType == "text/plain" {
		return strings.TrimSpace(string(body))
	}
	return TokenFromHTML(string(body))
}

// LoginAs switches the client's session to the user with the given ID,
// with an optional reason for the audit trail, and fails t unless the
// plugin answers that the switch was made to the user whose ID is exactly
// id (not another spelling of it that FindUser also finds). The client must be signed in as
// someone allowed to (see "Signing in" in the package documentation).
//
// It posts the way a script does (Accept: application/json), so the plugin
// answers 200 with the new state instead of a redirect, and a refusal with
// its status and message, which the failure shows.
func (c *Client) LoginAs(t TB, id, reason string) *http.Response {
	t.Helper()
	token := c.Token(t)
	resp := c.tryLoginAs(t, id, reason, token)
	if resp == nil {
		return nil
	}
	var state struct {
		Impersonating bool `json:"impersonating"`
		User          *struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	body := peek(resp)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &state) != nil || !state.Impersonating || state.User == nil || state.User.ID != id {
		t.Fatalf("loginastest: log in as %q failed: POST %s answered %s: %s%s",
			id, resp.Request.URL.Path, resp.Status, body, tokenHint(token, c.TokenPage))
		return nil
	}
	return resp
}

// TryLoginAs posts to the login-as route like LoginAs, but returns the
// response whatever it is: for tests of refusals, which answer 403, 404,
// 409 or 422 with a JSON body {"error": "…"}. To test the browser flow
// (a 303 and a flash message), post a form with PostForm and Token instead.
func (c *Client) TryLoginAs(t TB, id, reason string) *http.Response {
	t.Helper()
	return c.tryLoginAs(t, id, reason, c.Token(t))
}

func (c *Client) tryLoginAs(t TB, id, reason, token string) *http.Response {
	t.Helper()
	form := url.Values{}
	if token != "" {
		form.Set(loginas.CSRFField, token)
	}
	if reason != "" {
		form.Set("reason", reason)
	}
	return c.post(t, c.loginAsURL(id), form, "application/json")
}

// Return ends the client's impersonation through the logout route, and
// fails t unless the plugin answers that the actor is back. A client that
// was not impersonating fails t too: the route signs it out instead.
func (c *Client) Return(t TB) *http.Response {
	t.Helper()
	token := c.Token(t)
	resp := c.tryReturn(t, token)
	if resp == nil {
		return nil
	}
	var state struct {
		Impersonating bool             `json:"impersonating"`
		User          *json.RawMessage `json:"user"`
	}
	body := peek(resp)
	switch {
	case resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &state) != nil || state.Impersonating:
		t.Fatalf("loginastest: return failed: POST %s answered %s: %s%s",
			resp.Request.URL.Path, resp.Status, body, tokenHint(token, c.TokenPage))
		return nil
	case state.User == nil || string(*state.User) == "null":
		t.Fatalf("loginastest: return: the client was not impersonating anyone, so POST %s signed it out", resp.Request.URL.Path)
		return nil
	}
	return resp
}

// TryReturn posts to the logout route like Return, but returns the
// response whatever it is. On a session that is not impersonating, it is a
// plain logout.
func (c *Client) TryReturn(t TB) *http.Response {
	t.Helper()
	return c.tryReturn(t, c.Token(t))
}

func (c *Client) tryReturn(t TB, token string) *http.Response {
	t.Helper()
	form := url.Values{}
	if token != "" {
		form.Set(loginas.CSRFField, token)
	}
	return c.post(t, c.logoutURL(), form, "application/json")
}

func (c *Client) loginAsURL(id string) string {
	if c.plugin != nil {
		return c.plugin.LoginAsURL(id)
	}
	return loginas.DefaultPrefix + "/" + url.PathEscape(id)
}

func (c *Client) logoutURL() string {
	if c.plugin != nil {
		return c.plugin.LogoutURL()
	}
	return loginas.DefaultPrefix + "/logout"
}

// peek returns the body of a response from Do, leaving it readable.
func peek(resp *http.Response) string {
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return strings.TrimSpace(string(body))
}

func tokenHint(token, page string) string {
	if token != "" || page == "" {
		return ""
	}
	return fmt.Sprintf(" (no CSRF token was sent: %s gave none; is the client signed in?)", page)
}
