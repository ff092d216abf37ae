package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gin-contrib/sessions"
	"github.com/gorilla/securecookie"
	gsessions "github.com/gorilla/sessions"
)

// newCookieStore is gin-contrib/sessions' cookie store (gorilla's
// CookieStore, signed and encrypted) with session values encoded as JSON
// instead of gob. gob describes every type again in every cookie, and its
// decoder compiles that description on every request: in the profile of a
// full impersonation cycle, gob was a tenth of the app's CPU. The values
// the app and the plugin keep are strings and lists of strings (the flash
// messages), which JSON carries as they are.
func newCookieStore(keyPairs ...[]byte) sessions.Store {
	cs := gsessions.NewCookieStore(keyPairs...)
	for _, codec := range cs.Codecs {
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(jsonValues{})
		}
	}
	return &cookieStore{cs}
}

type cookieStore struct{ *gsessions.CookieStore }

// Options sets the cookie options, as gin-contrib's cookie store does.
func (s *cookieStore) Options(o sessions.Options) {
	s.CookieStore.Options = o.ToGorillaOptions()
}

// jsonValues serializes a session's values, a map[any]any whose keys are
// strings, as a JSON object.
type jsonValues struct{}

func (jsonValues) Serialize(src any) ([]byte, error) {
	values, ok := src.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("session values: want map[any]any, got %T", src)
	}
	out := make(map[string]any, len(values))
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("session key %v: want a string, got %T", k, k)
		}
		out[key] = v
	}
	return json.Marshal(out)
}

func (jsonValues) Deserialize(src []byte, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok {
		return errors.New("session values: want *map[any]any")
	}
	var in map[string]any
	if err := json.Unmarshal(src, &in); err != nil {
		return err
	}
	for k, v := range in {
		(*values)[k] = v
	}
	return nil
}
