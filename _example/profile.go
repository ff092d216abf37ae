package main

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
)

// The profile page is not guarded: support staff impersonating a user may
// fix that user's display name. The e-mail address is a credential (password
// resets go there): it is changed on the guarded account page. With
// -read-only, the plugin refuses every change from an impersonated session
// before it gets here (403, audited as denied, read_only), while the page
// itself still opens.

const (
	maxDisplayNameLength = 100 // characters
	maxEmailLength       = 254 // bytes, as in RFC 5321
)

// emailRule is what a refused e-mail address is told.
var emailRule = "The e-mail address must contain an @ with text on both sides, have at most " +
	strconv.Itoa(maxEmailLength) + " characters and no spaces."

type profileData struct {
	DisplayName string
	Error       string
	// ReadOnly is the -read-only flag: the page says whether an
	// impersonator's changes are allowed.
	ReadOnly bool
}

func (app *App) profilePage(c *gin.Context) {
	v, _ := viewerOf(c)
	app.renderProfile(c, http.StatusOK, profileData{DisplayName: v.DisplayName})
}

func (app *App) renderProfile(c *gin.Context, status int, d profileData) {
	d.ReadOnly = app.cfg.ReadOnly
	app.render(c, status, "profile", Page{Title: "Profile", Section: "profile", Data: d})
}

// updateProfile stores the signed-in user's display name. While
// impersonating, the request log names both people.
func (app *App) updateProfile(c *gin.Context) {
	v, _ := viewerOf(c)
	rawName := c.PostForm("display_name")
	name, ok := cleanText(rawName, maxDisplayNameLength)
	if !ok {
		app.renderProfile(c, http.StatusUnprocessableEntity, profileData{
			DisplayName: echoText(rawName),
			Error:       "The display name must have 1 to " + strconv.Itoa(maxDisplayNameLength) + " characters.",
		})
		return
	}
	if err := app.db.SetDisplayName(c.Request.Context(), v.ID, name); err != nil {
		app.dbFailed(c, err)
		return
	}
	by := v.Username
	if imp, ok := loginas.Current(c); ok {
		by = imp.Actor.Name + " as " + imp.Target.Name
	}
	app.log.Info("profile changed", "user", v.Username, "by", by)
	app.flashAndRedirect(c, "The profile has been saved.", "/profile")
}

// cleanEmail trims s and reports whether it looks like an e-mail address:
// valid UTF-8 of at most maxEmailLength bytes, no spaces or control
// characters, and an @ with something on both sides. The app sends no mail,
// so it checks no more than that.
func cleanEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	switch {
	case len(s) > maxEmailLength, !utf8.ValidString(s), at <= 0, at == len(s)-1:
		return s, false
	}
	return s, !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}
