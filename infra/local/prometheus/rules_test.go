// Package prometheus_test holds the local Prometheus's configuration to
// promtool: the recording rules to their unit tests (rules_test.yml), the
// configuration template to Prometheus's own checks.
package prometheus_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// promtool comes with Debian's prometheus package, which `stackctl up`
// installs; `make test` therefore always has it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv(stacktest.EnvVar) != "" {
		t.Fatalf("promtool not found (%v): `stackctl up` installs it with Debian's prometheus package", err)
	}
	t.Skip("needs promtool from Debian's prometheus package; `make test` installs it")
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestRecordingRulesPassTheirUnitTests(t *testing.T) {
	runPromtool(t, "check", "rules", "rules.yml")
	runPromtool(t, "test", "rules", "rules_test.yml")
}

// The template as stackctl renders it (infra/local/stackctl/prometheus.go)
// is a configuration Prometheus accepts, with the rules it loads.
func TestConfigTemplateRendersAValidConfig(t *testing.T) {
	tmpl, err := template.ParseFiles("prometheus.yml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	err = tmpl.Execute(f, map[string]string{"Rules": rules, "TargetsDir": filepath.Join(dir, "targets")})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "config", f.Name())
}
