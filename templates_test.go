package loginas_test

import (
	"html"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

var partialNames = []string{"loginas/button", "loginas/banner", "loginas/logout"}

func TestAddTemplatesToANewSet(t *testing.T) {
	t.Parallel()
	set, err := loginas.AddTemplates(nil)
	require.NoError(t, err)
	for _, name := range partialNames {
		assert.NotNilf(t, set.Lookup(name), "%s is defined", name)
	}
}

func TestAddTemplatesToTheAppsSet(t *testing.T) {
	t.Parallel()
	app := template.Must(template.New("layout").Parse(`<body>{{template "loginas/banner" .Banner}}<main>{{.Body}}</main></body>`))
	set, err := loginas.AddTemplates(app)
	require.NoError(t, err)
	assert.Same(t, app, set, "the partials go into the app's own set")
	var b strings.Builder
	require.NoError(t, set.ExecuteTemplate(&b, "layout", map[string]any{"Banner": loginas.Banner{}, "Body": "page"}))
	assert.Equal(t, "<body><main>page</main></body>", b.String(), "no banner outside an impersonation")
}

func TestOverridePartialByDefiningItFirst(t *testing.T) {
	t.Parallel()
	app := template.Must(template.New("page").Parse(
		`{{define "loginas/button"}}<my-button action="{{.Action}}">{{end}}{{template "loginas/button" .}}`))
	set, err := loginas.AddTemplates(app)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, set.ExecuteTemplate(&b, "page", loginas.Button{Visible: true, Action: "/admin/loginas/alice"}))
	assert.Equal(t, `<my-button action="/admin/loginas/alice">`, b.String())
	assert.NotNil(t, set.Lookup("loginas/banner"), "the other partials are still added")
}

func TestOverridePartialAfterAdding(t *testing.T) {
	t.Parallel()
	set, err := loginas.AddTemplates(template.New("app"))
	require.NoError(t, err)
	_, err = set.New("loginas/banner").Parse(`{{if .IsImpersonated}}[{{.TargetName}}]{{end}}`)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, set.ExecuteTemplate(&b, "loginas/banner", loginas.Banner{IsImpersonated: true, TargetName: "<Alice>"}))
	assert.Equal(t, "[&lt;Alice&gt;]", b.String())
}

func TestTemplatesFS(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(loginas.Templates(), "*.html")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"access.html", "banner.html", "button.html", "consent.html", "live.html", "logout.html"}, files)
	set, err := template.ParseFS(loginas.Templates(), "*.html")
	require.NoError(t, err)
	for _, name := range partialNames {
		assert.NotNil(t, set.Lookup(name), name)
	}
}

// inlineCode finds what a strict Content-Security-Policy would block:
// script elements, event handler attributes, javascript: URLs and inline
// styles.
var inlineCode = regexp.MustCompile(`(?i)<script|\son[a-z]+\s*=|javascript:|\sstyle\s*=|<style`)

func TestPartialsHaveNoInlineScript(t *testing.T) {
	t.Parallel()
	err := fs.WalkDir(loginas.Templates(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(loginas.Templates(), path)
		require.NoError(t, err)
		assert.Nilf(t, inlineCode.Find(b), "%s has inline code: %q", path, inlineCode.Find(b))
		return nil
	})
	require.NoError(t, err)
}

