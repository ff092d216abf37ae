package loginas

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Messages are the texts the plugin shows to people: flash messages, JSON
// errors and the labels of the partials. "{name}" is replaced by the display
// name of the user concerned, "{actor}" by the impersonator's (or
// Options.ActorLabel, in what the person impersonated sees) and "{time}" by
// a date and time. Texts are plain text; templates escape them.
type Messages struct {
	// Flash messages after a switch and after a return.
	Switched string
	Returned string

	// Refusals.
	NotSignedIn          string
	NotPermitted         string
	AlreadyImpersonating string
	BadID                string
	NotFound             string
	Self                 string
	SuperuserTarget      string
	InactiveTarget       string
	NoConsent            string
	ReasonRequired       string
	ReasonTooLong        string
	ReasonInvalid        string
	BadRequest           string
	TooLarge             string
	UnsupportedMedia     string
	MethodNotAllowed     string
	NoEntry              string

	// Forbidden is the body of a failed cross-origin or CSRF check.
	Forbidden string

	// Ends of an impersonation other than the logout route, as the actor
	// learns of them.
	Expired       string
	Revoked       string
	Ended         string // by EndAll, End or someone CanManage allows
	EndedByTarget string
	ConsentEnded  string
	Invalid       string

	// Refusals while impersonating (Guard and ReadOnly).
	Guarded  string
	ReadOnly string

	// Labels of the button, the banner and the logout form.
	ButtonLabel       string
	ReasonLabel       string
	ReasonPlaceholder string
	BannerText        string
	TimeLeft          string
	ReturnLabel       string
	LogoutLabel       string

	// What the person impersonated sees: their account in use now, the
	// notice after it was used, the button that ends it, and the flash
	// messages after ending one.
	InUseText      string
	NoticeText     string
	SinceLabel     string
	EndAccessLabel string
	AccessEnded    string
	AlreadyEnded   string

	// The access history and how each impersonation ended.
	HistoryTitle        string
	HistoryEmpty        string
	WhoLabel            string
	AccountLabel        string
	StartedLabel        string
	EndedLabel          string
	HowLabel            string
	LiveNow             string
	HowLogout           string
	HowExpired          string
	HowRevoked          string
	HowEnded            string
	HowEndedByTarget    string
	HowConsentWithdrawn string
	HowOther            string

	// Consent: the form and its flash messages. Hour, Hours, Day and Days
	// label the periods on offer.
	ConsentTitle     string
	ConsentNone      string
	ConsentUntil     string
	GrantLabel       string
	GrantButton      string
	WithdrawLabel    string
	ConsentGranted   string
	ConsentWithdrawn string
	Hour             string
	Hours            string
	Day              string
	Days             string

	// The list of live impersonations.
	LiveTitle     string
	LiveEmpty     string
	DeadlineLabel string
	EndLabel      string
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

// fillTime replaces {time} in a message, after fill.
func fillTime(msg string, t time.Time) string {
	return strings.ReplaceAll(msg, "{time}", formatTime(t))
}

// formatTime writes t for people: "2026-03-02 10:00 UTC".
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ended returns what the actor is told when the middleware signs an
// impersonation out for cause; name is the target's.
func (m *Messages) ended(cause Cause, name string) string {
	text := m.Invalid
	switch cause {
	case CauseExpired:
		text = m.Expired
	case CauseRevoked:
		text = m.Revoked
	case CauseEnded, CauseEndedByAdmin:
		text = m.Ended
	case CauseEndedByTarget:
		text = m.EndedByTarget
	case CauseConsentWithdrawn:
		text = m.ConsentEnded
	}
	if name == "" {
		return m.Invalid
	}
	return fill(text, name, "")
}

// how says, for the person impersonated, how an impersonation ended.
func (m *Messages) how(cause Cause) string {
	switch cause {
	case "":
		return m.LiveNow
	case CauseLogout:
		return m.HowLogout
	case CauseExpired:
		return m.HowExpired
	case CauseRevoked:
		return m.HowRevoked
	case CauseEnded, CauseEndedByAdmin:
		return m.HowEnded
	case CauseEndedByTarget:
		return m.HowEndedByTarget
	case CauseConsentWithdrawn:
		return m.HowConsentWithdrawn
	}
	return m.HowOther
}

// period names a consent period: "1 hour", "24 hours", "7 days".
func (m *Messages) period(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 " + m.Day
		}
		return strconv.Itoa(n) + " " + m.Days
	}
	n := int(d / time.Hour)
	if d%time.Hour == 0 && n == 1 {
		return "1 " + m.Hour
	}
	if d%time.Hour == 0 {
		return strconv.Itoa(n) + " " + m.Hours
	}
	return d.String()
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
		NoConsent:            "{name} has not allowed access to their account.",
		ReasonRequired:       "Please give a reason for logging in as this user.",
		ReasonTooLong:        "The reason is too long.",
		ReasonInvalid:        "The reason contains characters that are not allowed.",
		BadRequest:           "The request could not be read.",
		TooLarge:             "The request is too large.",
		UnsupportedMedia:     "Send the fields as a form (URL-encoded or multipart) or as a JSON object.",
		MethodNotAllowed:     "This address does not take that method.",
		NoEntry:              "There is no such impersonation.",
		Forbidden:            "Forbidden: the request did not come from this site or its security token is missing or wrong.",
		Expired:              "Your session as {name} reached its time limit, so you have been signed out. Please sign in again.",
		Revoked:              "Your session as {name} was ended because the permission for it no longer holds. Please sign in again.",
		Ended:                "Your session as {name} was ended by an administrator. Please sign in again.",
		EndedByTarget:        "{name} ended your access to their account, so you have been signed out. Please sign in again.",
		ConsentEnded:         "{name} withdrew their consent, so your session as them has ended. Please sign in again.",
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
		InUseText:            "{actor} is signed in to your account right now.",
		NoticeText:           "{actor} used your account.",
		SinceLabel:           "Since",
		EndAccessLabel:       "End access",
		AccessEnded:          "{actor} is no longer signed in as {name}.",
		AlreadyEnded:         "That access had already ended.",
		HistoryTitle:         "Who used your account",
		HistoryEmpty:         "Nobody has signed in to your account on your behalf.",
		WhoLabel:             "Who",
		AccountLabel:         "Account",
		StartedLabel:         "Started",
		EndedLabel:           "Ended",
		HowLabel:             "How it ended",
		LiveNow:              "still going on",
		HowLogout:            "they returned to their own account",
		HowExpired:           "the time limit ran out",
		HowRevoked:           "the permission no longer held",
		HowEnded:             "ended by an administrator",
		HowEndedByTarget:     "ended by you",
		HowConsentWithdrawn:  "you withdrew your consent",
		HowOther:             "signed out",
		ConsentTitle:         "Access to your account",
		ConsentNone:          "Support cannot sign in to your account.",
		ConsentUntil:         "Support may sign in to your account until {time}.",
		GrantLabel:           "Allow access for",
		GrantButton:          "Allow access",
		WithdrawLabel:        "Withdraw access",
		ConsentGranted:       "Support may sign in to your account until {time}.",
		ConsentWithdrawn:     "Support can no longer sign in to your account.",
		Hour:                 "hour",
		Hours:                "hours",
		Day:                  "day",
		Days:                 "days",
		LiveTitle:            "Live impersonations",
		LiveEmpty:            "Nobody is signed in as another user right now.",
		DeadlineLabel:        "Until",
		EndLabel:             "End",
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
		NoConsent:            "{name} hat den Zugriff auf das eigene Konto nicht erlaubt.",
		ReasonRequired:       "Bitte geben Sie einen Grund für die Anmeldung als dieser Benutzer an.",
		ReasonTooLong:        "Der Grund ist zu lang.",
		ReasonInvalid:        "Der Grund enthält unzulässige Zeichen.",
		BadRequest:           "Die Anfrage konnte nicht gelesen werden.",
		TooLarge:             "Die Anfrage ist zu groß.",
		UnsupportedMedia:     "Senden Sie die Felder als Formular (URL-kodiert oder multipart) oder als JSON-Objekt.",
		MethodNotAllowed:     "Diese Adresse nimmt diese Methode nicht an.",
		NoEntry:              "Diese Anmeldung als andere Person gibt es nicht.",
		Forbidden:            "Verboten: Die Anfrage kam nicht von dieser Website, oder ihr Sicherheitstoken fehlt oder ist falsch.",
		Expired:              "Ihre Sitzung als {name} hat ihr Zeitlimit erreicht; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		Revoked:              "Ihre Sitzung als {name} wurde beendet, weil die Berechtigung dafür nicht mehr besteht. Bitte melden Sie sich erneut an.",
		Ended:                "Ihre Sitzung als {name} wurde von einer Administratorin oder einem Administrator beendet. Bitte melden Sie sich erneut an.",
		EndedByTarget:        "{name} hat Ihren Zugriff auf das eigene Konto beendet; Sie wurden abgemeldet. Bitte melden Sie sich erneut an.",
		ConsentEnded:         "{name} hat die Zustimmung zurückgezogen; Ihre Sitzung als {name} ist beendet. Bitte melden Sie sich erneut an.",
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
		InUseText:            "{actor} ist gerade in Ihrem Konto angemeldet.",
		NoticeText:           "{actor} hat Ihr Konto benutzt.",
		SinceLabel:           "Seit",
		EndAccessLabel:       "Zugriff beenden",
		AccessEnded:          "{actor} ist nicht mehr als {name} angemeldet.",
		AlreadyEnded:         "Dieser Zugriff war bereits beendet.",
		HistoryTitle:         "Wer Ihr Konto benutzt hat",
		HistoryEmpty:         "Niemand hat sich für Sie in Ihrem Konto angemeldet.",
		WhoLabel:             "Wer",
		AccountLabel:         "Konto",
		StartedLabel:         "Beginn",
		EndedLabel:           "Ende",
		HowLabel:             "Wie es endete",
		LiveNow:              "läuft noch",
		HowLogout:            "zum eigenen Konto zurückgekehrt",
		HowExpired:           "Zeitlimit abgelaufen",
		HowRevoked:           "Berechtigung besteht nicht mehr",
		HowEnded:             "von einer Administratorin oder einem Administrator beendet",
		HowEndedByTarget:     "von Ihnen beendet",
		HowConsentWithdrawn:  "Sie haben die Zustimmung zurückgezogen",
		HowOther:             "abgemeldet",
		ConsentTitle:         "Zugriff auf Ihr Konto",
		ConsentNone:          "Der Support kann sich nicht in Ihrem Konto anmelden.",
		ConsentUntil:         "Der Support darf sich bis {time} in Ihrem Konto anmelden.",
		GrantLabel:           "Zugriff erlauben für",
		GrantButton:          "Zugriff erlauben",
		WithdrawLabel:        "Zugriff zurückziehen",
		ConsentGranted:       "Der Support darf sich bis {time} in Ihrem Konto anmelden.",
		ConsentWithdrawn:     "Der Support kann sich nicht mehr in Ihrem Konto anmelden.",
		Hour:                 "Stunde",
		Hours:                "Stunden",
		Day:                  "Tag",
		Days:                 "Tage",
		LiveTitle:            "Laufende Anmeldungen als andere Person",
		LiveEmpty:            "Gerade ist niemand als andere Person angemeldet.",
		DeadlineLabel:        "Bis",
		EndLabel:             "Beenden",
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
		NoConsent:            "{name} n’a pas autorisé l’accès à son compte.",
		ReasonRequired:       "Veuillez indiquer pourquoi vous vous connectez en tant que cet utilisateur.",
		ReasonTooLong:        "Le motif est trop long.",
		ReasonInvalid:        "Le motif contient des caractères non autorisés.",
		BadRequest:           "La requête n’a pas pu être lue.",
		TooLarge:             "La requête est trop volumineuse.",
		UnsupportedMedia:     "Envoyez les champs sous forme de formulaire (URL-encodé ou multipart) ou d’objet JSON.",
		MethodNotAllowed:     "Cette adresse n’accepte pas cette méthode.",
		NoEntry:              "Cette connexion en tant qu’un autre utilisateur n’existe pas.",
		Forbidden:            "Interdit : la requête ne vient pas de ce site, ou son jeton de sécurité manque ou est faux.",
		Expired:              "Votre session en tant que {name} a atteint sa limite de temps ; vous avez été déconnecté. Veuillez vous reconnecter.",
		Revoked:              "Votre session en tant que {name} a pris fin, car l’autorisation correspondante n’est plus valable. Veuillez vous reconnecter.",
		Ended:                "Votre session en tant que {name} a été close par un administrateur. Veuillez vous reconnecter.",
		EndedByTarget:        "{name} a mis fin à votre accès à son compte ; vous avez été déconnecté. Veuillez vous reconnecter.",
		ConsentEnded:         "{name} a retiré son consentement ; votre session en tant que {name} a pris fin. Veuillez vous reconnecter.",
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
		InUseText:            "{actor} est connecté à votre compte en ce moment.",
		NoticeText:           "{actor} a utilisé votre compte.",
		SinceLabel:           "Depuis",
		EndAccessLabel:       "Mettre fin à l’accès",
		AccessEnded:          "{actor} n’est plus connecté en tant que {name}.",
		AlreadyEnded:         "Cet accès avait déjà pris fin.",
		HistoryTitle:         "Qui a utilisé votre compte",
		HistoryEmpty:         "Personne ne s’est connecté à votre compte à votre place.",
		WhoLabel:             "Qui",
		AccountLabel:         "Compte",
		StartedLabel:         "Début",
		EndedLabel:           "Fin",
		HowLabel:             "Comment cela a pris fin",
		LiveNow:              "toujours en cours",
		HowLogout:            "retour à son propre compte",
		HowExpired:           "limite de temps atteinte",
		HowRevoked:           "l’autorisation n’était plus valable",
		HowEnded:             "clos par un administrateur",
		HowEndedByTarget:     "clos par vous",
		HowConsentWithdrawn:  "vous avez retiré votre consentement",
		HowOther:             "déconnecté",
		ConsentTitle:         "Accès à votre compte",
		ConsentNone:          "Le support ne peut pas se connecter à votre compte.",
		ConsentUntil:         "Le support peut se connecter à votre compte jusqu’au {time}.",
		GrantLabel:           "Autoriser l’accès pendant",
		GrantButton:          "Autoriser l’accès",
		WithdrawLabel:        "Retirer l’accès",
		ConsentGranted:       "Le support peut se connecter à votre compte jusqu’au {time}.",
		ConsentWithdrawn:     "Le support ne peut plus se connecter à votre compte.",
		Hour:                 "heure",
		Hours:                "heures",
		Day:                  "jour",
		Days:                 "jours",
		LiveTitle:            "Connexions en cours en tant qu’un autre utilisateur",
		LiveEmpty:            "Personne n’est connecté en tant qu’un autre utilisateur en ce moment.",
		DeadlineLabel:        "Jusqu’à",
		EndLabel:             "Terminer",
	},
}
