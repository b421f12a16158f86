package stackcontrol

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve answers on the control socket of a fake state directory the way the
// supervisor does: the path names the component and the action, env
// overrides come as repeated query values.
func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sc") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", Socket(dir))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return dir
}

func TestSendNamesComponentActionAndEnv(t *testing.T) {
	var got string
	dir := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Method + " " + r.URL.Path + " " + strings.Join(r.URL.Query()["env"], ";")
		w.Write([]byte("catalog-3: start done\n"))
	})
	answer, err := Send(context.Background(), dir, "start", "catalog-3", "GOMAXPROCS=1", "CATALOG_CACHE_ENABLED=false")
	if err != nil {
		t.Fatal(err)
	}
	if want := "POST /components/catalog-3/start GOMAXPROCS=1;CATALOG_CACHE_ENABLED=false"; got != want {
		t.Errorf("supervisor saw %q, want %q", got, want)
	}
	if answer != "catalog-3: start done" {
		t.Errorf("answer %q", answer)
	}
}

func TestSendReportsTheSupervisorsRefusal(t *testing.T) {
	dir := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no component nope", http.StatusNotFound)
	})
	_, err := Send(context.Background(), dir, "stop", "nope")
	if err == nil || err.Error() != "stop nope: no component nope" {
		t.Fatalf("err = %v", err)
	}
}

func TestSendWithoutASupervisorSaysWhereItLooked(t *testing.T) {
	dir := t.TempDir()
	_, err := Send(context.Background(), dir, "stop", "gateway")
	if err == nil || !strings.Contains(err.Error(), Socket(dir)) {
		t.Fatalf("err = %v, want it to name %s", err, Socket(dir))
	}
}

func TestRunningReadsWhichComponentsRun(t *testing.T) {
	dir := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/components" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"catalog-1":true,"catalog-2":false,"catalog-3":true}`))
	})
	got, err := Running(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got["catalog-1"] || got["catalog-2"] || !got["catalog-3"] || len(got) != 3 {
		t.Errorf("running = %v", got)
	}
}
