package stacktest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"
)

// ComposeEnv is the environment docker-compose.yml gives one service, as
// the getenv a service's readSettings takes: a service's own validation is
// the one check of its compose settings that cannot drift from the code
// (compose cannot run on the machines that test it). ${VAR:-default} reads
// as its default, as on a host that sets nothing.
func ComposeEnv(t testing.TB, service string) func(string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if parent := filepath.Dir(dir); parent != dir {
			dir = parent
			continue
		}
		t.Fatal("no go.mod above the test's directory")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc, ok := file.Services[service]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", service)
	}
	return func(key string) string {
		return composeDefault.ReplaceAllString(svc.Environment[key], "$1")
	}
}

var composeDefault = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}`)
