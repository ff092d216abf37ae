package main

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/gin-loginas/loginas"
	"golang.org/x/crypto/bcrypt"
)

// The signed-in user's own pages. /account and everything under it change a
// credential or the e-mail address: they sit behind the plugin's Guard, so
// an impersonator can never use them. /access, who has used one's account,
// is for everyone signed in.

type accountData struct {
	Error      string
	EmailError string
	Email      string
}

// minPasswordLength is the shortest new password accepted; the seeded
// demo passwords are shorter, which is fine for a demo.
const minPasswordLength = 8

func (app *App) accountPage(c *gin.Context) {
	v, _ := viewerOf(c)
	app.renderAccount(c, http.StatusOK, accountData{Email: v.Email})
}

func (app *App) renderAccount(c *gin.Context, status int, d accountData) {
	app.render(c, status, "account", Page{Title: "My account", Section: "account", Data: d})
}

// changePassword sets a new password for the signed-in user and renews the
// session.
func (app *App) changePassword(c *gin.Context) {
	v, _ := viewerOf(c)
	fail := func(status int, msg string) {
		app.renderAccount(c, status, accountData{Error: msg, Email: v.Email})
	}
	current, next := c.PostForm("current"), c.PostForm("new")
	switch {
	case bcrypt.CompareHashAndPassword(v.hash, []byte(current)) != nil:
		fail(http.StatusUnprocessableEntity, "The current password is wrong.")
		return
	case len(next) < minPasswordLength || len(next) > 72:
		fail(http.StatusUnprocessableEntity, "The new password must have 8 to 72 bytes.")
		return
	case next != c.PostForm("confirm"):
		fail(http.StatusUnprocessableEntity, "The two new passwords differ.")
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(next), app.cfg.BcryptCost)
	if err != nil {
		fail(http.StatusUnprocessableEntity, "The new password cannot be used.")
		return
	}
	if err := app.db.SetPassword(c.Request.Context(), v.ID, hash); err != nil {
		app.dbFailed(c, err)
		return
	}
	values := map[string]any{userIDKey: v.IDString(), flashKey: []any{"Your password has been changed."}}
	if err := loginas.RenewSession(c, values); err != nil {
		app.sessionFailed(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/account")
}

// changeEmail sets the signed-in user's e-mail address: where password
// resets would go, so it is a credential too.
func (app *App) changeEmail(c *gin.Context) {
	v, _ := viewerOf(c)
	raw := c.PostForm("email")
	email, ok := cleanEmail(raw)
	if !ok {
		app.renderAccount(c, http.StatusUnprocessableEntity, accountData{Email: echoText(raw), EmailError: emailRule})
		return
	}
	if err := app.db.SetEmail(c.Request.Context(), v.ID, email); err != nil {
		app.dbFailed(c, err)
		return
	}
	app.log.Info("e-mail changed", "user", v.Username)
	app.flashAndRedirect(c, "Your e-mail address has been changed.", "/account")
}

// accessPage shows who has used the signed-in user's account, and, with
// -require-consent, the form that allows or withdraws access.
func (app *App) accessPage(c *gin.Context) {
	app.render(c, http.StatusOK, "access", Page{Title: "Account access", Section: "access", Data: loginas.AccessFor(c)})
}
