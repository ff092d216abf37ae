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
//		_, err := loginas.Register(r, loginas.Options{
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
//				"banner":       loginas.BannerFor(c),
//			})
//		})
//		log.Fatal(r.Run("127.0.0.1:8080"))
//	}
//
// Register mounts POST /admin/loginas/:id (switch) and POST
// /admin/loginas/logout (return to the actor, or a plain logout), the routes
// of the person's side (their access history, ending an impersonation of
// their account, and with RequireConsent their consent), the live list for
// those CanManage allows, and a middleware that sets
// c.GetBool("is_impersonated") on every request. The embedded partials
// render the button for a user's admin page, the banner for the layout and
// the person's pages: through FuncMap for apps that load templates with
// gin's loaders, or AddTemplates for apps that parse their own set.
// ButtonFor, BannerFor, AccessFor, LiveFor and Token build their data from
// the *gin.Context alone.
//
// Impersonations live in a Store: NewMemoryStore for one instance, or the
// sqlstore and redisstore modules for a fleet. Options.EntryCache saves a
// fleet's instances the store lookup on most impersonated requests, at the
// price of seeing other instances' ends up to that much later.
//
// # Security
//
// The state-changing routes accept only POST, pass Go's
// http.CrossOriginProtection, and need the CSRF token that the partials
// carry: bound to the session, masked afresh on every page, compared in
// constant time. By default only active superusers may log in as others;
// nobody may log in as a superuser, a disabled user or themselves, or start a second impersonation inside the first. Actors who
// may not impersonate learn nothing about which user IDs exist.
//
// A switch replaces the session with a new one: nothing of the actor's data
// survives, a server-side store issues a new session ID and the old one is
// deleted, so a copy of the old cookie is worthless. The target's session
// holds a record signed with HMAC-SHA256 naming the actor, the target, the
// start and the deadline (one hour by default), and the Store holds the
// impersonation's entry: a session is an impersonation only while both
// agree and the entry is live, so an impersonation that ended, on any
// instance, stays ended, even across a restart (with Options.EntryCache,
// an end made on another instance is seen within it). On every impersonated
// request the actor's right to impersonate the target is checked again; a
// forged, expired, ended or no longer permitted session is signed out
// completely, never turned back into the actor's. Every start, end and
// refusal of a signed-in user (but a 405) goes to the audit trail, with the reason the
// actor gave. The README's security model has a table of what holds in each
// configuration.
//
// The app remains responsible for its own login and logout, for renewing the
// session at its own login (RenewSession), for serving over HTTPS with
// Secure cookies, and for its session store's keys.
//
// # Compatibility
//
// Go 1.25 or later, Gin 1.12, gin-contrib/sessions 1.0.4 (its cookie store,
// memstore and Redis store are tested).
package loginas
