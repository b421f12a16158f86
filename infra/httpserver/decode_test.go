package httpserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/scaleshop/scaleshop/infra/problem"
)

type decodeLine struct {
	ProductID int64 `json:"product_id"`
	Quantity  int   `json:"quantity"`
}

type decodeEmbedded struct {
	SKU        string          `json:"sku"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
}

type decodeTarget struct {
	decodeEmbedded
	Version *int64       `json:"version"`
	Items   []decodeLine `json:"items"`
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		field  string // the one field error expected, when status is 400
		detail string
	}{
		{name: "good", body: `{"sku":"a-1","attributes":{"color":["red"]},"version":3,"items":[{"product_id":1,"quantity":2}]}`, status: 200},
		{name: "unknown top-level field", body: `{"sku":"a","prize":1}`, status: 400, field: "prize", detail: "unknown field"},
		{name: "unknown nested field", body: `{"items":[{"product_id":1,"qty":2}]}`, status: 400, field: "items[0].qty", detail: "unknown field"},
		{name: "wrong type", body: `{"items":[{"product_id":1},{"product_id":"x"}]}`, status: 400, field: "items[1].product_id", detail: "must be an integer"},
		{name: "fraction for an integer", body: `{"version":1.5}`, status: 400, field: "version", detail: "must be an integer"},
		{name: "number for a string", body: `{"sku":7}`, status: 400, field: "sku", detail: "must be a string"},
		{name: "name given twice", body: `{"sku":"a","sku":"b"}`, status: 400, field: "sku", detail: "given more than once"},
		{name: "field names are exact", body: `{"SKU":"a"}`, status: 400, field: "SKU", detail: "unknown field"},
		{name: "not an object", body: `[1,2]`, status: 400, field: "body", detail: "must be a JSON object"},
		{name: "truncated", body: `{"sku":"a"`, status: 400, field: "body"},
		{name: "two values", body: `{"sku":"a"} {"sku":"b"}`, status: 400, field: "body"},
		{name: "empty", body: ``, status: 400, field: "body", detail: "required: a JSON object"},
		{name: "too large", body: `{"sku":"` + strings.Repeat("x", 200) + `"}`, status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			var v decodeTarget
			err := DecodeJSON(rec, req, 128, &v)
			if tt.status == 200 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if v.SKU != "a-1" || *v.Version != 3 || v.Items[0].Quantity != 2 || string(v.Attributes) != `{"color":["red"]}` {
					t.Fatalf("decoded %+v", v)
				}
				return
			}
			d := problem.From(err)
			if d.Status != tt.status {
				t.Fatalf("status %d, want %d (%v)", d.Status, tt.status, err)
			}
			if tt.status != 400 {
				return
			}
			if len(d.Errors) != 1 || d.Errors[0].Field != tt.field {
				t.Fatalf("field errors %+v, want one on %q", d.Errors, tt.field)
			}
			if tt.detail != "" && d.Errors[0].Detail != tt.detail {
				t.Errorf("detail %q, want %q", d.Errors[0].Detail, tt.detail)
			}
			// The client reads the API's words, never the decoder's.
			for _, leak := range []string{"json:", "Go ", "int64", "httpserver.", "SQLSTATE", "jsontext"} {
				if strings.Contains(d.Detail+d.Errors[0].Detail, leak) {
					t.Errorf("problem leaks decoder text %q: %+v", leak, d)
				}
			}
		})
	}
}
