package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Position is a place in a fleet file. Line and Column are 1-based; zero
// means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Error is one problem in a fleet file: where it is, which field, and what
// is wrong with it.
type Error struct {
	Pos  Position
	Path string // dotted field path, e.g. spec.clusters.west.role
	Msg  string

	labels []string // Path one label an element: cluster names may hold dots
}

// meant is the field an unknown field is probably a misspelling of, or
// nil.
func (e *Error) meant() []string {
	_, rest, ok := strings.Cut(e.Msg, "(did you mean ")
	if !ok || len(e.labels) == 0 || !strings.HasPrefix(e.Msg, "unknown field") {
		return nil
	}
	name, err := strconv.Unquote(strings.TrimSuffix(rest, "?)"))
	if err != nil {
		return nil
	}
	return append(e.labels[:len(e.labels)-1:len(e.labels)-1], name)
}

// withoutEchoes drops the "field is required" errors of fields that an
// unknown field next to them is a misspelling of: the typo says it all.
func (es Errors) withoutEchoes() Errors {
	var meant [][]string
	for _, e := range es {
		if m := e.meant(); m != nil {
			meant = append(meant, m)
		}
	}
	return slices.DeleteFunc(es, func(e *Error) bool {
		return strings.HasPrefix(e.Msg, "field is required") && slices.ContainsFunc(meant, func(m []string) bool { return slices.Equal(m, e.labels) })
	})
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Path, e.Msg)
}

// Errors is every problem found in one fleet file, in document order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders errors by position, then path, and drops exact repeats.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return a.Pos == b.Pos && a.Path == b.Path && a.Msg == b.Msg })
}

// orNil returns es as an error, or nil when it is empty.
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}
