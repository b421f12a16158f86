package k8s

import (
	"os"
	"strings"
	"testing"
)

func TestEveryOverlayRendersAndEveryCoreObjectIsValid(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			objs := render(t, dir)
			var core []byte
			n := 0
			for _, o := range objs {
				if customKinds[o.Kind] {
					continue
				}
				core = append(core, "---\n"...)
				core = append(core, o.raw...)
				n++
			}
			ok, report := validateCore(t, core)
			if !ok {
				t.Fatalf("%s: core objects fail the strict schema check (Kubernetes %s):\n%s", dir, kubeVersion, report)
			}
			t.Logf("%s: %d core objects valid, %d custom resources checked in crd_test.go", dir, n, len(objs)-n)
		})
	}
}

// The strict check must catch what a typo in a manifest looks like; if it
// ever stopped doing so, the test above would pass on anything.
func TestTheStrictCheckRejectsBrokenObjects(t *testing.T) {
	for _, tc := range []struct {
		file, finding string
	}{
		{"testdata/misspelt-field.yaml", "readinessProbee"},
		{"testdata/wrong-type.yaml", "replicas"},
		{"testdata/misspelt-nested-field.yaml", "runAsNonRoots"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stream, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			ok, report := validateCore(t, stream)
			if ok {
				t.Fatalf("%s passed the strict check; it must fail on %q", tc.file, tc.finding)
			}
			if !strings.Contains(report, "ERROR") || !strings.Contains(report, tc.finding) {
				t.Errorf("%s failed, but the report does not name %q:\n%s", tc.file, tc.finding, report)
			}
		})
	}
	// And the same objects without the mistake pass: the failures above are
	// the mistakes, not something else in the fixtures.
	stream, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if ok, report := validateCore(t, stream); !ok {
		t.Fatalf("testdata/valid.yaml fails:\n%s", report)
	}
}
