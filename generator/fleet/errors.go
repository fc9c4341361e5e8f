package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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

// Error is one line: FILE:LINE:COL: field.path: message. Control
// characters, line breaks and other invisible characters anywhere in it
// are escaped, so a name in the fleet cannot forge more error lines.
func (e *Error) Error() string {
	pos := e.Pos
	pos.File = Escape(pos.File)
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", pos, Escape(e.Msg))
	}
	return fmt.Sprintf("%s: %s: %s", pos, Escape(e.Path), Escape(e.Msg))
}

// Escape replaces every character of s that is not printable (control
// characters, line and paragraph separators, NEL, BOM and other format
// characters, invalid UTF-8) with a Go escape sequence; s stays one line.
func Escape(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
		}
		if r == ' ' || unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

func printable(s string) bool {
	for _, r := range s {
		if r != ' ' && (!unicode.IsPrint(r) || r == utf8.RuneError) {
			return false
		}
	}
	return true
}

// Quote returns s as it is when it is a plain name (letters, digits and
// "_-./:@" only), else double-quoted with Go escapes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@") == "" {
		return s
	}
	return strconv.Quote(s)
}

// joinPath joins field labels with dots, quoting labels that are not
// identifiers (as CUE does): cluster "a.b" is spec.clusters."a.b".
func joinPath(labels []string) string {
	q := make([]string, len(labels))
	for i, l := range labels {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			l = strconv.Quote(l)
		}
		q[i] = l
	}
	return strings.Join(q, ".")
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
