package overlays

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// marshal writes v (maps, slices, strings, bools and ints, as built by the
// planner) as block-style YAML. It is deterministic: keys come in the order
// people expect in Kubernetes objects (apiVersion, kind, metadata, name,
// namespace, …) and alphabetically after that. Strings that YAML could
// read as anything but a string are double-quoted.
func marshal(b *bytes.Buffer, v any) error {
	return emit(b, v, 0, false)
}

// keyRank puts the keys that identify an object first.
var keyRank = map[string]int{
	"apiVersion": -7, "kind": -6, "metadata": -5, "name": -4, "namespace": -3, "labels": -2, "annotations": -1,
}

// spaces serves the indentation of all but very deep nesting without
// allocating.
const spaces = "                                                                "

func indentation(indent int) string {
	if 2*indent <= len(spaces) {
		return spaces[:2*indent]
	}
	return strings.Repeat("  ", indent)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := keyRank[a], keyRank[b]; ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// emit writes v at the given indentation. inSeq says the first line
// follows a "- " that is already written.
func emit(b *bytes.Buffer, v any, indent int, inSeq bool) error {
	pad := indentation(indent)
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString("{}\n")
			return nil
		}
		for i, k := range sortedKeys(v) {
			key, err := keyScalar(k)
			if err != nil {
				return err
			}
			if i > 0 || !inSeq {
				b.WriteString(pad)
			}
			b.WriteString(key)
			b.WriteByte(':')
			if err := value(b, v[k], indent); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	case []any:
		if len(v) == 0 {
			b.WriteString("[]\n")
			return nil
		}
		for i, e := range v {
			if i > 0 || !inSeq {
				b.WriteString(pad)
			}
			b.WriteString("- ")
			if err := emit(b, e, indent+1, true); err != nil {
				return err
			}
		}
	default:
		s, err := leaf(v)
		if err != nil {
			return err
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return nil
}

// value writes the value of a mapping key: nested collections on the next
// lines, multi-line strings as literal blocks, anything else on the line.
func value(b *bytes.Buffer, v any, indent int) error {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			b.WriteString(" {}\n")
			return nil
		}
		b.WriteByte('\n')
		return emit(b, v, indent+1, false)
	case []any:
		if len(v) == 0 {
			b.WriteString(" []\n")
			return nil
		}
		b.WriteByte('\n')
		return emit(b, v, indent, false) // sequences sit at the key's indentation
	case string:
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s is not valid UTF-8", strconv.QuoteToASCII(v))
		}
		if literalOK(v) {
			b.WriteString(" |\n")
			pad := indentation(indent + 1)
			for line := range strings.Lines(v) {
				if line != "\n" {
					b.WriteString(pad)
				}
				b.WriteString(line)
			}
			return nil
		}
	}
	s, err := leaf(v)
	if err != nil {
		return err
	}
	b.WriteByte(' ')
	b.WriteString(s)
	b.WriteByte('\n')
	return nil
}

func leaf(v any) (string, error) {
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%s is not valid UTF-8", strconv.QuoteToASCII(v))
		}
		return scalar(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		return formatFloat(v)
	case nil:
		return "null", nil
	}
	return "", fmt.Errorf("cannot write %T as YAML", v)
}

// formatFloat writes a float that YAML 1.1 (kustomize's JSON conversion)
// and YAML 1.2 both read as the same float: with a '.' before an
// exponent, whose sign is explicit.
func formatFloat(v float64) (string, error) {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "", fmt.Errorf("%v is not a number JSON or Kubernetes can hold", v)
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if mant, exp, ok := strings.Cut(s, "e"); ok && !strings.Contains(mant, ".") {
		s = mant + ".0e" + exp
	}
	return s, nil
}

// plain matches strings that YAML reads back as the same string when
// written without quotes: they start with a letter, '/', '_', "./" or "../", contain
// no ": " or " #", and are none of YAML 1.1's booleans or nulls.
var plain = regexp.MustCompile(`^([A-Za-z_/]|\.\.?/)[A-Za-z0-9_./=,:@+ -]*$`)

