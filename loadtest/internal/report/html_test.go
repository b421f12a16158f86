package report

import (
	"bytes"
	"strings"
	"testing"
)

// Text from the run (a scenario's description, an error message, a URL)
// shows as text: a value that looks like markup cannot change the page.
func TestHTMLEscapesWhatTheRunProduced(t *testing.T) {
	rep := sampleReport(t)
	rep.Description = `<img src=x onerror="alert(1)"> & more`
	rep.Failures = append(rep.Failures, `p99 </p><script>alert(2)</script> over budget`)
	var b bytes.Buffer
	if err := rep.HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, raw := range []string{"<img", "<script", `onerror="`} {
		if strings.Contains(page, raw) {
			t.Errorf("the page carries %q unescaped", raw)
		}
	}
	for _, escaped := range []string{"&lt;img src=x", "&lt;script&gt;alert(2)&lt;/script&gt;", "&amp; more"} {
		if !strings.Contains(page, escaped) {
			t.Errorf("the page lacks the escaped text %q", escaped)
		}
	}
	if !strings.Contains(page, `<table>`) || strings.Count(page, "<svg") < 3 {
		t.Errorf("the page lost its tables or charts")
	}
}