// partialApp serves the button for /button/:id and the banner for /banner,
// rendered from the embedded partials.
func partialApp(t *testing.T, st storeKind, options ...appOption) *testApp {
	t.Helper()
	set, err := loginas.AddTemplates(nil)
	require.NoError(t, err)
	users := newUserStore()
	options = append([]appOption{
		withUsers(users),
		renderRoute("/button/:id", set, "loginas/button", func(c *gin.Context, p *loginas.Plugin) any {
			b := loginas.ButtonFor(c, users.get(c.Param("id")))
			b.Next = c.Query("next")
			return b
		}),
		withRoutes(func(r *gin.Engine, _ *loginas.Plugin) {
			r.GET("/button-data/:id", func(c *gin.Context) { c.JSON(http.StatusOK, loginas.ButtonFor(c, users.get(c.Param("id")))) })
		}),
		renderRoute("/banner", set, "loginas/banner", func(c *gin.Context, p *loginas.Plugin) any { return loginas.BannerFor(c) }),
		renderRoute("/logout-form", set, "loginas/logout", func(c *gin.Context, p *loginas.Plugin) any { return loginas.BannerFor(c) }),
		renderRoute("/access", set, "loginas/access", func(c *gin.Context, p *loginas.Plugin) any { return loginas.AccessFor(c) }),
		renderRoute("/consent", set, "loginas/consent", func(c *gin.Context, p *loginas.Plugin) any { return loginas.AccessFor(c).Consent }),
		renderRoute("/live", set, "loginas/live", func(c *gin.Context, p *loginas.Plugin) any { return loginas.LiveFor(c) }),
	}, options...)
	return newApp(t, st, options...)
}

var hiddenToken = regexp.MustCompile(`<input type="hidden" name="` + loginas.CSRFField + `" value="([^"]+)">`)

// formToken returns the CSRF token of the form in page.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := hiddenToken.FindStringSubmatch(page)
	require.NotNilf(t, m, "no token in %q", page)
	return html.UnescapeString(m[1])
}

func TestButtonRendersForAPermittedViewer(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := partialApp(t, st)
		c := a.signedIn("admin")
		r := c.get("/button/alice")
		require.Equal(t, http.StatusOK, r.status, r.body)
		page := r.body
		assert.Contains(t, page, `<form class="loginas-button" method="post" action="/admin/loginas/alice">`)
		assert.Contains(t, page, `<input type="text" name="reason" maxlength="500"`)
		assert.NotContains(t, page, " required")
		assert.NotContains(t, page, `name="next"`)
		assert.Contains(t, page, `<button type="submit">Log in as user</button>`)
		assert.Empty(t, inlineCode.FindString(page))

		// The form works as rendered.
		r = c.post("/admin/loginas/alice", url.Values{loginas.CSRFField: {formToken(t, page)}, "reason": {"ticket 7"}})
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "alice", c.state().user())
		assert.Equal(t, "ticket 7", a.audit.only(t, loginas.ActionStart, "").Reason)
	})
}

func TestButtonCarriesNextAndRequiredReason(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore, withOptions(func(o *loginas.Options) {
		o.ReasonRequired = true
		o.MaxReasonLength = 80
	}))
	c := a.signedIn("admin")
	page := c.get("/button/alice?next=" + url.QueryEscape("/orders?user=alice&x=\"1\"")).body
	assert.Contains(t, page, `<input type="hidden" name="next" value="/orders?user=alice&amp;x=&#34;1&#34;">`)
	assert.Contains(t, page, `maxlength="80"`)
	assert.Contains(t, page, ` required>`)
}

func TestButtonHiddenWhenTheViewerMayNotSwitch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		viewer string // "" is anonymous
		target string
		imp    string // if set, the viewer first logs in as this user
		cause  loginas.Cause
	}{
		{"staff viewer", "staff", "alice", "", loginas.CauseNotPermitted},
		{"plain user viewer", "bob", "alice", "", loginas.CauseNotPermitted},
		{"disabled viewer", "carol", "alice", "", loginas.CauseNotPermitted},
		{"anonymous viewer", "", "alice", "", loginas.CauseNotSignedIn},
		{"own page", "admin", "admin", "", loginas.CauseSelf},
		{"superuser target", "admin", "root", "", loginas.CauseSuperuser},
		{"disabled target", "admin", "carol", "", loginas.CauseInactive},
		{"unknown target", "admin", "nobody", "", loginas.CauseBadID},
		{"while impersonating", "admin", "bob", "alice", loginas.CauseNested},
		// POST /admin/loginas/logout is the logout route: a button for this
		// user would sign the actor out.
		{"a user whose ID is a route of the plugin", "admin", "logout", "", loginas.CauseBadID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := partialApp(t, st)
				c := a.client()
				if tc.viewer != "" {
					c.signIn(tc.viewer)
				}
				if tc.imp != "" {
					c.mustSwitch(tc.imp)
				}
				r := c.get("/button/" + tc.target)
				require.Equal(t, http.StatusOK, r.status)
				assert.Empty(t, r.body)
				data := c.get("/button-data/" + tc.target).jsonBody(t)
				assert.Equal(t, false, data["Visible"])
				assert.Equal(t, string(tc.cause), data["Cause"], "why the button is hidden")
			})
		})
	}
}

