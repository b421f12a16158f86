package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// overlays are the directories a user applies; every test runs on each.
var overlays = []string{"overlays/dev", "overlays/prod"}

// object is one rendered manifest: its raw YAML and the fields every check
// needs to find it.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	raw []byte
}

func (o object) id() string { return o.Kind + "/" + o.Metadata.Name }

// decode reads the object into v, leniently: the schema checks are strict,
// the topology checks only read.
func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := yaml.Unmarshal(o.raw, v); err != nil {
		t.Fatalf("%s: %v", o.id(), err)
	}
}

var renders sync.Map // dir -> []object

// render runs the kustomize that kubectl carries on dir (relative to this
// package) and splits its output into objects; it is cached per dir.
func render(t *testing.T, dir string) []object {
	t.Helper()
	if v, ok := renders.Load(dir); ok {
		return v.([]object)
	}
	out := renderRaw(t, dir)
	objs, err := splitObjects(out)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", dir, err)
	}
	if len(objs) == 0 {
		t.Fatalf("kubectl kustomize %s rendered nothing", dir)
	}
	renders.Store(dir, objs)
	return objs
}

func renderRaw(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is not installed (its kustomize renders the manifests); install kubectl 1.32+: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

func splitObjects(stream []byte) ([]object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	var objs []object
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		raw, err := yaml.Marshal(&node)
		if err != nil {
			return nil, err
		}
		var o object
		if err := yaml.Unmarshal(raw, &o); err != nil {
			return nil, err
		}
		o.raw = raw
		objs = append(objs, o)
	}
}

// The strict schema check of core objects is kubernetes-validate, a PyPI
// package that bundles the Kubernetes OpenAPI schemas (1.25 to 1.37), so it
// needs no cluster and no download at check time. The test installs it into
// a virtualenv in the project's cache directory the first time; a machine
// that cannot install it fails here rather than skipping the check.
const (
	validatorPackage = "kubernetes-validate"
	validatorVersion = "1.37.0"
	// kubeVersion is the API the manifests are checked against: kubectl's.
	kubeVersion = "1.32.0"
)

var (
	validatorOnce sync.Once
	validatorPy   string
	validatorErr  error
)

// validator returns the python of a virtualenv that has kubernetes-validate.
func validator(t *testing.T) string {
	t.Helper()
	validatorOnce.Do(func() { validatorPy, validatorErr = installValidator() })
	if validatorErr != nil {
		t.Fatalf("cannot get the schema validator %s %s: %v", validatorPackage, validatorVersion, validatorErr)
	}
	return validatorPy
}

func cacheDir() (string, error) {
	if dir := os.Getenv("SCALESHOP_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set SCALESHOP_CACHE_DIR: %w", err)
	}
	return filepath.Join(base, "scaleshop"), nil
}

func installValidator() (string, error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	venv := filepath.Join(cache, "k8s", validatorPackage+"-"+validatorVersion)
	py := filepath.Join(venv, "bin", "python")
	if err := exec.Command(py, "-m", "kubernetes_validate", "--version").Run(); err == nil {
		return py, nil
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		return "", fmt.Errorf("python3 is needed to install it: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(venv), 0o755); err != nil {
		return "", err
	}
	// Build beside the final place and rename: a run that is interrupted
	// leaves no half-installed validator that a later run would trust.
	tmp, err := os.MkdirTemp(filepath.Dir(venv), ".install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	steps := [][]string{
		{python, "-m", "venv", tmp},
		{filepath.Join(tmp, "bin", "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
			validatorPackage + "==" + validatorVersion},
	}
	for _, step := range steps {
		if out, err := exec.Command(step[0], step[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	_ = os.RemoveAll(venv)
	if err := os.Rename(tmp, venv); err != nil {
		return "", err
	}
	if out, err := exec.Command(py, "-m", "kubernetes_validate", "--version").CombinedOutput(); err != nil {
		return "", fmt.Errorf("installed but does not run: %v\n%s", err, out)
	}
	return py, nil
}

// validateCore runs the strict check on a YAML stream and returns its
// findings; custom resources are left to the checks in crd_test.go.
func validateCore(t *testing.T, stream []byte) (ok bool, report string) {
	t.Helper()
	py := validator(t)
	f := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(f, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "kubernetes_validate", "--strict", "--quiet", "--no-warn",
		"--kubernetes-version", kubeVersion, f)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, string(out)
	case errors.As(err, &exit):
		return false, string(out)
	default:
		t.Fatalf("kubernetes-validate did not run: %v\n%s", err, out)
		return false, ""
	}
}
