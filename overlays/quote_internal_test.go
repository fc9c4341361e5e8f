package overlays

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// runeByRuneQuoted is doubleQuoted written one rune at a time, as it was
// before it copied runs of plain characters whole.
func runeByRuneQuoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' || r < utf8.RuneSelf && r > ' ' && r < 0x7f:
			b.WriteRune(r)
		case r < 0x100 && !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\x%02X`, r)
		case r < 0x10000 && !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\U%08X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var quoteSamples = []string{"", "plain", `a "b" \c`, "tab\there\r\n", "\x00\x1f\x7f\u0085\u2028\ufeff\U000e0001", "é ü ✓ \ufffd", "\xff\xfe broken", "x\xe2\x82", ": #"}

func TestDoubleQuotedRuns(t *testing.T) {
	t.Parallel()
	for _, s := range quoteSamples {
		if got, want := doubleQuoted(s), runeByRuneQuoted(s); got != want {
			t.Errorf("doubleQuoted(%q) = %s, rune by rune %s", s, got, want)
		}
	}
}

func FuzzDoubleQuotedRuns(f *testing.F) {
	for _, s := range quoteSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := doubleQuoted(s), runeByRuneQuoted(s); got != want {
			t.Errorf("doubleQuoted(%q) = %s, rune by rune %s", s, got, want)
		}
	})
}
