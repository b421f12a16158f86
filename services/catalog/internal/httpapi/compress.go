package httpapi

import (
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// Compress wraps the catalog's handler so that bodies of 1 KiB and more go
// out gzip-compressed to the clients that accept it: a list page of 100
// products is 30 KB of JSON and 4 KB compressed, at about 0.2 ms of CPU.
// That cost is paid per response: the cache keeps one encoding of a body,
// for every client. It is also the catalog's own CPU work that the scaling
// experiments load (docs/loadtest.md).
//
// Only bodies with a weak entity tag are compressed (list pages): a weak
// tag may be shared by the gzip and identity forms of one page, which are
// semantically equivalent (RFC 9110 §8.8.1), while a strong one (a
// product's "p<id>-v<version>", which If-Match names) promises exact bytes.
// A product is well under 1 KiB anyway.
func Compress(h http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(1024),
		gzhttp.EnableZstd(false),
		gzhttp.ContentTypes([]string{"application/json", "application/problem+json"}),
	)
	if err != nil {
		return nil, err
	}
	return wrap(h), nil
}

// noCompression marks a response Compress must leave as it is.
var noCompression = []string{"1"}
