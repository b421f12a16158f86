// Package scenario reads load-test scenario files (loadtest/scenarios/*.yaml)
// and turns one into an engine run: the schedule, the weighted request mix,
// the virtual customers and the thresholds that decide pass or fail.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scaleshop/scaleshop/loadtest/engine"
)

// Scenario is one file. The YAML field names are the documentation: see
// docs/loadtest.md and the files in loadtest/scenarios.
type Scenario struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Target is "gateway" (the stack's gateway, the default), "catalog"
	// (the first catalog clone) or a URL.
	Target     string              `yaml:"target"`
	Customers  int                 `yaml:"customers"`
	Products   Products            `yaml:"products"`
	Lists      map[string][]string `yaml:"lists"`
	Warmup     *Warmup             `yaml:"warmup"`
	Stages     []StageSpec         `yaml:"stages"`
	Mix        []RequestSpec       `yaml:"mix"`
	Thresholds Thresholds          `yaml:"thresholds"`
	Limits     Limits              `yaml:"limits"`
	// TraceSampling, when set, makes the generator the root of every
	// request's trace: it sends a W3C traceparent sampled for this share of
	// requests, and the stack's parent-based samplers follow it. Unset, the
	// gateway samples at the stack's OTEL_TRACES_SAMPLER_ARG.
	TraceSampling *float64 `yaml:"trace_sampling"`

	file string
	root *yaml.Node
}

// Products says which product ids exist and how popular each one is.
type Products struct {
	First int     `yaml:"first"` // default 1
	Last  int     `yaml:"last"`  // default 10000
	Zipf  float64 `yaml:"zipf"`  // exponent s > 1; 0 = uniform
}

// Warmup runs before the stages; its requests are sent and measured apart,
// so cold caches and new connections do not count.
type Warmup struct {
	Rate     float64       `yaml:"rate"`
	Duration time.Duration `yaml:"duration"`
}

// StageSpec is one stage: `rate` holds a rate, `from`+`to` or `ramp_to`
// ramps, `sweep` expands into steps.
type StageSpec struct {
	Name     string        `yaml:"name"`
	Rate     float64       `yaml:"rate"`
	From     float64       `yaml:"from"`
	To       float64       `yaml:"to"`
	RampTo   float64       `yaml:"ramp_to"`
	Duration time.Duration `yaml:"duration"`
	Sweep    *Sweep        `yaml:"sweep"`
}

// Sweep is a staircase of constant steps: from, from+step, ... to.
type Sweep struct {
	From     float64       `yaml:"from"`
	To       float64       `yaml:"to"`
	Step     float64       `yaml:"step"`
	Duration time.Duration `yaml:"duration"` // of each step
}

// RequestSpec is one kind of request in the mix.
type RequestSpec struct {
	Name    string            `yaml:"name"`
	Weight  int               `yaml:"weight"`
	Method  string            `yaml:"method"` // default GET
	Path    string            `yaml:"path"`   // with {placeholders}
	Body    string            `yaml:"body"`
	Headers map[string]string `yaml:"headers"`
	Auth    string            `yaml:"auth"`   // none (default), customer, admin
	Follow  string            `yaml:"follow"` // "order": poll the order to its final status
}

// Thresholds fail the run (non-zero exit) when crossed.
type Thresholds struct {
	P50       time.Duration `yaml:"p50"`
	P95       time.Duration `yaml:"p95"`
	P99       time.Duration `yaml:"p99"`
	ErrorRate *float64      `yaml:"error_rate"`
	// MaxSaturatedStages fails the run when more stages than this could
	// not hold their rate; unset allows any (a sweep is meant to find one).
	MaxSaturatedStages *int `yaml:"max_saturated_stages"`
	// OrderFinalP99 bounds an order's time from accepted to final status.
	OrderFinalP99 time.Duration `yaml:"order_final_p99"`
}

// Limits bound the generator.
type Limits struct {
	MaxWorkers uint64        `yaml:"max_workers"`
	Timeout    time.Duration `yaml:"timeout"`
	MaxLag     time.Duration `yaml:"max_lag"`
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse reads and validates a scenario; errors name the file, the line and
// the field: "browse.yaml:14: stages[1].rate: must be > 0".
func Parse(file string, b []byte) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(file, err)
	}
	s.file, s.root = file, &root
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// yamlError turns yaml.v3's "yaml: line 3: ..." into "3: ...", so that
// with the file name in front it reads like a compiler's "file:3: ...".
func yamlError(file string, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if rest, ok := strings.CutPrefix(m, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ": "); ok {
				msgs[i] = fmt.Sprintf("%s:%s: %s", file, n, tail)
				continue
			}
		}
		msgs[i] = file + ": " + m
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// ValidationError is one problem in a scenario file.
type ValidationError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

