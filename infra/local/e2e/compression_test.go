package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/scaleshop/scaleshop/infra/stacktest"
)

// A browser asks for gzip: a list page of 100 products comes through the
// gateway compressed, several times smaller, and decompresses to the page a
// client without gzip gets.
func TestListPagesComeCompressedThroughTheGateway(t *testing.T) {
	st := stacktest.Require(t)
	url := st.Endpoints.GatewayURL + "/api/products?category=books&limit=100"
	// No transparent gzip: the test sees the bytes on the wire.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	get := func(encoding string) (http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s (Accept-Encoding %q) = %d %v", url, encoding, resp.StatusCode, err)
		}
		return resp.Header, body
	}
	zh, zbody := get("gzip")
	ph, plain := get("")
	if zh.Get("Content-Encoding") != "gzip" || ph.Get("Content-Encoding") != "" {
		t.Fatalf("Content-Encoding %q with gzip accepted, %q without; want gzip and none", zh.Get("Content-Encoding"), ph.Get("Content-Encoding"))
	}
	if len(zbody)*4 > len(plain) {
		t.Errorf("compressed page %d bytes against %d: want it at least 4× smaller", len(zbody), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(body []byte) []int64 {
		var page struct{ Items []struct{ ID int64 } }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("not a page: %v", err)
		}
		var out []int64
		for _, it := range page.Items {
			out = append(out, it.ID)
		}
		return out
	}
	if a, b := ids(unzipped), ids(plain); len(a) != 100 || len(a) != len(b) || a[0] != b[0] || a[99] != b[99] {
		t.Errorf("the compressed page has products %v…, the plain one %v…; want the same 100", a[:min(3, len(a))], b[:min(3, len(b))])
	}
}
