package docs

// This test keeps the commands in README.md and docs/*.md working when a
// reader pastes them: every make target, stackctl subcommand and component,
// go run path, loadtest scenario and experiment, file path and port they
// name must exist in this repository.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/topology"
)

const root = ".."

// generated pages are written by a program (`make bench`); the program's
// own tests hold what it writes.
var generated = map[string]bool{"docs/benchmarks.md": true}

// command is one shell command as a doc shows it.
type command struct {
	file  string
	line  int
	text  string
	block string // the whole block it came from, for ports it defines
}

func TestDocumentedCommandsExist(t *testing.T) {
	facts := readFacts(t)
	cmds := documentedCommands(t)
	if len(cmds) < 20 {
		t.Fatalf("found only %d commands in README.md and docs/*.md; has the extraction broken?", len(cmds))
	}
	for _, c := range cmds {
		for _, problem := range facts.check(c) {
			t.Errorf("%s:%d: `%s`: %s", c.file, c.line, c.text, problem)
		}
	}
}

// The checker itself must catch what it is for.
func TestCheckerCatchesBrokenCommands(t *testing.T) {
	facts := readFacts(t)
	for _, bad := range []string{
		"stackctl up --profile test",            // bare stackctl: not on PATH
		".state/bin/stackctl explode catalog-1", // no such subcommand
		".state/bin/stackctl kill catalog-9",    // no such component
		"make deploy",                           // no such target
		"go run ./loadtest run no-such-scenario",
		"go run ./loadtest experiment no-such-experiment",
		"go run ./services/nothing/cmd/x",
		"curl -s localhost:8999/api/products", // no such port
		"less docs/no-such-page.md",           // no such file
	} {
		if len(facts.check(command{text: bad, block: bad})) == 0 {
			t.Errorf("`%s` passed the check", bad)
		}
	}
	for _, good := range []string{
		"make test",
		".state/bin/stackctl kill catalog-2",
		".state/bin/stackctl scale-out catalog --profile test",
		".state/bin/stackctl start --profile dev --env PPROF_ADDR=127.0.0.1:6091 orders-1",
		"go run ./loadtest experiment knee",
		"go run ./loadtest run browse --rate-scale 2",
		"curl -s localhost:9080/admin/backends | jq .",
		"SCALESHOP_TEST_PORT_OFFSET=10063 go test ./infra/pgdb/...",
	} {
		if p := facts.check(command{text: good, block: good}); len(p) > 0 {
			t.Errorf("`%s` failed the check: %v", good, p)
		}
	}
}

// documentedCommands extracts the commands of the shell blocks, and the
// inline code spans that are commands, of README.md and docs/*.md.
func documentedCommands(t *testing.T) []command {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	var out []command
	for _, path := range pages {
		name := strings.TrimPrefix(filepath.ToSlash(path), "../")
		if generated[name] {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, commandsOf(name, string(b))...)
	}
	return out
}

var (
	fence      = regexp.MustCompile("^```(\\w*)")
	inlineCode = regexp.MustCompile("`([^`]+)`")
	// An inline span is a command when it starts like one.
	inlineCommand = regexp.MustCompile(`^(make|go (run|test)|stackctl|\.state/bin/stackctl|curl) `)
)

