package loginas

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
)

// Messages are the texts the plugin shows to people: flash messages, JSON
// errors and the labels of the partials. "{name}" is replaced by the display
// name of the user concerned, "{actor}" by the impersonator's. Texts are
// plain text; templates escape them.
type Messages struct {
	// Flash messages after a switch and after a return.
	Switched string
	Returned string

	// Refusals of a switch.
	NotSignedIn          string
	NotPermitted         string
	AlreadyImpersonating string
	BadID                string
	NotFound             string
	Self                 string
	SuperuserTarget      string
	InactiveTarget       string
	ReasonRequired       string
	ReasonTooLong        string
	ReasonInvalid        string
	BadRequest           string

	// Forbidden is the body of a failed cross-origin or CSRF check.
	Forbidden string

	// Ends of an impersonation other than the logout route.
	Expired string
	Revoked string
	Ended   string
	Invalid string

	// Refusals while impersonating (Guard and ReadOnly).
	Guarded  string
	ReadOnly string

	// Labels of the partials.
	ButtonLabel       string
	ReasonLabel       string
	ReasonPlaceholder string
	BannerText        string
	TimeLeft          string
	ReturnLabel       string
	LogoutLabel       string
}

// Catalog holds Messages per language, keyed by a lower-case base language
// tag such as "en" or "de". It must have "en", which is also the fallback.
type Catalog map[string]*Messages

// DefaultMessages returns a fresh copy of the shipped catalog: English,
// German and French. Apps may change or add entries before Register.
func DefaultMessages() Catalog {
	out := Catalog{}
	for lang, m := range shippedMessages {
		cp := *m
		out[lang] = &cp
	}
	return out
}

// complete checks that English is whole and returns a copy of the catalog in
// which every text another language leaves empty comes from English. The
// app's own values are not modified.
func (cat Catalog) complete() (Catalog, error) {
	en, ok := cat["en"]
	if !ok || en == nil {
		return nil, errors.New(`Options.Messages must have an "en" entry (the fallback); start from loginas.DefaultMessages()`)
	}
	base := reflect.ValueOf(en).Elem()
	var missing []string
	for i := 0; i < base.NumField(); i++ {
		if base.Field(i).String() == "" {
			missing = append(missing, base.Type().Field(i).Name)
		}
	}
	if len(missing) > 0 {
		return nil, errors.New(`Options.Messages["en"] has empty texts: ` + strings.Join(missing, ", "))
	}
	out := make(Catalog, len(cat))
	for lang, m := range cat {
		if m == nil || lang != strings.ToLower(lang) {
			return nil, fmt.Errorf("Options.Messages[%q] must be non-nil and keyed by a lower-case language such as \"de\"", lang)
		}
		cp := *m
		v := reflect.ValueOf(&cp).Elem()
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).String() == "" {
				v.Field(i).SetString(base.Field(i).String())
			}
		}
		out[lang] = &cp
	}
	return out, nil
}

// messages returns the texts for the request's language.
func (p *Plugin) messages(c *gin.Context) *Messages {
	if m, ok := p.opts.Messages[p.language(c)]; ok {
		return m
	}
	return p.opts.Messages["en"]
}

// language returns the catalog key for the request.
func (p *Plugin) language(c *gin.Context) string {
	if p.opts.Language != nil {
		return strings.ToLower(p.opts.Language(c))
	}
	return acceptedLanguage(c.GetHeader("Accept-Language"), p.opts.Messages)
}

// acceptedLanguage returns the first language of an Accept-Language header
// that cat has, else "en". Quality values are honoured only by order: user
// agents list languages by preference.
func acceptedLanguage(header string, cat Catalog) string {
	for len(header) > 0 {
		var part string
		part, header, _ = strings.Cut(header, ",")
		tag, _, _ := strings.Cut(part, ";")
		tag = strings.TrimSpace(tag)
		base, _, _ := strings.Cut(tag, "-")
		base = strings.ToLower(base)
		if _, ok := cat[base]; ok {
			return base
		}
	}
	return "en"
}

// fill replaces {name} and {actor} in a message.
func fill(msg, name, actor string) string {
	if !strings.Contains(msg, "{") {
		return msg
	}
	return strings.NewReplacer("{name}", name, "{actor}", actor).Replace(msg)
}

