package orders

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scaleshop/scaleshop/infra/problem"
)

// Cursor is a position in a newest-first listing: the last order of the
// previous page. Orders sort by (created_at, shard, uuid), a total order
// across shards, so the scatter-gather listing pages without gaps or repeats.
type Cursor struct {
	CreatedAt time.Time
	ID        ID
}

// CursorOf is the position of o.
func CursorOf(o *Order) Cursor { return Cursor{CreatedAt: o.CreatedAt, ID: o.ID} }

// Compare orders two positions, oldest first.
func (c Cursor) Compare(d Cursor) int {
	if c.CreatedAt.Before(d.CreatedAt) {
		return -1
	}
	if c.CreatedAt.After(d.CreatedAt) {
		return 1
	}
	if c.ID.Shard != d.ID.Shard {
		return c.ID.Shard - d.ID.Shard
	}
	return bytes.Compare(c.ID.UUID[:], d.ID.UUID[:])
}

// Encode is the opaque text a client passes back as ?cursor=.
func (c Cursor) Encode() string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "|" + c.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor reads ?cursor=; "" is the first page (nil).
func ParseCursor(s string, shards int) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	bad := (&problem.ValidationError{}).Add("cursor", "not a cursor this API returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	micros, rawID, ok := strings.Cut(string(raw), "|")
	if !ok {
		return nil, bad
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return nil, bad
	}
	id, err := ParseID(rawID, shards)
	if err != nil {
		return nil, fmt.Errorf("%w", bad)
	}
	return &Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: id}, nil
}