func commandsOf(file, text string) []command {
	var out []command
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			for _, span := range inlineCode.FindAllStringSubmatch(lines[i], -1) {
				if inlineCommand.MatchString(span[1]) {
					out = append(out, command{file: file, line: i + 1, text: span[1], block: span[1]})
				}
			}
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if !slices.Contains([]string{"sh", "bash", "shell", "console"}, m[1]) {
			continue
		}
		block := strings.Join(body, "\n")
		// With "$ " prompts, the other lines are output.
		prompted := slices.ContainsFunc(body, func(l string) bool { return strings.HasPrefix(l, "$ ") })
		for j := 0; j < len(body); j++ {
			line, at := body[j], start+j+2
			for strings.HasSuffix(line, `\`) && j+1 < len(body) {
				j++
				line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(body[j])
			}
			if prompted {
				var ok bool
				if line, ok = strings.CutPrefix(line, "$ "); !ok {
					continue
				}
			}
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				out = append(out, command{file: file, line: at, text: s, block: block})
			}
		}
	}
	return out
}

// facts are what the repository has: the names a command may use.
type facts struct {
	makeTargets  map[string]bool
	stackctlCmds map[string]bool
	components   map[string]bool
	scenarios    map[string]bool
	experiments  map[string]bool
	loadtestCmds map[string]bool
	ports        map[int]bool
}

func readFacts(t *testing.T) *facts {
	t.Helper()
	read := func(path string) string {
		b, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f := &facts{
		makeTargets: matches(read("Makefile"), `(?m)^([A-Za-z0-9_.-]+):([^=]|$)`),
		// The subcommands are the words the usage text lists.
		stackctlCmds: matches(between(read("infra/local/stackctl/main.go"), "const usage", "`\n"), `(?m)^  ([a-z][a-z-]*)\b`),
		loadtestCmds: matches(between(read("loadtest/main.go"), "const usage", "`\n"), `(?m)^  ([a-z][a-z-]*)\b`),
		experiments:  map[string]bool{"list": true},
		components:   map[string]bool{},
		scenarios:    map[string]bool{},
		ports:        map[int]bool{},
	}
	srcs, _ := filepath.Glob(filepath.Join(root, "loadtest", "internal", "experiment", "*.go"))
	for _, src := range srcs {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		src, _ = filepath.Rel(root, src)
		for name := range matches(read(src), `Name:\s+"([a-z-]+)",\s+Concept:`) {
			f.experiments[name] = true
		}
	}
	yamls, _ := filepath.Glob(filepath.Join(root, "loadtest", "scenarios", "*.yaml"))
	for _, y := range yamls {
		f.scenarios[strings.TrimSuffix(filepath.Base(y), ".yaml")] = true
	}
	const testOffset = 10000 // the test profile's ports (make test)
	last, clones := map[string]int{}, map[string]int{}
	for _, c := range topology.Native() {
		f.components[c.Name] = true
		clones[c.Binary]++
		for _, p := range c.Ports {
			f.ports[p.Default], f.ports[p.Default+testOffset] = true, true
			if c.Binary != "" && p.Name == "http" {
				last[c.Binary] = max(last[c.Binary], p.Default)
			}
		}
	}
	// scale-out adds clones on the ports after the last one.
	for _, binary := range []string{"catalog", "orders"} {
		for i := 1; i <= 3; i++ {
			f.components[fmt.Sprintf("%s-%d", binary, clones[binary]+i)] = true
			f.ports[last[binary]+i] = true
		}
	}
	if len(f.makeTargets) < 5 || len(f.stackctlCmds) < 5 || len(f.experiments) < 5 || len(f.scenarios) < 3 || len(f.loadtestCmds) < 3 {
		t.Fatalf("could not read the repository's names: %+v", f)
	}
	return f
}

func matches(text, pattern string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

func between(text, from, to string) string {
	_, rest, _ := strings.Cut(text, from)
	body, _, _ := strings.Cut(rest, to)
	return body
}

var (
	portRef    = regexp.MustCompile(`(?:localhost|127\.0\.0\.1):(\d+)`)
	portDefine = regexp.MustCompile(`=(?:https?://)?(?:localhost|127\.0\.0\.1):(\d+)`)
	repoPath   = regexp.MustCompile(`^(\./)?(gateway|services|infra|loadtest|docs)/[\w./-]*$`)
	envAssign  = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)
	// A placeholder a reader fills in: NAME, catalog-N, <X-Trace-Id>.
	placeholder = regexp.MustCompile(`^(<.*>|[A-Z_]+|[a-z]+-N)$`)
)

// check returns what is wrong with c: each name it uses must exist.
func (f *facts) check(c command) []string {
	var problems []string
	defined := map[int]bool{}
	for _, m := range portDefine.FindAllStringSubmatch(c.block, -1) {
		n, _ := strconv.Atoi(m[1])
		defined[n] = true
	}
	for _, m := range portRef.FindAllStringSubmatch(c.text, -1) {
		if n, _ := strconv.Atoi(m[1]); !f.ports[n] && !defined[n] {
			problems = append(problems, "port "+m[1]+" is no port of the stack (infra/topology/topology.go)")
		}
	}
	for _, seg := range segments(c.text) {
		problems = append(problems, f.checkSegment(seg)...)
	}
	return problems
}

// segments splits a command line into simple commands (at |, &&, ||, ;),
// dropping comments, shell keywords and leading VAR=value assignments.
func segments(line string) [][]string {
	var out [][]string
	var cur []string
	flush := func() {
		for len(cur) > 0 && (envAssign.MatchString(cur[0]) || slices.Contains([]string{"do", "then", "else", "time"}, cur[0])) {
			cur = cur[1:]
		}
		if len(cur) > 0 && !slices.Contains([]string{"for", "while", "if", "done", "fi"}, cur[0]) {
			out = append(out, cur)
		}
		cur = nil
	}
	for _, w := range words(line) {
		switch {
		case strings.HasPrefix(w, "#"):
			flush()
			return out
		case w == "|" || w == "&&" || w == "||" || w == ";":
			flush()
		default:
			cur = append(cur, w)
		}
	}
	flush()
	return out
}

// words splits like a shell: quotes group, and ; | & separate.
func words(line string) []string {
	var out []string
	var b strings.Builder
	var quote rune
	emit := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				b.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
		case r == ' ' || r == '\t':
			emit()
		case r == ';':
			emit()
			out = append(out, ";")
		case r == '|' || r == '&':
			emit()
			if i+1 < len(rs) && rs[i+1] == r {
				i++
				out = append(out, string([]rune{r, r}))
			} else if r == '|' {
				out = append(out, "|")
			}
		default:
			b.WriteRune(r)
		}
	}
	emit()
	return out
}

