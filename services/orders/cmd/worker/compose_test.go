package main

import (
	"testing"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// The worker as docker-compose.yml sets it up must start.
func TestComposeSettingsAreAccepted(t *testing.T) {
	if _, _, err := readSettings(stacktest.ComposeEnv(t, "worker")); err != nil {
		t.Errorf("docker-compose.yml's worker: %v", err)
	}
}
