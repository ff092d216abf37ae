package loginastest

import (
	"html"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// TokenPath is the route that Mount adds and that a new Client reads its
// CSRF tokens from.
const TokenPath = "/_loginastest/token"

// Mount adds GET TokenPath to router: it answers, as text/plain, a fresh
// CSRF token for the request's session (loginas.Token), or an empty body when
// the session has none. Call it after loginas.Register, on the router of a
// test only: the route hands a token to any caller, which is what a test
// needs and what a served app must not do.
func Mount(router *gin.Engine, p *loginas.Plugin) {
	if router == nil || p == nil {
		panic("loginastest: Mount needs the router and the *loginas.Plugin that loginas.Register returned")
	}
	router.GET(TokenPath, func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		c.String(http.StatusOK, loginas.Token(c))
	})
}

var (
	inputTag  = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	attribute = regexp.MustCompile(`(?is)\s([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
)

// TokenFromHTML returns the value of the first <input name="loginas_csrf">
// in page, as the plugin's button, banner and logout partials render it,
// or "" when there is none.
func TokenFromHTML(page string) string {
	for _, tag := range inputTag.FindAllString(page, -1) {
		var name, value string
		var hasValue bool
		for _, m := range attribute.FindAllStringSubmatch(tag, -1) {
			v := html.UnescapeString(m[2] + m[3] + m[4])
			switch strings.ToLower(m[1]) {
			case "name":
				name = v
			case "value":
				value, hasValue = v, true
			}
		}
		if name == loginas.CSRFField && hasValue {
			return value
		}
	}
	return ""
}
