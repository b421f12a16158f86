package main

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// The console as docker-compose.yml sets it up must start.
func TestComposeSettingsAreAccepted(t *testing.T) {
	if _, _, err := readSettings(stacktest.ComposeEnv(t, "console")); err != nil {
		t.Errorf("docker-compose.yml's console: %v", err)
	}
}
