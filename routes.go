package loginas

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
)

// otherMethods are the methods the routes answer with 405.
var otherMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace,
}

// mount adds POST {Prefix}/logout and POST {Prefix}/:id to router, and a
// 405 with "Allow: POST" for every other method on both paths.
func (p *Plugin) mount(router *gin.Engine) {
	g := router.Group(p.opts.Prefix)
	g.POST("/logout", p.logout)
	g.POST("/:id", p.loginAs)
	for _, m := range otherMethods {
		g.Handle(m, "/logout", methodNotAllowed)
		g.Handle(m, "/:id", methodNotAllowed)
	}
}

func methodNotAllowed(c *gin.Context) {
	c.Header("Allow", http.MethodPost)
	c.AbortWithStatus(http.StatusMethodNotAllowed)
}

// LoginAsURL returns the path that switches to the user with the given ID.
func (p *Plugin) LoginAsURL(id string) string {
	return p.loginPath + url.PathEscape(id)
}

// LogoutURL returns the path of the logout route.
func (p *Plugin) LogoutURL() string {
	return p.logoutURL
}