func TestButtonFollowsTheAppsRule(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore, withOptions(func(o *loginas.Options) {
		o.CanImpersonate = func(_ *gin.Context, u loginas.User) bool { return u.Data == "support" }
		o.CanLoginAs = func(_ *gin.Context, _, target loginas.User) error {
			if target.ID == "bob" {
				return loginas.Refuse("not bob")
			}
			return nil
		}
	}))
	c := a.signedIn("support")
	assert.NotEmpty(t, c.get("/button/alice").body)
	assert.Empty(t, c.get("/button/bob").body)
	admin := a.signedIn("admin")
	assert.Empty(t, admin.get("/button/alice").body, "CanImpersonate replaces the superuser rule")
}

func TestBannerOnlyWhileImpersonating(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := partialApp(t, st)
		c := a.client()
		assert.Empty(t, c.get("/banner").body, "anonymous")
		c.signIn("admin")
		assert.Empty(t, c.get("/banner").body, "signed in as oneself")

		c.mustSwitch("alice")
		page := c.get("/banner").body
		assert.Contains(t, page, `<div class="loginas-banner" role="alert">`)
		assert.Contains(t, page, "You are signed in as Alice. You are really Admin.")
		deadline := a.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		assert.Contains(t, page, `<time datetime="`+deadline+`">1 h 00 min</time>`)
		assert.Contains(t, page, `<form class="loginas-logout" method="post" action="/admin/loginas/logout">`)
		assert.Contains(t, page, `<button type="submit">Return to my account</button>`)
		assert.Empty(t, inlineCode.FindString(page))

		a.clock.advance(18*time.Minute + 30*time.Second)
		assert.Contains(t, c.get("/banner").body, ">41 min</time>")
		a.clock.advance(41 * time.Minute)
		assert.Contains(t, c.get("/banner").body, ">&lt; 1 min</time>")

		// The banner's button brings the actor back.
		r := c.post("/admin/loginas/logout", url.Values{loginas.CSRFField: {formToken(t, page)}})
		require.Equal(t, http.StatusSeeOther, r.status)
		assert.Equal(t, "admin", c.state().user())
		assert.Empty(t, c.get("/banner").body)
	})
}

func TestLogoutPartialForAPlainSession(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore)
	c := a.signedIn("bob")
	page := c.get("/logout-form").body
	assert.Contains(t, page, `<button type="submit">Log out</button>`)
	r := c.post("/admin/loginas/logout", url.Values{loginas.CSRFField: {formToken(t, page)}})
	require.Equal(t, http.StatusSeeOther, r.status)
	assert.Nil(t, c.state().User)
}

func TestBannerEscapesNames(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := partialApp(t, st, withOptions(func(o *loginas.Options) {
			o.AllowSuperuserTargets = true
			o.DisplayName = func(u loginas.User) string {
				if u.ID == "admin" {
					return `<img src=x onerror="alert(1)">`
				}
				return u.Name
			}
		}))
		c := a.signedIn("admin")
		c.mustSwitch("mallory")
		page := c.get("/banner").body
		assert.NotContains(t, page, "<script")
		assert.NotContains(t, page, "<img")
		assert.Contains(t, page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
		assert.Contains(t, page, "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;")
	})
}

