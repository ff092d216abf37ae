package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// The API keys pages sit in the /account group, behind the plugin's Guard:
// while impersonating, every one of them answers 403 and is audited
// (denied, guarded). An impersonator must never mint a credential that
// outlives the impersonation.

const (
	// maxAPIKeys is how many keys one user may hold at a time.
	maxAPIKeys = 20
	// maxKeyNameLength caps a key's name, in characters.
	maxKeyNameLength = 64
	// apiKeyPrefix starts every key, so that a leaked one is easy to
	// recognise in logs and by secret scanners.
	apiKeyPrefix = "acme_"
)

// newAPIKey returns a fresh key: the prefix and 32 random bytes in
// unpadded base64url.
func newAPIKey() string {
	return apiKeyPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// hashAPIKey is what the database keeps of a key: its SHA-256 hash. A key
// has 256 random bits, so a fast hash is enough to make a stolen database
// useless for signing in.
func hashAPIKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

type apiKeysData struct {
	Keys []APIKey
	// NewKey is the key just created, shown on this answer only.
	NewKey *newKeyData
	// Name is the name typed into the form, shown again with Error.
	Name  string
	Error string
	Max   int
}

type newKeyData struct {
	Name string
	Key  string
}

func (app *App) apiKeysPage(c *gin.Context) {
	app.renderAPIKeys(c, http.StatusOK, apiKeysData{})
}

// renderAPIKeys writes the API keys page with the viewer's keys.
func (app *App) renderAPIKeys(c *gin.Context, status int, d apiKeysData) {
	v, _ := viewerOf(c)
	keys, err := app.db.APIKeys(c.Request.Context(), v.ID)
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	d.Keys, d.Max = keys, maxAPIKeys
	app.render(c, status, "apikeys", Page{Title: "API keys", Section: "api-keys", Data: d})
}

// createAPIKey makes a key for the signed-in user and shows it once: the
// database keeps only its hash and its last four characters.
func (app *App) createAPIKey(c *gin.Context) {
	v, _ := viewerOf(c)
	raw := c.PostForm("name")
	name, ok := cleanText(raw, maxKeyNameLength)
	if !ok {
		app.renderAPIKeys(c, http.StatusUnprocessableEntity, apiKeysData{
			Name:  echoText(raw),
			Error: "Give the key a name of 1 to " + strconv.Itoa(maxKeyNameLength) + " characters.",
		})
		return
	}
	key := newAPIKey()
	stored, err := app.db.AddAPIKey(c.Request.Context(), v.ID, name, hashAPIKey(key), key[len(key)-4:], maxAPIKeys)
	switch {
	case errors.Is(err, errTooManyKeys):
		app.renderAPIKeys(c, http.StatusUnprocessableEntity, apiKeysData{
			Name:  name,
			Error: "You have " + strconv.Itoa(maxAPIKeys) + " keys already: revoke one first.",
		})
		return
	case err != nil:
		app.dbFailed(c, err)
		return
	}
	app.log.Info("API key created", "user", v.Username, "key_id", stored.ID)
	app.renderAPIKeys(c, http.StatusCreated, apiKeysData{NewKey: &newKeyData{Name: name, Key: key}})
}

// revokeAPIKey deletes one of the signed-in user's keys. Someone else's key
// is "no such key", as is one that does not exist.
func (app *App) revokeAPIKey(c *gin.Context) {
	v, _ := viewerOf(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		app.renderError(c, http.StatusNotFound, "There is no such key.")
		return
	}
	k, err := app.db.DeleteAPIKey(c.Request.Context(), v.ID, id)
	if errors.Is(err, sql.ErrNoRows) {
		app.renderError(c, http.StatusNotFound, "There is no such key.")
		return
	}
	if err != nil {
		app.dbFailed(c, err)
		return
	}
	app.log.Info("API key revoked", "user", v.Username, "key_id", k.ID)
	app.flashAndRedirect(c, "The key “"+k.Name+"” (…"+k.Last4+") has been revoked.", "/account/api-keys")
}

// cleanText trims s and reports whether the rest is valid UTF-8 of 1 to
// limit characters without control characters.
func cleanText(s string, limit int) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > limit {
		return s, false
	}
	return s, !strings.ContainsFunc(s, unicode.IsControl)
}

// echoText is a refused form value as it is shown again in its field:
// valid UTF-8, at most 256 bytes (html/template escapes it).
func echoText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 256 {
		s = strings.ToValidUTF8(s[:256], "")
	}
	return s
}