var (
	methods     = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"}
	authModes   = []string{"", "none", "customer", "admin"}
	followModes = []string{"", "order"}
	placeholder = regexp.MustCompile(`\{([a-z_0-9:\-]+)\}`)
	builtins    = []string{"product", "other_product", "customer", "uuid"}
)

func (s *Scenario) validate() error {
	var errs []error
	bad := func(msg string, path ...any) {
		line, field := s.locate(path...)
		errs = append(errs, &ValidationError{File: s.file, Line: line, Field: field, Msg: msg})
	}
	if s.Name == "" {
		bad("is required", "name")
	}
	if r := s.TraceSampling; r != nil && (*r < 0 || *r > 1) {
		bad("must be within [0, 1]", "trace_sampling")
	}
	if s.Customers < 0 {
		bad("must be >= 0", "customers")
	}
	if s.Products.Zipf != 0 && s.Products.Zipf <= 1 {
		bad(fmt.Sprintf("must be > 1 (or 0 for uniform), got %v", s.Products.Zipf), "products", "zipf")
	}
	if s.Products.First == 0 {
		s.Products.First = 1
	}
	if s.Products.Last == 0 {
		s.Products.Last = 10000
	}
	if s.Products.Last < s.Products.First {
		bad("must be >= products.first", "products", "last")
	}
	if w := s.Warmup; w != nil && (w.Rate <= 0 || w.Duration <= 0) {
		bad("needs a positive rate and duration", "warmup")
	}
	if len(s.Stages) == 0 {
		bad("at least one stage is required", "stages")
	}
	for i, st := range s.Stages {
		shapes := 0
		if st.Rate != 0 {
			shapes++
		}
		if st.From != 0 || st.To != 0 {
			shapes++
		}
		if st.RampTo != 0 {
			shapes++
		}
		if st.Sweep != nil {
			shapes++
		}
		switch {
		case shapes != 1:
			bad("give exactly one of rate, from+to, ramp_to or sweep", "stages", i)
		case st.Rate < 0:
			bad(fmt.Sprintf("must be > 0, got %v", st.Rate), "stages", i, "rate")
		case st.From < 0 || st.To < 0:
			bad("rates must be >= 0", "stages", i, "from")
		case st.RampTo < 0:
			bad(fmt.Sprintf("must be > 0, got %v", st.RampTo), "stages", i, "ramp_to")
		case st.Sweep != nil:
			sw := st.Sweep
			if sw.From <= 0 || sw.To < sw.From || sw.Step <= 0 {
				bad("needs 0 < from <= to and step > 0", "stages", i, "sweep")
			}
			if sw.Duration <= 0 {
				bad("must be positive", "stages", i, "sweep", "duration")
			}
		case st.Duration <= 0:
			bad("must be positive (e.g. 30s)", "stages", i, "duration")
		}
		if i == 0 && st.RampTo != 0 && s.Warmup == nil {
			bad("ramp_to starts from the previous stage's rate; the first stage has none (use from+to)", "stages", i, "ramp_to")
		}
	}
	if len(s.Mix) == 0 {
		bad("at least one request is required", "mix")
	}
	names := map[string]bool{}
	for i, r := range s.Mix {
		if r.Name == "" {
			bad("is required", "mix", i, "name")
		} else if names[r.Name] {
			bad(fmt.Sprintf("%q is used twice", r.Name), "mix", i, "name")
		}
		names[r.Name] = true
		if r.Weight <= 0 {
			bad(fmt.Sprintf("must be > 0, got %d", r.Weight), "mix", i, "weight")
		}
		if r.Method != "" && !slices.Contains(methods, strings.ToUpper(r.Method)) {
			bad(fmt.Sprintf("%q is not an HTTP method", r.Method), "mix", i, "method")
		}
		if !strings.HasPrefix(r.Path, "/") {
			bad("must start with /", "mix", i, "path")
		}
		if !slices.Contains(authModes, r.Auth) {
			bad(fmt.Sprintf("%q: use none, customer or admin", r.Auth), "mix", i, "auth")
		}
		if (r.Auth == "customer" || r.Follow == "order") && s.Customers == 0 {
			bad("needs customers > 0 for its tokens", "mix", i, "auth")
		}
		if !slices.Contains(followModes, r.Follow) {
			bad(fmt.Sprintf("%q: the only follow is order", r.Follow), "mix", i, "follow")
		}
		for _, field := range []string{"path", "body"} {
			text := r.Path
			if field == "body" {
				text = r.Body
			}
			for _, m := range placeholder.FindAllStringSubmatch(text, -1) {
				if err := s.checkPlaceholder(m[1]); err != nil {
					bad(err.Error(), "mix", i, field)
				}
			}
		}
	}
	if t := s.Thresholds.ErrorRate; t != nil && (*t < 0 || *t > 1) {
		bad("must be within [0, 1]", "thresholds", "error_rate")
	}
	return errors.Join(errs...)
}

