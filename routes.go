package loginas

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// routePaths are the paths of the plugin's routes under one prefix.
type routePaths struct {
	consentOn bool   // the consent route is mounted (Options.RequireConsent)
	loginAs   string // prefix + "/", followed by the target's ID
	logout    string
	access    string // GET: the person's own access data
	end       string // POST: end one impersonation
	consent   string // POST: grant or withdraw consent
	live      string // GET: every live impersonation
}

func newRoutePaths(prefix string, consent bool) routePaths {
	return routePaths{
		consentOn: consent,
		loginAs:   prefix + "/",
		logout:    prefix + "/logout",
		access:    prefix + "/access",
		end:       prefix + "/access/end",
		consent:   prefix + "/access/consent",
		live:      prefix + "/live",
	}
}

// reserved reports whether a user ID names one of the plugin's own routes
// rather than a user: POST {Prefix}/logout is the logout route, so a user
// whose ID is "logout" cannot be logged in as, and gets no button.
func (r routePaths) reserved(id string) bool {
	return r.loginAs+id == r.logout
}

// allow returns the methods the plugin answers on path, or "" for a path
// that is not the plugin's.
func (r routePaths) allow(path string) string {
	switch path {
	case r.consent:
		if r.consentOn {
			return http.MethodPost
		}
		return ""
	case r.logout, r.end:
		return http.MethodPost
	case r.access, r.live:
		return http.MethodGet + ", " + http.MethodPost // POST: a user whose ID is "access" or "live"
	}
	if id, ok := strings.CutPrefix(path, r.loginAs); ok && id != "" && !strings.Contains(id, "/") {
		return http.MethodPost
	}
	return ""
}

// Mount adds the plugin's routes to router, as Register does: for an app
// that made the plugin with New and installed Middleware itself. Other
// methods on their paths get 405 from the middleware, so no route is
// mounted per method.
func (p *Plugin) Mount(router gin.IRoutes) {
	router.POST(p.routes.logout, p.logout)
	router.POST(p.routes.loginAs+":id", p.loginAs)
	router.POST(p.routes.end, p.endAccess)
	if p.opts.RequireConsent {
		router.POST(p.routes.consent, p.consent)
	}
	router.GET(p.routes.access, p.accessJSON)
	router.GET(p.routes.live, p.liveJSON)
}

// LoginAsURL returns the path that switches to the user with the given ID.
func (p *Plugin) LoginAsURL(id string) string {
	return p.routes.loginAs + url.PathEscape(id)
}

// LogoutURL returns the path of the logout route.
func (p *Plugin) LogoutURL() string {
	return p.routes.logout
}

// LoginAsHandler returns the handler of POST {Prefix}/:id, which Register
// mounts.
func (p *Plugin) LoginAsHandler() gin.HandlerFunc { return p.loginAs }

// LogoutHandler returns the handler of POST {Prefix}/logout, which Register
// mounts. ReadOnly lets it through wherever it is mounted.
func (p *Plugin) LogoutHandler() gin.HandlerFunc { return p.logout }
