package config

import (
	"strings"
	"testing"
	"time"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEnvReportsEveryProblemAtOnce(t *testing.T) {
	env := New(mapEnv(map[string]string{"PORT": "eighty", "TIMEOUT": "soon", "CACHE": "maybe"}))
	env.Int("PORT", 80)
	env.Duration("TIMEOUT", time.Second)
	env.Bool("CACHE", true)
	err := env.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"PORT", "TIMEOUT", "CACHE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestEnvDefaultsAndParsing(t *testing.T) {
	env := New(mapEnv(map[string]string{"N": "7", "D": "250ms", "L": " a, ,b ", "B": "true"}))
	if got := env.Int("N", 1); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Int("MISSING", 3); got != 3 {
		t.Errorf("Int default = %d", got)
	}
	if got := env.Duration("D", time.Second); got != 250*time.Millisecond {
		t.Errorf("Duration = %v", got)
	}
	if got := env.List("L", nil); strings.Join(got, "|") != "a|b" {
		t.Errorf("List = %q", got)
	}
	if !env.Bool("B", false) {
		t.Error("Bool = false")
	}
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEffectiveMasksSecrets(t *testing.T) {
	env := New(mapEnv(map[string]string{
		"KEY": "hunter2",
		"DSN": "postgres://app:pw@127.0.0.1:5433/catalog",
	}))
	env.Secret("KEY", "")
	env.String("DSN", "")
	got := strings.Join(env.Effective(), " ")
	if strings.Contains(got, "hunter2") || strings.Contains(got, ":pw@") {
		t.Fatalf("secret leaked: %s", got)
	}
	if !strings.Contains(got, "postgres://app:****@127.0.0.1:5433/catalog") {
		t.Fatalf("dsn not masked as expected: %s", got)
	}
}
