package overlays

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
			if i > 0 || !inSeq {
				b.WriteString(pad)
			}
			b.WriteString(scalar(k))
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
		return scalar(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case nil:
		return "null", nil
	}
	return "", fmt.Errorf("cannot write %T as YAML", v)
}

// plain matches strings that YAML reads back as the same string when
// written without quotes: they start with a letter, '/', '_' or "./", contain
// no ": " or " #", and are none of YAML 1.1's booleans or nulls.
var plain = regexp.MustCompile(`^([A-Za-z_/]|\./)[A-Za-z0-9_./=,:@+ -]*$`)

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

func scalar(s string) string {
	if matchPlain(s) && (len(s) > 5 || !reserved[strings.ToLower(s)]) &&
		!strings.Contains(s, ": ") && !strings.Contains(s, " #") &&
		!strings.HasSuffix(s, " ") && !strings.HasSuffix(s, ":") {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a JSON string is a valid YAML double-quoted scalar
	return strings.TrimSuffix(b.String(), "\n")
}

// literalOK reports whether s can be written as a "|" block and read back
// unchanged: several lines, one final newline, printable, and no line
// that starts with a space (that would change the block's indentation).
func literalOK(s string) bool {
	if !strings.Contains(s, "\n") || !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") || strings.HasPrefix(s, " ") {
		return false
	}
	for _, r := range s {
		if r != '\n' && (r < ' ' || r == 0x7f || r == '\uFEFF') {
			return false
		}
	}
	for line := range strings.Lines(s) {
		if strings.HasSuffix(strings.TrimSuffix(line, "\n"), " ") {
			return false
		}
	}
	return true
}
