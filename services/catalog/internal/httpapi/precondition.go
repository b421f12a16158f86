package httpapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

// entityTags is a parsed If-Match field (RFC 9110 §13.1.1): "*", or a list
// of entity tags.
type entityTags struct {
	any    bool     // "*": whatever the current representation is
	strong []string // the strong tags listed, quotes included
	// Weak tags (W/"...") are dropped: If-Match compares strongly, so a
	// weak tag never matches, whatever it names.
}

// parseEntityTags parses the If-Match field lines; ok is false when they are
// not "*" alone or a comma-separated list of entity tags.
func parseEntityTags(lines []string) (tags entityTags, ok bool) {
	value := strings.Join(lines, ",") // repeated lines are one list
	if strings.Trim(value, " \t") == "*" {
		return entityTags{any: true}, true
	}
	rest := value
	for {
		rest = strings.TrimLeft(rest, " \t,") // empty list elements are allowed
		if rest == "" {
			return tags, true
		}
		weak := strings.HasPrefix(rest, "W/")
		if weak {
			rest = rest[2:]
		}
		tag, after, ok := cutOpaqueTag(rest)
		if !ok {
			return entityTags{}, false
		}
		if !weak {
			tags.strong = append(tags.strong, tag)
		}
		rest = strings.TrimLeft(after, " \t")
		if rest != "" && rest[0] != ',' {
			return entityTags{}, false
		}
	}
}

// cutOpaqueTag cuts a quoted opaque-tag (DQUOTE *etagc DQUOTE, etagc being
// any visible character but DQUOTE, or obs-text) off the front of s.
func cutOpaqueTag(s string) (tag, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:], true
		case c < 0x21 || c == 0x7f:
			return "", "", false
		}
	}
	return "", "", false
}

// maxTagsPerWrite bounds the versions one If-Match may name: each one costs
// a conditional write on the primary.
const maxTagsPerWrite = 16

// precondition is what a write's If-Match asks for.
type precondition struct {
	given    bool    // If-Match was sent
	any      bool    // "*": any current version
	versions []int64 // versions of this product the tags name, newest first
}

// readPrecondition reads If-Match for product id. Tags of other products,
// weak tags and tags this API never issued are valid but name no version,
// so they cannot match: 412, not 400.
func readPrecondition(lines []string, id int64) (precondition, error) {
	if len(lines) == 0 {
		return precondition{}, nil
	}
	tags, ok := parseEntityTags(lines)
	if !ok {
		return precondition{}, invalid("If-Match", `"*" or a list of entity tags, such as the ETag of this product ("p<id>-v<version>")`)
	}
	p := precondition{given: true, any: tags.any}
	for _, tag := range tags.strong {
		if tagID, version, ok := catalog.ParseETag(tag); ok && tagID == id && !slices.Contains(p.versions, version) {
			p.versions = append(p.versions, version)
		}
	}
	if len(p.versions) > maxTagsPerWrite {
		return precondition{}, invalid("If-Match", fmt.Sprintf("name at most %d versions of this product", maxTagsPerWrite))
	}
	slices.SortFunc(p.versions, func(a, b int64) int { return int(b - a) })
	return p, nil
}

// apply runs write (conditional on a version; 0 is unconditional) under p;
// exists reports whether the product is there. A missing product is 404
// whatever If-Match says: preconditions are ignored when the answer without
// them would not be 2xx (RFC 9110 §13.2.1). With several listed versions it
// tries each, newest first: each try is one atomic conditional write, so at
// most one succeeds, and it is the one whose version was current when it ran.
func (p precondition) apply(unconditional int64, write func(ifVersion int64) error, exists func() error) error {
	switch {
	case !p.given:
		return write(unconditional)
	case p.any:
		return write(0)
	case len(p.versions) == 0:
		if err := exists(); err != nil {
			return err
		}
		return fmt.Errorf("%w: no entity tag in If-Match is the current one of this product", problem.ErrPreconditionFailed)
	}
	var err error
	for _, v := range p.versions {
		if err = write(v); !errors.Is(err, problem.ErrPreconditionFailed) {
			return err
		}
	}
	return err
}
