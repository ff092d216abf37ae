package loginas_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gin-loginas/loginas"
)

func TestMessagesFollowAcceptLanguage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		accept   string
		switched string
		returned string
		refused  string
		expired  string
	}{
		{
			"German", "de-DE,de;q=0.9,en;q=0.8",
			"Sie sind jetzt als Alice angemeldet. Mit „Zurück zu meinem Konto“ kehren Sie zurück.",
			"Willkommen zurück, Admin: Sie sind wieder mit Ihrem eigenen Konto angemeldet.",
			"Als Superuser können Sie sich nicht anmelden.",
			"Ihre Sitzung als Alice hat ihr Zeitlimit erreicht; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		},
		{
			"French", "fr-CH, fr;q=0.9, en;q=0.8",
			"Vous êtes maintenant connecté en tant que Alice. Utilisez « Revenir à mon compte » pour revenir.",
			"Bon retour, Admin : vous êtes de nouveau connecté avec votre propre compte.",
			"Vous ne pouvez pas vous connecter en tant que superutilisateur.",
			"Votre session en tant que Alice a atteint sa limite de temps ; vous avez été déconnecté. Veuillez vous reconnecter.",
		},
		{
			"unknown language falls back to English", "xx-YY, tlh",
			msgSwitched, msgReturned, "You cannot log in as a superuser.", msgExpired,
		},
		{
			"no header is English", "",
			msgSwitched, msgReturned, "You cannot log in as a superuser.", msgExpired,
		},
		{
			"upper-case tag", "DE",
			"Sie sind jetzt als Alice angemeldet. Mit „Zurück zu meinem Konto“ kehren Sie zurück.",
			"Willkommen zurück, Admin: Sie sind wieder mit Ihrem eigenen Konto angemeldet.",
			"Als Superuser können Sie sich nicht anmelden.",
			"Ihre Sitzung als Alice hat ihr Zeitlimit erreicht; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		},
		{
			"first known language wins", "xx, fr;q=0.5, de;q=0.9",
			"Vous êtes maintenant connecté en tant que Alice. Utilisez « Revenir à mon compte » pour revenir.",
			"Bon retour, Admin : vous êtes de nouveau connecté avec votre propre compte.",
			"Vous ne pouvez pas vous connecter en tant que superutilisateur.",
			"Votre session en tant que Alice a atteint sa limite de temps ; vous avez été déconnecté. Veuillez vous reconnecter.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st storeKind) {
				a := newApp(t, st)
				lang := header("Accept-Language", tc.accept)
				if tc.accept == "" {
					lang = nil
				}
				c := a.signedIn("admin")

				r := c.switchTo("root", nil, lang, jsonAccept)
				assert.Equal(t, tc.refused, r.jsonBody(t)["error"])
				r = c.switchTo("root", nil, lang)
				assert.Equal(t, http.StatusSeeOther, r.status)
				assert.Equal(t, []string{tc.refused}, c.flashes())

				require.Equal(t, http.StatusSeeOther, c.switchTo("alice", nil, lang).status)
				assert.Equal(t, []string{tc.switched}, c.flashes())
				require.Equal(t, http.StatusSeeOther, c.logout(nil, lang).status)
				assert.Equal(t, []string{tc.returned}, c.flashes())

				require.Equal(t, http.StatusSeeOther, c.switchTo("alice", nil, lang).status)
				c.flashes()
				a.clock.advance(2 * time.Hour)
				c.get("/test/state", lang)
				assert.Equal(t, []string{tc.expired}, c.flashes())
			})
		})
	}
}

func TestForbiddenAnswerIsTranslated(t *testing.T) {
	t.Parallel()
	a := newApp(t, cookieStore)
	c := a.signedIn("admin")
	r := c.post(a.plugin.LoginAsURL("alice"), nil, header("Accept-Language", "de"), jsonAccept)
	assert.Equal(t, http.StatusForbidden, r.status)
	assert.Equal(t, loginas.DefaultMessages()["de"].Forbidden, r.jsonBody(t)["error"])
}

