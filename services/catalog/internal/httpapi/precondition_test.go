package httpapi

import (
	"slices"
	"strconv"
	"testing"
)

func TestReadPrecondition(t *testing.T) {
	tests := []struct {
		name      string
		lines     []string
		want      precondition
		malformed bool
	}{
		{name: "absent"},
		{name: "star", lines: []string{"*"}, want: precondition{given: true, any: true}},
		{name: "star with spaces", lines: []string{" * "}, want: precondition{given: true, any: true}},
		{name: "current tag", lines: []string{`"p1-v3"`}, want: precondition{given: true, versions: []int64{3}}},
		{name: "valid tag this API never issued", lines: []string{`"stale-0"`}, want: precondition{given: true}},
		{name: "another product's tag", lines: []string{`"p2-v3"`}, want: precondition{given: true}},
		{name: "weak tag never matches", lines: []string{`W/"p1-v3"`}, want: precondition{given: true}},
		{name: "tag spelled differently from what was issued", lines: []string{`"p01-v3"`, `"p1-v+3"`}, want: precondition{given: true}},
		{name: "list, newest first", lines: []string{`"p1-v2", W/"p1-v9", "x", "p1-v5"`}, want: precondition{given: true, versions: []int64{5, 2}}},
		{name: "list over two lines, duplicates once", lines: []string{`"p1-v2"`, `"p1-v2",,"p1-v4"`}, want: precondition{given: true, versions: []int64{4, 2}}},
		{name: "empty tag is valid", lines: []string{`""`}, want: precondition{given: true}},
		{name: "empty field names nothing", lines: []string{""}, want: precondition{given: true}},
		{name: "bare version", lines: []string{"3"}, malformed: true},
		{name: "unquoted", lines: []string{"p1-v3"}, malformed: true},
		{name: "unterminated", lines: []string{`"p1-v3`}, malformed: true},
		{name: "space inside the tag", lines: []string{`"p1 v3"`}, malformed: true},
		{name: "junk after a tag", lines: []string{`"p1-v3" x`}, malformed: true},
		{name: "star in a list", lines: []string{`*, "p1-v3"`}, malformed: true},
		{name: "lower-case weak marker", lines: []string{`w/"p1-v3"`}, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPrecondition(tt.lines, 1)
			if tt.malformed {
				if err == nil {
					t.Fatalf("If-Match %q accepted as %+v, want 400", tt.lines, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("If-Match %q: %v", tt.lines, err)
			}
			if got.given != tt.want.given || got.any != tt.want.any || !slices.Equal(got.versions, tt.want.versions) {
				t.Errorf("If-Match %q = %+v, want %+v", tt.lines, got, tt.want)
			}
		})
	}
}

func TestReadPreconditionBoundsTheTries(t *testing.T) {
	var list []string
	for v := range maxTagsPerWrite + 1 {
		list = append(list, `"p1-v`+strconv.Itoa(v+1)+`"`)
	}
	if _, err := readPrecondition(list, 1); err == nil {
		t.Errorf("%d versions of one product accepted; each costs a write on the primary", len(list))
	}
	if _, err := readPrecondition(list[:maxTagsPerWrite], 1); err != nil {
		t.Errorf("%d versions refused: %v", maxTagsPerWrite, err)
	}
}
