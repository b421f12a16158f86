package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a Postgres WAL position (pg_lsn). A write returns the primary's
// LSN after its commit as a consistency token; a replica that has replayed
// at least that far has the write.
type LSN uint64

// String formats l as Postgres does: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF)
}

// ParseLSN reads the "hi/lo" hexadecimal form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("%q is not a WAL position like 0/16B3748", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not a WAL position like 0/16B3748", s)
	}
	return LSN(h<<32 | l), nil
}
