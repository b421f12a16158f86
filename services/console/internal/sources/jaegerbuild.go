package sources

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// JaegerBuild is the progress of Jaeger's background build on a first run,
// as the supervisor writes it to jaeger-build.json in the state directory.
type JaegerBuild struct {
	State         string    `json:"state"` // waiting, downloading, building, done, failed
	Percent       float64   `json:"percent"`
	PackagesBuilt int       `json:"packages_built"`
	PackagesTotal int       `json:"packages_total"`
	Started       time.Time `json:"started"`
	Error         string    `json:"error"`
	Log           string    `json:"log"`
}

// ReadJaegerBuild reads the build's progress; nil (and no error) when no
// build ran in this start, because the binary was already there.
func ReadJaegerBuild(stateDir string) (*JaegerBuild, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "jaeger-build.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var jb JaegerBuild
	if err := json.Unmarshal(b, &jb); err != nil {
		return nil, fmt.Errorf("jaeger-build.json: %w", err)
	}
	return &jb, nil
}

// InProgress says whether the build is still on its way (waiting for the
// build lock, downloading modules or compiling).
func (jb *JaegerBuild) InProgress() bool {
	return jb != nil && jb.State != "done" && jb.State != "failed"
}

// Notice says what a user waiting for traces should know, or "".
func (jb *JaegerBuild) Notice(now time.Time) string {
	switch {
	case !jb.InProgress() && (jb == nil || jb.State != "failed"):
		return ""
	case jb.State == "failed":
		return fmt.Sprintf("Jaeger's build failed (%s); see %s. Everything else runs; traces need Jaeger.", jb.Error, jb.Log)
	default:
		return fmt.Sprintf("Jaeger is still being built from its Go module (first run only): %.0f %% (%d of %d packages), for %s so far. "+
			"Everything else already runs; Jaeger starts the moment its binary exists, and traces show here from then on.",
			jb.Percent, jb.PackagesBuilt, jb.PackagesTotal, now.Sub(jb.Started).Round(time.Second))
	}
}
