package main

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// The catalog as docker-compose.yml sets it up must start.
func TestComposeSettingsAreAccepted(t *testing.T) {
	if _, _, err := readSettings(stacktest.ComposeEnv(t, "catalog")); err != nil {
		t.Errorf("docker-compose.yml's catalog: %v", err)
	}
}
