package loginas_test

import (
	"testing"

	"github.com/gin-loginas/loginas"
	"github.com/gin-loginas/loginas/loginastest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	loginastest.CheckStore(t, func(*testing.T) loginas.Store { return loginas.NewMemoryStore() })
	loginastest.CheckHistory(t, func(*testing.T) loginas.History { return loginas.NewMemoryStore().(loginas.History) })
	loginastest.CheckConsents(t, func(*testing.T) loginas.Consents { return loginas.NewMemoryStore().(loginas.Consents) })
}
