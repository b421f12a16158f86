// Package config reads a process's settings from environment variables
// through an injected getenv, so tests never touch the real environment.
//
// Every lookup records the value it used; problems are collected rather than
// returned one at a time, so a bad start reports every missing or malformed
// variable at once.
package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Env is a typed view over getenv that remembers what it read.
type Env struct {
	getenv  func(string) string
	errs    []error
	used    map[string]string
	secrets map[string]bool
}

// New wraps getenv (os.Getenv in main, a map lookup in tests).
func New(getenv func(string) string) *Env {
	return &Env{getenv: getenv, used: map[string]string{}, secrets: map[string]bool{}}
}

// String returns the variable or def when it is unset or empty.
func (e *Env) String(key, def string) string {
	v := e.getenv(key)
	if v == "" {
		v = def
	}
	e.used[key] = v
	return v
}

// Secret is String for values that must never be logged.
func (e *Env) Secret(key, def string) string {
	e.secrets[key] = true
	return e.String(key, def)
}

// Int returns the variable parsed as an integer.
func (e *Env) Int(key string, def int) int {
	raw := e.String(key, strconv.Itoa(def))
	n, err := strconv.Atoi(raw)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not an integer", key, raw))
		return def
	}
	return n
}

// Float returns the variable parsed as a float.
func (e *Env) Float(key string, def float64) float64 {
	raw := e.String(key, strconv.FormatFloat(def, 'f', -1, 64))
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not a number", key, raw))
		return def
	}
	return f
}

// Bool returns the variable parsed by strconv.ParseBool.
func (e *Env) Bool(key string, def bool) bool {
	raw := e.String(key, strconv.FormatBool(def))
	b, err := strconv.ParseBool(raw)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not a boolean", key, raw))
		return def
	}
	return b
}

// Duration returns the variable parsed by time.ParseDuration ("250ms", "5s").
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	raw := e.String(key, def.String())
	d, err := time.ParseDuration(raw)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q is not a duration", key, raw))
		return def
	}
	return d
}

// List returns a comma-separated variable as trimmed, non-empty items.
func (e *Env) List(key string, def []string) []string {
	raw := e.String(key, strings.Join(def, ","))
	var out []string
	for _, item := range strings.Split(raw, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Fail records a problem found while validating values already read.
func (e *Env) Fail(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

// Err reports every problem seen so far, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(e.errs...))
}

// Effective lists what was read, secrets masked, sorted for a stable log line.
func (e *Env) Effective() []string {
	out := make([]string, 0, len(e.used))
	for k, v := range e.used {
		if e.secrets[k] && v != "" {
			v = "****"
		}
		out = append(out, k+"="+MaskDSN(v))
	}
	sort.Strings(out)
	return out
}

// MaskDSN hides a password in a URL-shaped value (postgres://u:pw@host/db).
func MaskDSN(v string) string {
	scheme := strings.Index(v, "://")
	if scheme < 0 {
		return v
	}
	rest := v[scheme+3:]
	at := strings.Index(rest, "@")
	if at < 0 {
		return v
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return v
	}
	return v[:scheme+3] + rest[:colon] + ":****" + rest[at:]
}
