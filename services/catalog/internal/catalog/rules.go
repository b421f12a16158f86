package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// Limits of the API.
const (
	DefaultLimit       = 20
	MaxLimit           = 100
	MaxIDs             = 100   // ids per GET /internal/products
	MaxReservationRows = 100   // items per reservation
	MaxQuantity        = 10000 // units of one item per reservation
	MaxPriceCents      = 1_000_000_000_00
	MaxStock           = 1_000_000_000
	maxAttributesBytes = 16 << 10
	maxOrderIDLen      = 128
)

var (
	skuPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate checks in and normalises it (attributes compacted, "{}" when
// absent). It reports every bad field at once.
func (in *Input) Validate() error {
	v := &problem.ValidationError{}
	if !skuPattern.MatchString(in.SKU) {
		v.Add("sku", "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	text(v, "name", in.Name, 1, 200)
	text(v, "description", in.Description, 0, 5000)
	text(v, "category", in.Category, 1, 64)
	if in.PriceCents < 0 || in.PriceCents > MaxPriceCents {
		v.Add("price_cents", fmt.Sprintf("integer cents between 0 and %d", int64(MaxPriceCents)))
	}
	if !currencyPattern.MatchString(in.Currency) {
		v.Add("currency", "three upper-case letters (ISO 4217), e.g. USD")
	}
	if in.Stock < 0 || in.Stock > MaxStock {
		v.Add("stock", fmt.Sprintf("between 0 and %d", MaxStock))
	}
	attrs, err := normaliseAttributes(in.Attributes)
	if err != nil {
		v.Add("attributes", err.Error())
	} else {
		in.Attributes = attrs
	}
	return v.OrNil()
}

// text checks a free-text field: valid UTF-8 without NUL (Postgres text
// rejects both), trimmed length within [min, max] runes.
func text(v *problem.ValidationError, field, s string, min, max int) {
	switch n := utf8.RuneCountInString(strings.TrimSpace(s)); {
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		v.Add(field, "must be valid UTF-8 without NUL characters")
	case n < min || utf8.RuneCountInString(s) > max:
		v.Add(field, fmt.Sprintf("between %d and %d characters", min, max))
	}
}

// normaliseAttributes accepts a JSON object (or nothing, meaning {}) that
// Postgres jsonb can store: no \u0000 anywhere, bounded size.
func normaliseAttributes(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > maxAttributesBytes {
		return nil, fmt.Errorf("at most %d bytes", maxAttributesBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	if unstorable(obj) {
		return nil, fmt.Errorf("must not contain NUL characters, invalid UTF-8 or numbers beyond float64")
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	return out, nil
}

func unstorable(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.ContainsRune(t, 0) || !utf8.ValidString(t)
	case map[string]any:
		for k, e := range t {
			if unstorable(k) || unstorable(e) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if unstorable(e) {
				return true
			}
		}
	case json.Number:
		// jsonb stores numbers as numeric, which overflows far below what
		// JSON can write: keep to what a float64 holds.
		_, err := strconv.ParseFloat(string(t), 64)
		return err != nil
	}
	return false
}

// ParseListQuery reads the list parameters; "" means the default.
func ParseListQuery(category, q, limit, cursor string) (ListQuery, error) {
	v := &problem.ValidationError{}
	lq := ListQuery{Category: category, Q: q, Limit: DefaultLimit}
	if category != "" {
		text(v, "category", category, 1, 64)
	}
	if q != "" {
		text(v, "q", q, 1, 100)
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			v.Add("limit", fmt.Sprintf("an integer between 1 and %d", MaxLimit))
		} else {
			lq.Limit = n
		}
	}
	if cursor != "" {
		id, err := DecodeCursor(cursor)
		if err != nil {
			v.Add("cursor", "not a cursor this API returned")
		}
		lq.AfterID = id
	}
	return lq, v.OrNil()
}

// EncodeCursor makes the opaque cursor that follows id. Pages are ordered by
// id, and new products get higher ids, so a cursor stays valid and no row is
// skipped or repeated when products are added while a client pages.
func EncodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("id:" + strconv.FormatInt(id, 10)))
}

// DecodeCursor reverses EncodeCursor.
func DecodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	rest, ok := strings.CutPrefix(string(b), "id:")
	if !ok {
		return 0, fmt.Errorf("bad cursor")
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("bad cursor")
	}
	return id, nil
}

// ParseID reads a product id from a path or list: a positive integer.
func ParseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// ParseIDs reads "1,2,3": 1..MaxIDs positive ids, duplicates dropped.
func ParseIDs(s string) ([]int64, error) {
	v := &problem.ValidationError{}
	parts := strings.Split(s, ",")
	if s == "" || len(parts) > MaxIDs {
		return nil, v.Add("ids", fmt.Sprintf("1 to %d comma-separated product ids", MaxIDs))
	}
	seen := make(map[int64]bool, len(parts))
	ids := make([]int64, 0, len(parts))
	for _, p := range parts {
		id, ok := ParseID(strings.TrimSpace(p))
		if !ok {
			return nil, v.Add("ids", fmt.Sprintf("%q is not a product id", p))
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Validate checks a reservation request, merges repeated products and sorts
// the items by product id: the stored items are the same whatever order a
// retry lists them in, and rows are always locked in one order (no deadlock).
func (r *ReservationRequest) Validate() error {
	v := &problem.ValidationError{}
	if r.OrderID == "" || len(r.OrderID) > maxOrderIDLen || !utf8.ValidString(r.OrderID) || strings.ContainsRune(r.OrderID, 0) {
		v.Add("order_id", fmt.Sprintf("1 to %d characters of valid UTF-8", maxOrderIDLen))
	}
	if len(r.Items) == 0 || len(r.Items) > MaxReservationRows {
		v.Add("items", fmt.Sprintf("1 to %d items", MaxReservationRows))
	}
	merged := map[int64]int64{}
	var order []int64
	for i, it := range r.Items {
		if it.ProductID <= 0 {
			v.Add(fmt.Sprintf("items[%d].product_id", i), "a positive product id")
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			v.Add(fmt.Sprintf("items[%d].quantity", i), fmt.Sprintf("between 1 and %d", MaxQuantity))
		}
		if _, ok := merged[it.ProductID]; !ok {
			order = append(order, it.ProductID)
		}
		merged[it.ProductID] += it.Quantity
	}
	if err := v.OrNil(); err != nil {
		return err
	}
	items := make([]ReservationItem, 0, len(order))
	for _, id := range order {
		if merged[id] > MaxQuantity {
			return v.Add("items", fmt.Sprintf("product %d: more than %d units in total", id, MaxQuantity))
		}
		items = append(items, ReservationItem{ProductID: id, Quantity: merged[id]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].ProductID < items[j].ProductID })
	r.Items = items
	return nil
}

// ValidOrderID reports whether id can name a reservation.
func ValidOrderID(id string) bool {
	return id != "" && len(id) <= maxOrderIDLen && utf8.ValidString(id) && !strings.ContainsRune(id, 0)
}

// ETag is the entity tag of one product representation: id and version.
// It is strong: the representation is exactly the row at that version.
func (p Product) ETag() string {
	return `"p` + strconv.FormatInt(p.ID, 10) + "-v" + strconv.FormatInt(p.Version, 10) + `"`
}

// ParseETag reads a strong entity tag (quotes included) that ETag made: the
// product and version it names. Any other tag names no product version.
func ParseETag(tag string) (id, version int64, ok bool) {
	inner, ok := strings.CutPrefix(tag, `"p`)
	if !ok {
		return 0, 0, false
	}
	inner, ok = strings.CutSuffix(inner, `"`)
	if !ok {
		return 0, 0, false
	}
	idText, versionText, ok := strings.Cut(inner, "-v")
	if !ok {
		return 0, 0, false
	}
	id, idOK := ParseID(idText)
	version, versionOK := ParseID(versionText)
	// Strong comparison is of the exact characters: "p01-v2" or "p+1-v2"
	// was never issued, so it names nothing.
	if !idOK || !versionOK || (Product{ID: id, Version: version}).ETag() != tag {
		return 0, 0, false
	}
	return id, version, true
}