func TestBannerData(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore, withRoutes(func(r *gin.Engine, p *loginas.Plugin) {
		r.GET("/banner.json", func(c *gin.Context) { c.JSON(http.StatusOK, loginas.BannerFor(c)) })
	}))
	c := a.signedIn("admin")
	plain := c.get("/banner.json").jsonBody(t)
	assert.Equal(t, false, plain["IsImpersonated"])
	assert.NotEmpty(t, plain["CSRFToken"], "a signed-in user's logout form needs the token")
	assert.Equal(t, "/admin/loginas/logout", plain["Action"])

	c.mustSwitch("alice")
	b := c.get("/banner.json").jsonBody(t)
	assert.Equal(t, true, b["IsImpersonated"])
	assert.Equal(t, "Admin", b["ActorName"])
	assert.Equal(t, "Alice", b["TargetName"])
	assert.Equal(t, "1 h 00 min", b["TimeLeft"])
	assert.Equal(t, loginas.CSRFField, b["CSRFField"])
}

// An app that loads its templates with gin's loaders renders the partials
// through FuncMap, with one line before the loader; gin's debug-mode
// reloading keeps working. Not parallel: debug mode is gin's global.
func TestPartialsWithGinLoaders(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	write("layout.html", `{{define "layout.html"}}<nav>v1{{if not .Loginas.IsImpersonated}}{{loginasLogout .Loginas}}{{end}}</nav>{{loginasBanner .Loginas}}{{loginasButton .Button}}{{end}}`)
	layoutFS := os.DirFS(dir)
	for _, c := range []struct {
		name string
		load func(r *gin.Engine)
	}{
		{"LoadHTMLGlob", func(r *gin.Engine) { r.LoadHTMLGlob(filepath.Join(dir, "*.html")) }},
		{"LoadHTMLFiles", func(r *gin.Engine) { r.LoadHTMLFiles(filepath.Join(dir, "layout.html")) }},
		{"LoadHTMLFS", func(r *gin.Engine) { r.LoadHTMLFS(http.FS(layoutFS), "*.html") }},
	} {
		for _, mode := range []string{gin.ReleaseMode, gin.DebugMode} {
			t.Run(c.name+"/"+mode, func(t *testing.T) {
				defer gin.SetMode(gin.TestMode)
				defer write("layout.html", `{{define "layout.html"}}<nav>v1{{if not .Loginas.IsImpersonated}}{{loginasLogout .Loginas}}{{end}}</nav>{{loginasBanner .Loginas}}{{loginasButton .Button}}{{end}}`)
				users := newUserStore()
				a := newApp(t, cookieStore, withUsers(users),
					withEngine(func(r *gin.Engine) {
						gin.SetMode(mode)
						r.SetFuncMap(loginas.FuncMap())
						c.load(r)
					}),
					withRoutes(func(r *gin.Engine, _ *loginas.Plugin) {
						r.GET("/page", func(c *gin.Context) {
							c.HTML(http.StatusOK, "layout.html", gin.H{"Loginas": loginas.BannerFor(c), "Button": loginas.ButtonFor(c, users.get("alice"))})
						})
					}))
				cl := a.signedIn("admin")
				page := cl.get("/page").body
				assert.Contains(t, page, `<form class="loginas-button" method="post" action="/admin/loginas/alice">`)
				assert.Contains(t, page, `<button type="submit">Log out</button>`, "outside an impersonation, the layout's own logout form")
				r := cl.post("/admin/loginas/alice", url.Values{loginas.CSRFField: {formToken(t, page)}})
				require.Equal(t, http.StatusSeeOther, r.status, r.body)
				page = cl.get("/page").body
				assert.Contains(t, page, "You are signed in as Alice. You are really Admin.")
				assert.Equal(t, 1, strings.Count(page, "Return to my account"), "the banner holds the return button")

				write("layout.html", `{{define "layout.html"}}<nav>v2</nav>{{loginasBanner .Loginas}}{{end}}`)
				page = cl.get("/page").body
				if mode == gin.DebugMode {
					assert.Contains(t, page, "<nav>v2</nav>", "debug mode reloads the templates")
				} else {
					assert.Contains(t, page, "<nav>v1</nav>")
				}
			})
		}
	}
}