func (f *facts) checkSegment(w []string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, arg := range w[1:] {
		if p := strings.TrimSuffix(arg, "/..."); repoPath.MatchString(p) {
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				bad("%s does not exist in the repository", arg)
			}
		}
	}
	args := positional(w[1:])
	switch name := w[0]; {
	case name == "stackctl":
		bad("stackctl is not on PATH: write .state/bin/stackctl (make stackctl builds it)")
	case name == "make":
		for _, target := range args {
			if !f.makeTargets[target] {
				bad("the Makefile has no target %q", target)
			}
		}
	case name == ".state/bin/stackctl":
		if len(args) == 0 || !f.stackctlCmds[args[0]] {
			bad("stackctl has no subcommand %q (infra/local/stackctl/main.go)", strings.Join(args, " "))
			break
		}
		switch args[0] {
		case "stop", "kill", "start":
			if len(args) < 2 || (!f.components[args[1]] && !placeholder.MatchString(args[1])) {
				bad("stackctl %s: no component %q in infra/topology/topology.go", args[0], strings.Join(args[1:], " "))
			}
		case "scale-out", "scale-in":
			if len(args) < 2 || (args[1] != "catalog" && args[1] != "orders") {
				bad("stackctl %s scales catalog or orders", args[0])
			}
		}
	case name == "go" && len(args) > 0 && args[0] == "run":
		if len(args) < 2 {
			bad("go run of nothing")
			break
		}
		pkg := args[1]
		if gos, _ := filepath.Glob(filepath.Join(root, pkg, "*.go")); len(gos) == 0 {
			bad("go run %s: no Go package there", pkg)
			break
		}
		if pkg == "./loadtest" {
			problems = append(problems, f.checkLoadtest(args[2:])...)
		}
	case strings.HasPrefix(name, "./") || repoPath.MatchString(name):
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			bad("%s does not exist in the repository", name)
		}
	}
	return problems
}

func (f *facts) checkLoadtest(args []string) []string {
	if len(args) == 0 || !f.loadtestCmds[args[0]] {
		return []string{fmt.Sprintf("loadtest has no command %q (loadtest/main.go)", strings.Join(args, " "))}
	}
	if len(args) < 2 || placeholder.MatchString(args[1]) {
		return nil
	}
	switch args[0] {
	case "run":
		if !f.scenarios[args[1]] && !strings.HasSuffix(args[1], ".yaml") {
			return []string{fmt.Sprintf("no scenario %q in loadtest/scenarios", args[1])}
		}
	case "experiment":
		if !f.experiments[args[1]] {
			return []string{fmt.Sprintf("no experiment %q (loadtest/internal/experiment)", args[1])}
		}
	}
	return nil
}

// flagsWithValue are the flags in the docs' commands that take the next
// word as their value, so it is not read as a positional argument.
var flagsWithValue = map[string]bool{"--profile": true, "--env": true, "-stack": true, "-rates": true,
	"-duration": true, "-step": true, "-profile": true, "-sample": true, "--duration-scale": true,
	"--rate-scale": true, "-fuzz": true, "-run": true, "-count": true, "-only": true}

func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case flagsWithValue[a]:
			i++
		case strings.HasPrefix(a, "-") || envAssign.MatchString(a):
		default:
			out = append(out, a)
		}
	}
	return out
}
