package loginastest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
)

// exampleT stands in for the *testing.T that a real test passes.
type exampleT struct{}

func (exampleT) Helper()                           {}
func (exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// A whole impersonation in a test of the app: sign in through the app's
// own login route, switch, look around, return, and check the audit trail.
func Example() {
	gin.SetMode(gin.TestMode)

	// The app: sessions, the plugin, and its own routes.
	accounts := map[string]loginas.User{
		"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
		"2": {ID: "2", Name: "alice", Active: true},
	}
	audit := &loginastest.Recorder{}
	router := gin.New()
	router.Use(sessions.Sessions("app", cookie.NewStore([]byte("a session key of 32 bytes or so."))))
	p, err := loginas.Register(router, loginas.Options{
		FindUser: func(_ context.Context, id string) (loginas.User, error) {
			if u, ok := accounts[id]; ok {
				return u, nil
			}
			return loginas.User{}, loginas.ErrUserNotFound
		},
		SessionKey: "user_id",
		Secret:     []byte("a secret of at least 32 bytes, kept out of git"),
		Audit:      audit.Audit,
	})
	if err != nil {
		log.Fatal(err)
	}
	loginastest.Mount(router, p)
	router.POST("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user_id", c.PostForm("id")) // a real app checks a password here
		_ = s.Save()
		c.Redirect(http.StatusSeeOther, "/")
	})
	router.GET("/me", func(c *gin.Context) {
		c.String(http.StatusOK, "user %v, impersonated: %t",
			sessions.Default(c).Get("user_id"), c.GetBool("is_impersonated"))
	})
	srv := httptest.NewServer(router)
	defer srv.Close()

	// The test.
	t := exampleT{} // in a test: its *testing.T
	c := loginastest.NewClient(srv.URL, p)
	c.PostForm(t, "/login", url.Values{"id": {"1"}})

	c.LoginAs(t, "2", "ticket 42")
	start := audit.Require(t, loginas.ActionStart, "")
	fmt.Printf("%s: %s as %s, reason %q\n", start.Action, start.ActorName, start.TargetName, start.Reason)
	body, _ := io.ReadAll(c.Get(t, "/me").Body)
	fmt.Println(string(body))

	c.Return(t)
	end := audit.Require(t, loginas.ActionEnd, loginas.CauseLogout)
	fmt.Printf("%s (%s): back to %s\n", end.Action, end.Cause, end.ActorName)
	body, _ = io.ReadAll(c.Get(t, "/me").Body)
	fmt.Println(string(body))
	// Output:
	// start: admin as alice, reason "ticket 42"
	// user 2, impersonated: true
	// end (logout): back to admin
	// user 1, impersonated: false
}

func ExampleTokenFromHTML() {
	page := `<form method="post" action="/admin/loginas/logout">
  <input type="hidden" name="loginas_csrf" value="dG9rZW4">
  <button type="submit">Return to my account</button>
</form>`
	fmt.Println(loginastest.TokenFromHTML(page))
	// Output: dG9rZW4
}
