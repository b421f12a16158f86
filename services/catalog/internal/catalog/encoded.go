package catalog

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
)

// Encoded is a read's answer in wire form: the JSON body the API sends and
// its entity tag. A cache keeps it as it is and hands it back, so a hit
// costs neither a decode nor an encode.
type Encoded struct {
	Body []byte
	ETag string
}

// EncodeProduct is the wire form of p: the JSON the API sends, tagged with
// p.ETag().
func EncodeProduct(p Product) Encoded {
	b, _ := json.Marshal(p) // a Product always encodes: no channels, funcs or NaNs
	return Encoded{Body: b, ETag: p.ETag()}
}

// EncodePage is the wire form of a list page; an empty page has
// "items": [], never null.
func EncodePage(page Page) Encoded {
	if page.Items == nil {
		page.Items = []Product{}
	}
	b, _ := json.Marshal(page)
	return Encoded{Body: b, ETag: page.ETag()}
}

// ETag is a weak tag over the page's members, their versions and the cursor.
func (page Page) ETag() string {
	h := fnv.New64a()
	for _, it := range page.Items {
		fmt.Fprintf(h, "%d:%d,", it.ID, it.Version)
	}
	io.WriteString(h, page.NextCursor)
	return `W/"l-` + strconv.FormatUint(h.Sum64(), 36) + `"`
}