var shippedMessages = map[string]*Messages{
	"en": {
		Switched:             "You are now signed in as {name}. Use “Return to my account” to go back.",
		Returned:             "Welcome back, {name}: you are signed in as yourself again.",
		NotSignedIn:          "Please sign in first.",
		NotPermitted:         "You do not have permission to do that.",
		AlreadyImpersonating: "You are already signed in as another user. Return to your own account first.",
		BadID:                "That user ID is not valid.",
		NotFound:             "There is no such user.",
		Self:                 "You are already signed in as yourself.",
		SuperuserTarget:      "You cannot log in as a superuser.",
		InactiveTarget:       "You cannot log in as a disabled user.",
		ReasonRequired:       "Please give a reason for logging in as this user.",
		ReasonTooLong:        "The reason is too long.",
		ReasonInvalid:        "The reason contains characters that are not allowed.",
		BadRequest:           "The request could not be read.",
		Forbidden:            "Forbidden: the request did not come from this site or its security token is missing or wrong.",
		Expired:              "Your session as {name} reached its time limit, so you have been signed out. Please sign in again.",
		Revoked:              "Your session as {name} was ended because the permission for it no longer holds. Please sign in again.",
		Ended:                "Your session as {name} was ended by an administrator. Please sign in again.",
		Invalid:              "Your session could not be verified, so you have been signed out. Please sign in again.",
		Guarded:              "This page is not available while you are signed in as another user.",
		ReadOnly:             "Changes are not allowed while you are signed in as another user.",
		ButtonLabel:          "Log in as user",
		ReasonLabel:          "Reason",
		ReasonPlaceholder:    "Ticket number or why you need access",
		BannerText:           "You are signed in as {name}. You are really {actor}.",
		TimeLeft:             "Time left",
		ReturnLabel:          "Return to my account",
		LogoutLabel:          "Log out",
	},
	"de": {
		Switched:             "Sie sind jetzt als {name} angemeldet. Mit „Zurück zu meinem Konto“ kehren Sie zurück.",
		Returned:             "Willkommen zurück, {name}: Sie sind wieder mit Ihrem eigenen Konto angemeldet.",
		NotSignedIn:          "Bitte melden Sie sich zuerst an.",
		NotPermitted:         "Dazu fehlt Ihnen die Berechtigung.",
		AlreadyImpersonating: "Sie sind bereits als andere Person angemeldet. Kehren Sie zuerst zu Ihrem eigenen Konto zurück.",
		BadID:                "Diese Benutzerkennung ist ungültig.",
		NotFound:             "Diesen Benutzer gibt es nicht.",
		Self:                 "Sie sind bereits als Sie selbst angemeldet.",
		SuperuserTarget:      "Als Superuser können Sie sich nicht anmelden.",
		InactiveTarget:       "Als deaktivierter Benutzer können Sie sich nicht anmelden.",
		ReasonRequired:       "Bitte geben Sie einen Grund für die Anmeldung als dieser Benutzer an.",
		ReasonTooLong:        "Der Grund ist zu lang.",
		ReasonInvalid:        "Der Grund enthält unzulässige Zeichen.",
		BadRequest:           "Die Anfrage konnte nicht gelesen werden.",
		Forbidden:            "Verboten: Die Anfrage kam nicht von dieser Website, oder ihr Sicherheitstoken fehlt oder ist falsch.",
		Expired:              "Ihre Sitzung als {name} hat ihr Zeitlimit erreicht; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		Revoked:              "Ihre Sitzung als {name} wurde beendet, weil die Berechtigung dafür nicht mehr besteht. Bitte melden Sie sich erneut an.",
		Ended:                "Ihre Sitzung als {name} wurde von einer Administratorin oder einem Administrator beendet. Bitte melden Sie sich erneut an.",
		Invalid:              "Ihre Sitzung konnte nicht überprüft werden; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		Guarded:              "Diese Seite steht nicht zur Verfügung, solange Sie als andere Person angemeldet sind.",
		ReadOnly:             "Änderungen sind nicht erlaubt, solange Sie als andere Person angemeldet sind.",
		ButtonLabel:          "Als dieser Benutzer anmelden",
		ReasonLabel:          "Grund",
		ReasonPlaceholder:    "Ticketnummer oder warum Sie Zugriff brauchen",
		BannerText:           "Sie sind als {name} angemeldet. Eigentlich sind Sie {actor}.",
		TimeLeft:             "Verbleibende Zeit",
		ReturnLabel:          "Zurück zu meinem Konto",
		LogoutLabel:          "Abmelden",
	},
	"fr": {
		Switched:             "Vous êtes maintenant connecté en tant que {name}. Utilisez « Revenir à mon compte » pour revenir.",
		Returned:             "Bon retour, {name} : vous êtes de nouveau connecté avec votre propre compte.",
		NotSignedIn:          "Veuillez d’abord vous connecter.",
		NotPermitted:         "Vous n’avez pas l’autorisation de faire cela.",
		AlreadyImpersonating: "Vous êtes déjà connecté en tant qu’un autre utilisateur. Revenez d’abord à votre propre compte.",
		BadID:                "Cet identifiant d’utilisateur n’est pas valide.",
		NotFound:             "Cet utilisateur n’existe pas.",
		Self:                 "Vous êtes déjà connecté en tant que vous-même.",
		SuperuserTarget:      "Vous ne pouvez pas vous connecter en tant que superutilisateur.",
		InactiveTarget:       "Vous ne pouvez pas vous connecter en tant qu’utilisateur désactivé.",
		ReasonRequired:       "Veuillez indiquer pourquoi vous vous connectez en tant que cet utilisateur.",
		ReasonTooLong:        "Le motif est trop long.",
		ReasonInvalid:        "Le motif contient des caractères non autorisés.",
		BadRequest:           "La requête n’a pas pu être lue.",
		Forbidden:            "Interdit : la requête ne vient pas de ce site, ou son jeton de sécurité manque ou est faux.",
		Expired:              "Votre session en tant que {name} a atteint sa limite de temps ; vous avez été déconnecté. Veuillez vous reconnecter.",
		Revoked:              "Votre session en tant que {name} a pris fin, car l’autorisation correspondante n’est plus valable. Veuillez vous reconnecter.",
		Ended:                "Votre session en tant que {name} a été close par un administrateur. Veuillez vous reconnecter.",
		Invalid:              "Votre session n’a pas pu être vérifiée ; vous avez été déconnecté. Veuillez vous reconnecter.",
		Guarded:              "Cette page n’est pas disponible tant que vous êtes connecté en tant qu’un autre utilisateur.",
		ReadOnly:             "Aucune modification n’est permise tant que vous êtes connecté en tant qu’un autre utilisateur.",
		ButtonLabel:          "Se connecter en tant que cet utilisateur",
		ReasonLabel:          "Motif",
		ReasonPlaceholder:    "Numéro de ticket ou raison de l’accès",
		BannerText:           "Vous êtes connecté en tant que {name}. Vous êtes en réalité {actor}.",
		TimeLeft:             "Temps restant",
		ReturnLabel:          "Revenir à mon compte",
		LogoutLabel:          "Se déconnecter",
	},
}