// matchPlain is plain.MatchString without the regexp machinery, which
// took a third of a render's layout time (TestMatchPlain keeps them equal).
func matchPlain(s string) bool {
	if s == "" {
		return false
	}
	rest := s[1:]
	switch c := s[0]; {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '/':
	case c == '.' && len(s) > 1 && s[1] == '/':
		rest = s[2:]
	case c == '.' && len(s) > 2 && s[1] == '.' && s[2] == '/':
		rest = s[3:]
	default:
		return false
	}
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '/', c == '=', c == ',', c == ':', c == '@', c == '+', c == ' ', c == '-':
		default:
			return false
		}
	}
	return true
}

// reserved holds no word longer than five letters (scalar relies on it).
var reserved = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true,
}

// maxKey is the longest key written: YAML limits implicit keys to 1024
// characters, and no Kubernetes field name or map key comes near it.
const maxKey = 1000

// keyScalar writes a mapping key, or refuses one YAML cannot hold as an
// implicit key.
func keyScalar(k string) (string, error) {
	if !utf8.ValidString(k) {
		return "", fmt.Errorf("key %s is not valid UTF-8", strconv.QuoteToASCII(k))
	}
	if k == "<<" {
		// Quoted, it is a plain string key to YAML, but kustomize drops it
		// as a merge key.
		return "", fmt.Errorf(`key "<<" is read as a YAML merge key by kustomize, which drops it`)
	}
	s := scalar(k)
	if len(s) > maxKey {
		return "", fmt.Errorf("key %.40q... is %d bytes long; YAML keys are limited to 1024 characters", k, len(k))
	}
	return s, nil
}

// scalar writes a string as a plain scalar when that reads back as the
// same string, else double-quoted. s must be valid UTF-8.
func scalar(s string) string {
	if matchPlain(s) && (len(s) > 5 || !reserved[strings.ToLower(s)]) &&
		!strings.Contains(s, ": ") && !strings.Contains(s, " #") &&
		!strings.HasSuffix(s, " ") && !strings.HasSuffix(s, ":") {
		return s
	}
	return doubleQuoted(s)
}

// doubleQuoted writes s as a YAML double-quoted scalar that every YAML
// 1.1 and 1.2 parser reads back as s: every character that is not
// printable (controls, C1, NEL, line and paragraph separators, BOM and
// other format characters, non-ASCII spaces) is escaped, and nothing
// that could fold or break a line is left raw.
func doubleQuoted(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	start := 0 // s[start:i] is written as it is
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		r, w := rune(c), 1
		if c >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(s[i:])
		}
		var esc string
		switch {
		case r == '"':
			esc = `\"`
		case r == '\\':
			esc = `\\`
		case r == '\n':
			esc = `\n`
		case r == '\t':
			esc = `\t`
		case r == '\r':
			esc = `\r`
		case r < 0x100 && !unicode.IsPrint(r):
			esc = fmt.Sprintf(`\x%02X`, r)
		case r < 0x10000 && !unicode.IsPrint(r):
			esc = fmt.Sprintf(`\u%04X`, r)
		case !unicode.IsPrint(r):
			esc = fmt.Sprintf(`\U%08X`, r)
		case r == utf8.RuneError && w == 1:
			esc = string(utf8.RuneError) // as ranging over s reads a broken byte
		default:
			i += w // printable: written as it is
			continue
		}
		b.WriteString(s[start:i])
		b.WriteString(esc)
		i += w
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
	return b.String()
}

// literalOK reports whether s can be written as a "|" block and read back
// unchanged: several lines, the first not empty and not indented, one
// final newline, only printable characters, and no trailing white space
// on any line (that would change the block's indentation or be lost).
func literalOK(s string) bool {
	if !strings.Contains(s, "\n") || !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") ||
		strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") || strings.HasPrefix(s, "\t") {
		return false
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && r != ' ' && !unicode.IsPrint(r) {
			return false
		}
	}
	for line := range strings.Lines(s) {
		if strings.TrimRight(line, " \t\n") != strings.TrimSuffix(line, "\n") {
			return false
		}
	}
	return true
}
