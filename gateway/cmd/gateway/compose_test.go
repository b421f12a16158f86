package main

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// The gateway as docker-compose.yml sets it up must start.
func TestComposeSettingsAreAccepted(t *testing.T) {
	if _, _, err := readSettings(stacktest.ComposeEnv(t, "gateway")); err != nil {
		t.Errorf("docker-compose.yml's gateway: %v", err)
	}
}
