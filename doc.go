// Package loginas adds "Log in as user" to Gin admin apps: an operator with
// the right to do so switches their own browser session to another user's
// account, sees the app exactly as that user does, and returns to their own
// account with one click.
//
// A complete program:
//
//	package main
//
//	import (
//		"context"
//		"log"
//		"os"
//
//		"github.com/gin-contrib/sessions"
//		"github.com/gin-contrib/sessions/cookie"
//		"github.com/gin-gonic/gin"
//		"github.com/gin-loginas/loginas"
//	)
//
//	var users = map[string]loginas.User{
//		"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
//		"2": {ID: "2", Name: "alice", Active: true},
//	}
//
//	func findUser(_ context.Context, id string) (loginas.User, error) {
//		if u, ok := users[id]; ok {
//			return u, nil
//		}
//		return loginas.User{}, loginas.ErrUserNotFound
//	}
//
//	func main() {
//		secret := []byte(os.Getenv("APP_SECRET")) // at least 32 random bytes
//		r := gin.Default()
//		r.Use(sessions.Sessions("app", cookie.NewStore(secret)))
//		p, err := loginas.Register(r, loginas.Options{
//			FindUser:   findUser,
//			SessionKey: "user_id", // where the app keeps the signed-in user's ID
//			Secret:     secret,
//		})
//		if err != nil {
//			log.Fatal(err) // says which option to fix
//		}
//		r.GET("/", func(c *gin.Context) {
//			c.JSON(200, gin.H{
//				"impersonated": c.GetBool("is_impersonated"),
//				"banner":       p.Banner(c),
//			})
//		})
//		log.Fatal(r.Run("127.0.0.1:8080"))
//	}
//
// Register mounts POST /admin/loginas/:id (switch) and POST
// /admin/loginas/logout (return to the actor, or a plain logout), and a
// middleware that sets c.GetBool("is_impersonated") on every request. The
// embedded partials "loginas/button", "loginas/banner" and "loginas/logout"
// (AddTemplates) render the button for a user's admin page, the banner for
// the layout and the logout form; Plugin.Button and Plugin.Banner build their
// data.
//
// # Security
//
// Both routes accept only POST, pass Go's http.CrossOriginProtection, and
// need the CSRF token that the partials carry: bound to the session, masked
// afresh on every page, compared in constant time. By default only active superusers may log
// in as others; nobody may log in as a superuser, a disabled user or
// themselves, or start a second impersonation inside the first. Actors who
// may not impersonate learn nothing about which user IDs exist.
//
// A switch replaces the session with a new one: nothing of the actor's data
// survives, a server-side store issues a new session ID and the old one is
// deleted, so a copy of the old cookie is worthless. The target's session
// holds a record signed with HMAC-SHA256 naming the actor, the target, the
// start and the deadline (one hour by default). On every impersonated
// request the record is verified and the actor's right to impersonate the
// target checked again; a forged, expired or no longer permitted session is
// signed out completely, never turned back into the actor's. Returning
// re-keys the session again. Every start, end and refusal goes to the audit
// trail, with the reason the actor gave.
//
// The app remains responsible for its own login and logout, for re-keying the
// session at its own login, for serving over HTTPS with Secure cookies, and
// for its session store's keys.
package loginas
