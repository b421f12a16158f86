package concepts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestThirteenConceptsEachWithNumbersCodeAndACommand(t *testing.T) {
	all := All()
	if len(all) != 13 {
		t.Fatalf("%d concepts, want the thirteen", len(all))
	}
	seen := map[string]bool{}
	for _, c := range all {
		if seen[c.ID] {
			t.Errorf("concept %s twice", c.ID)
		}
		seen[c.ID] = true
		if len(c.Series) == 0 || len(c.Code) == 0 || len(c.Commands) == 0 || c.What == "" {
			t.Errorf("%s lacks numbers, code, a command or its explanation", c.ID)
		}
		for _, path := range c.Code {
			if _, err := os.Stat(filepath.Join("..", "..", "..", "..", path)); err != nil {
				t.Errorf("%s names %s, which is not in the repository", c.ID, path)
			}
		}
	}
}

// docs/console.md explains each panel's PromQL; a changed query must change
// the page too.
func TestTheDocsShowEveryPanelsQuery(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "console.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range All() {
		if !strings.Contains(doc, "### "+c.Title) {
			t.Errorf("docs/console.md has no section %q", c.Title)
		}
		for _, s := range c.Series {
			if !strings.Contains(doc, "`"+s.Query+"`") {
				t.Errorf("docs/console.md does not show the %s query %s", c.Title, s.Query)
			}
		}
	}
}
