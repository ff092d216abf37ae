package loginas_test

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	"github.com/gin-gonic/gin"

	"github.com/gin-loginas/loginas"
)

// An admin app with two users. The admin logs in as alice, then returns.
func ExampleRegister() {
	gin.SetMode(gin.ReleaseMode)
	users := map[string]loginas.User{
		"1": {ID: "1", Name: "admin", Superuser: true, Active: true},
		"2": {ID: "2", Name: "alice", Active: true},
	}

	r := gin.New()
	r.Use(sessions.Sessions("app", cookie.NewStore([]byte("session-key-0123456789abcdef0123"))))
	p, err := loginas.Register(r, loginas.Options{
		FindUser: func(_ context.Context, id string) (loginas.User, error) {
			if u, ok := users[id]; ok {
				return u, nil
			}
			return loginas.User{}, loginas.ErrUserNotFound
		},
		SessionKey: "user_id",
		Secret:     []byte("example-secret-that-is-at-least-32-bytes"),
		Audit: func(_ context.Context, e loginas.Event) error {
			fmt.Printf("audit: %s (%s) actor=%s target=%s\n", e.Action, e.Cause, e.ActorName, e.TargetName)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The app's own routes: a sign-in and a page that says who you are.
	r.POST("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user_id", c.PostForm("id"))
		_ = s.Save()
	})
	r.GET("/me", func(c *gin.Context) {
		token := loginas.Token(c) // a real page puts it in the button's form
		id, _ := sessions.Default(c).Get("user_id").(string)
		who := users[id].Name
		c.String(http.StatusOK, "%s %t %s", who, c.GetBool("is_impersonated"), token)
	})

	var posts []string
	for _, route := range r.Routes() {
		if route.Method == http.MethodPost {
			posts = append(posts, route.Path)
		}
	}
	slices.Sort(posts)
	fmt.Println("POST routes:", strings.Join(posts, ", "))

	srv := httptest.NewServer(r)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	me := func() (who string, token string) {
		res, _ := browser.Get(srv.URL + "/me")
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fields := strings.Fields(string(b))
		fmt.Println("me:", fields[0], "impersonated:", fields[1])
		return fields[0], fields[2]
	}
	post := func(path, token string) {
		res, _ := browser.PostForm(srv.URL+path, url.Values{"loginas_csrf": {token}})
		res.Body.Close()
		fmt.Println(res.StatusCode, "to", res.Header.Get("Location"))
	}

	res, _ := browser.PostForm(srv.URL+"/login", url.Values{"id": {"1"}})
	res.Body.Close()
	_, token := me()
	post(p.LoginAsURL("2"), token)
	_, token = me()
	post(p.LogoutURL(), token)
	me()

	// Output:
	// POST routes: /admin/loginas/:id, /admin/loginas/access/end, /admin/loginas/logout, /login
	// me: admin impersonated: false
	// audit: start () actor=admin target=alice
	// 303 to /
	// me: alice impersonated: true
	// audit: end (logout) actor=admin target=alice
	// 303 to /
	// me: admin impersonated: false
}

func ExampleParseID() {
	for _, id := range []string{"42", "alice@example.com", "", "..", "a/b", strings.Repeat("x", 129)} {
		fmt.Printf("%q: %v\n", id[:min(len(id), 12)], loginas.ParseID(id))
	}
	// Output:
	// "42": <nil>
	// "alice@exampl": <nil>
	// "": loginas: malformed user ID
	// "..": loginas: malformed user ID
	// "a/b": loginas: malformed user ID
	// "xxxxxxxxxxxx": loginas: malformed user ID
}

func ExampleIsLocalURL() {
	for _, next := range []string{"/admin/users/42", "/search?q=x", "//evil.example", `/\evil.example`, "https://evil.example/", "javascript:alert(1)"} {
		fmt.Println(next, loginas.IsLocalURL(next))
	}
	// Output:
	// /admin/users/42 true
	// /search?q=x true
	// //evil.example false
	// /\evil.example false
	// https://evil.example/ false
	// javascript:alert(1) false
}

// The partials join the app's own template set; the layout shows the banner.
func ExampleAddTemplates() {
	layout := template.Must(template.New("layout").Parse(`{{template "loginas/banner" .}}`))
	set, err := loginas.AddTemplates(layout)
	if err != nil {
		fmt.Println(err)
		return
	}
	deadline := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	_ = set.ExecuteTemplate(os.Stdout, "layout", loginas.Banner{
		IsImpersonated: true,
		Text:           "You are signed in as <alice>. You are really admin.",
		DeadlineISO:    deadline.Format(time.RFC3339),
		TimeLeft:       "42 min",
		TimeLeftLabel:  "Time left",
		Action:         "/admin/loginas/logout",
		CSRFField:      "loginas_csrf",
		CSRFToken:      "token",
		ReturnLabel:    "Return to my account",
	})
	// Output:
	// <div class="loginas-banner" role="alert">
	//   <p>You are signed in as &lt;alice&gt;. You are really admin. <span class="loginas-time-left">Time left: <time datetime="2026-03-02T11:00:00Z">42 min</time></span></p>
	//   <form class="loginas-logout" method="post" action="/admin/loginas/logout"><input type="hidden" name="loginas_csrf" value="token">
	//   <button type="submit">Return to my account</button>
	// </form>
	// </div>
}

// A permission hook that lets support staff log in as customers only, and
// says why when it refuses.
func ExampleRefuse() {
	canLoginAs := func(_ *gin.Context, actor, target loginas.User) error {
		if target.Data == "staff" {
			return loginas.Refuse("Support may only log in as customers.")
		}
		return nil
	}
	err := canLoginAs(nil, loginas.User{ID: "7"}, loginas.User{ID: "8", Data: "staff"})
	fmt.Println(err)
	// Output:
	// Support may only log in as customers.
}
