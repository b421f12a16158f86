package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/scaleshop/scaleshop"

// deps maps every package of the module to everything it imports,
// transitively.
func deps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		m[fields[0]] = fields[1:]
	}
	if len(m) < 10 {
		t.Fatalf("go list found only %d packages; is this the module root?", len(m))
	}
	return m
}

func TestSharedInfraImportsNoServiceOrGateway(t *testing.T) {
	for pkg, ds := range deps(t) {
		if !strings.HasPrefix(pkg, module+"/infra/") {
			continue
		}
		for _, d := range ds {
			if strings.HasPrefix(d, module+"/services/") || strings.HasPrefix(d, module+"/gateway/") {
				t.Errorf("%s depends on %s: infra/ is shared runtime code and must not reach into a service", pkg, d)
			}
		}
	}
}

func TestServicesTalkOnlyOverTheNetwork(t *testing.T) {
	for pkg, ds := range deps(t) {
		own := serviceOf(pkg)
		if own == "" {
			continue
		}
		for _, d := range ds {
			if other := serviceOf(d); other != "" && other != own {
				t.Errorf("%s (service %s) depends on %s (service %s)", pkg, own, d, other)
			}
		}
	}
}

// Domain packages (services/<svc>/internal/<svc>) hold types and rules only;
// transports and drivers stay at the edges.
func TestDomainPackagesImportNoFrameworkOrDriver(t *testing.T) {
	forbidden := []string{
		"github.com/gin-gonic/gin",
		"gorm.io/gorm",
		"github.com/segmentio/kafka-go",
		"github.com/bradfitz/gomemcache",
		"github.com/jackc/pgx",
	}
	found := 0
	for pkg, ds := range deps(t) {
		svc := serviceOf(pkg)
		if svc == "" || pkg != module+"/"+svc+"/internal/"+strings.TrimPrefix(svc, "services/") {
			continue
		}
		found++
		for _, d := range ds {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("domain package %s depends on %s", pkg, d)
				}
			}
		}
	}
	if found == 0 {
		t.Fatal("no domain package (services/<svc>/internal/<svc>) found; the rule checks nothing")
	}
}

// serviceOf returns "services/catalog" for any package of that service, or
// "gateway" for the gateway's, else "".
func serviceOf(pkg string) string {
	rest, ok := strings.CutPrefix(pkg, module+"/")
	if !ok {
		return ""
	}
	if strings.HasPrefix(rest, "gateway/") || rest == "gateway" {
		return "gateway"
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) >= 2 && parts[0] == "services" {
		return "services/" + parts[1]
	}
	return ""
}