func (s *Scenario) checkPlaceholder(name string) error {
	if slices.Contains(builtins, name) {
		return nil
	}
	if lo, hi, ok := strings.Cut(strings.TrimPrefix(name, "int:"), "-"); strings.HasPrefix(name, "int:") && ok {
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && a <= b {
			return nil
		}
		return fmt.Errorf("{%s}: write {int:LOW-HIGH}", name)
	}
	if _, ok := s.Lists[name]; ok {
		if len(s.Lists[name]) == 0 {
			return fmt.Errorf("{%s}: the list is empty", name)
		}
		return nil
	}
	return fmt.Errorf("{%s} is not a placeholder: use product, other_product, customer, uuid, int:LOW-HIGH or a name under lists", name)
}

// locate finds the line of a field path (names and indexes) in the file,
// falling back to the nearest ancestor that exists.
func (s *Scenario) locate(path ...any) (int, string) {
	var field strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&field, "[%d]", p)
		case string:
			if field.Len() > 0 {
				field.WriteByte('.')
			}
			field.WriteString(p)
		}
	}
	n := s.root
	if n == nil {
		return 0, field.String()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						line = n.Content[i].Line
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
				line = next.Line
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line, field.String()
}

// Schedule builds the engine schedule: the warm-up, then the stages.
func (s *Scenario) Schedule() (*engine.Schedule, error) {
	var stages []engine.Stage
	prev := 0.0
	if w := s.Warmup; w != nil {
		stages = append(stages, engine.Stage{Name: "warm-up", From: w.Rate, To: w.Rate, Duration: w.Duration, Warmup: true})
		prev = w.Rate
	}
	for i, st := range s.Stages {
		name := st.Name
		if name == "" {
			name = fmt.Sprintf("stage %d", i+1)
		}
		switch {
		case st.Sweep != nil:
			for r := st.Sweep.From; r <= st.Sweep.To+1e-9; r += st.Sweep.Step {
				stages = append(stages, engine.Stage{Name: fmt.Sprintf("%s @%g/s", name, r), From: r, To: r, Duration: st.Sweep.Duration})
				prev = r
			}
			continue
		case st.Rate != 0:
			stages = append(stages, engine.Stage{Name: name, From: st.Rate, To: st.Rate, Duration: st.Duration})
			prev = st.Rate
		case st.RampTo != 0:
			stages = append(stages, engine.Stage{Name: name, From: prev, To: st.RampTo, Duration: st.Duration})
			prev = st.RampTo
		default:
			stages = append(stages, engine.Stage{Name: name, From: st.From, To: st.To, Duration: st.Duration})
			prev = st.To
		}
	}
	return engine.NewSchedule(stages)
}

// Scale multiplies every rate by f (a quick run of a long scenario).
func (s *Scenario) Scale(rate, duration float64) {
	if s.Warmup != nil {
		s.Warmup.Rate *= rate
		s.Warmup.Duration = time.Duration(float64(s.Warmup.Duration) * duration)
	}
	for i := range s.Stages {
		st := &s.Stages[i]
		st.Rate *= rate
		st.From *= rate
		st.To *= rate
		st.RampTo *= rate
		st.Duration = time.Duration(float64(st.Duration) * duration)
		if st.Sweep != nil {
			st.Sweep.From *= rate
			st.Sweep.To *= rate
			st.Sweep.Step *= rate
			st.Sweep.Duration = time.Duration(float64(st.Sweep.Duration) * duration)
		}
	}
}
