package main

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// The orders as docker-compose.yml sets it up must start.
func TestComposeSettingsAreAccepted(t *testing.T) {
	if _, _, err := readSettings(stacktest.ComposeEnv(t, "orders")); err != nil {
		t.Errorf("docker-compose.yml's orders: %v", err)
	}
}