func TestLanguageHook(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st storeKind) {
		a := newApp(t, st, withOptions(func(o *loginas.Options) {
			// The app keeps the language in a query parameter here; a real
			// app would read the user's profile.
			o.Language = func(c *gin.Context) string { return c.Query("lang") }
		}))
		c := a.signedIn("admin")
		for _, tc := range []struct{ lang, want string }{
			{"fr", "Vous ne pouvez pas vous connecter en tant que superutilisateur."},
			{"DE", "Als Superuser können Sie sich nicht anmelden."},
			{"xx", "You cannot log in as a superuser."},
			{"", "You cannot log in as a superuser."},
		} {
			r := c.post(a.plugin.LoginAsURL("root")+"?lang="+tc.lang, c.withToken(nil), header("Accept-Language", "de"), jsonAccept)
			assert.Equalf(t, tc.want, r.jsonBody(t)["error"], "lang %q wins over Accept-Language", tc.lang)
		}
	})
}

func TestCustomCatalog(t *testing.T) {
	t.Parallel()
	cat := loginas.DefaultMessages()
	cat["es"] = &loginas.Messages{Switched: "Ahora eres {name} (de parte de {actor})."}
	cat["en"].SuperuserTarget = "Superusers are off limits."
	a := newApp(t, cookieStore, withOptions(func(o *loginas.Options) { o.Messages = cat }))
	assert.Empty(t, cat["es"].NotFound, "Register does not modify the app's catalog")

	c := a.signedIn("admin")
	es := header("Accept-Language", "es")
	r := c.switchTo("nobody", nil, es, jsonAccept)
	assert.Equal(t, "There is no such user.", r.jsonBody(t)["error"], "missing texts come from English")
	r = c.switchTo("root", nil, es, jsonAccept)
	assert.Equal(t, "Superusers are off limits.", r.jsonBody(t)["error"])
	require.Equal(t, http.StatusSeeOther, c.switchTo("alice", nil, es).status)
	assert.Equal(t, []string{"Ahora eres Alice (de parte de Admin)."}, c.flashes())
}

func TestDefaultMessagesIsACopy(t *testing.T) {
	t.Parallel()
	m := loginas.DefaultMessages()
	m["en"].Switched = "changed"
	delete(m, "de")
	fresh := loginas.DefaultMessages()
	assert.NotEqual(t, "changed", fresh["en"].Switched)
	assert.Contains(t, fresh, "de")
}

func TestShippedCatalogsAreComplete(t *testing.T) {
	t.Parallel()
	cat := loginas.DefaultMessages()
	assert.ElementsMatch(t, []string{"en", "de", "fr"}, keys(cat))
	en := reflect.ValueOf(*cat["en"])
	for lang, m := range cat {
		v := reflect.ValueOf(*m)
		for i := 0; i < v.NumField(); i++ {
			field := v.Type().Field(i).Name
			text := v.Field(i).String()
			assert.NotEmptyf(t, text, "%s.%s", lang, field)
			for _, placeholder := range []string{"{name}", "{actor}"} {
				assert.Equalf(t, strings.Contains(en.Field(i).String(), placeholder), strings.Contains(text, placeholder),
					"%s.%s uses %s as English does", lang, field, placeholder)
			}
		}
	}
}

func TestPartialLabelsAreTranslated(t *testing.T) {
	t.Parallel()
	a := partialApp(t, cookieStore)
	c := a.signedIn("admin")
	de := header("Accept-Language", "de")
	page := c.get("/button/alice", de).body
	assert.Contains(t, page, "Als dieser Benutzer anmelden")
	assert.Contains(t, page, "Grund")
	c.mustSwitch("alice")
	page = c.get("/banner", header("Accept-Language", "fr")).body
	assert.Contains(t, page, "Vous êtes connecté en tant que Alice. Vous êtes en réalité Admin.")
	assert.Contains(t, page, "Revenir à mon compte")
	assert.Contains(t, page, "Temps restant")
}

func keys(cat loginas.Catalog) []string {
	var out []string
	for k := range cat {
		out = append(out, k)
	}
	return out
}
