package loginas

import "github.com/gin-gonic/gin"

// Guard returns a middleware that refuses every request of an impersonated
// session with 403 and audits it (denied, cause guarded). Put it on the
// routes an impersonator must never use: password and e-mail changes, API
// keys, billing, account deletion. Other requests pass untouched.
func (p *Plugin) Guard() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ran := c.Get(ContextKey); !ran {
			p.fail(c, errMiddlewareMissing)
			return
		}
		if current(c) == nil {
			c.Next()
			return
		}
		if r, ok := p.readRequest(c); ok {
			r.refuse(CauseGuarded, "a route behind Guard")
		}
	}
}
