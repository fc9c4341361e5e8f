package overlays

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// parseStream reads a YAML stream of the shape the writer in yaml.go
// produces (comment lines, then "---" and one block-style mapping per
// document) into objects, as go.yaml.in/yaml/v3 decodes them into
// map[string]any. It is a fast path, not a YAML parser: it accepts only
// that narrow grammar and reports ok=false for anything else, and the
// caller then decodes the stream with yaml.v3 itself. Whenever it
// accepts, its result equals yaml.v3's (TestParseStreamMatchesYAMLv3).
func parseStream(b []byte) (docs []map[string]any, ok bool) {
	if !printable(b) {
		return nil, false
	}
	p := &streamParser{b: b, strs: map[string]string{}}
	for p.pos < len(b) && b[p.pos] == '#' {
		p.nextLine()
	}
	for p.pos < len(b) {
		if !p.isDocStart() {
			return nil, false
		}
		p.nextLine()
		m, ok := p.mapping(0, false)
		if !ok || len(m) == 0 {
			return nil, false
		}
		docs = append(docs, m)
	}
	return docs, true
}

type streamParser struct {
	b    []byte
	pos  int
	strs map[string]string // short strings seen, shared instead of allocated again
}

// str returns b as a string, the same string for the same short bytes:
// keys and most values repeat from object to object.
func (p *streamParser) str(b []byte) string {
	if len(b) > 64 {
		return string(b)
	}
	if s, ok := p.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	p.strs[s] = s
	return s
}

// line returns the rest of the current line, without its newline. Every
// line must end in a newline.
func (p *streamParser) line() ([]byte, bool) {
	i := bytes.IndexByte(p.b[p.pos:], '\n')
	if i < 0 {
		return nil, false
	}
	return p.b[p.pos : p.pos+i], true
}

func (p *streamParser) nextLine() {
	i := bytes.IndexByte(p.b[p.pos:], '\n')
	if i < 0 {
		p.pos = len(p.b)
		return
	}
	p.pos += i + 1
}

func (p *streamParser) isDocStart() bool {
	return bytes.HasPrefix(p.b[p.pos:], []byte("---\n"))
}

// indentOf returns the number of spaces the current line starts with, or
// -1 at the end of the input or of the document.
func (p *streamParser) indentOf() int {
	if p.pos >= len(p.b) || p.isDocStart() {
		return -1
	}
	n := 0
	for p.pos+n < len(p.b) && p.b[p.pos+n] == ' ' {
		n++
	}
	return n
}

// mapping reads a block mapping whose keys sit at column ind. With inline
// the first key starts at the current position (after "- ").
func (p *streamParser) mapping(ind int, inline bool) (map[string]any, bool) {
	m := map[string]any{}
	for first := true; ; first = false {
		if !first || !inline {
			n := p.indentOf()
			if n < ind {
				return m, true
			}
			if n != ind {
				return nil, false
			}
			p.pos += ind
		}
		rest, ok := p.line()
		if !ok {
			return nil, false
		}
		key, after, ok := mapKey(rest, p)
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; dup {
			return nil, false
		}
		var v any
		switch after := rest[after:]; {
		case len(after) == 0: // nested collection on the next lines
			p.nextLine()
			switch n := p.indentOf(); {
			case n == ind && p.seqItemAt(ind):
				v, ok = p.sequence(ind, false)
			case n == ind+2:
				v, ok = p.mapping(ind+2, false)
			default:
				return nil, false
			}
		case string(after) == " |":
			p.nextLine()
			v, ok = p.literal(ind + 2)
		case string(after) == " {}":
			v, ok = map[string]any{}, true
			p.nextLine()
		case string(after) == " []":
			v, ok = []any{}, true
			p.nextLine()
		case after[0] == ' ':
			v, ok = p.scalarValue(after[1:])
			p.nextLine()
		default:
			return nil, false
		}
		if !ok {
			return nil, false
		}
		m[key] = v
	}
}

func (p *streamParser) seqItemAt(ind int) bool {
	return bytes.HasPrefix(p.b[p.pos+ind:], []byte("- "))
}

// sequence reads a block sequence whose "- " sit at column ind.
func (p *streamParser) sequence(ind int, inline bool) ([]any, bool) {
	s := []any{}
	for first := true; ; first = false {
		if !first || !inline {
			n := p.indentOf()
			if n < ind || n == ind && !p.seqItemAt(ind) {
				return s, true
			}
			if n != ind {
				return nil, false
			}
			p.pos += ind
		}
		rest, ok := p.line()
		if !ok || !bytes.HasPrefix(rest, []byte("- ")) {
			return nil, false
		}
		p.pos += 2
		rest = rest[2:]
		var v any
		switch {
		case bytes.HasPrefix(rest, []byte("- ")):
			v, ok = p.sequence(ind+2, true)
		case string(rest) == "{}":
			v, ok = map[string]any{}, true
			p.nextLine()
		case string(rest) == "[]":
			v, ok = []any{}, true
			p.nextLine()
		case isMapEntry(rest):
			v, ok = p.mapping(ind+2, true)
		default:
			v, ok = p.scalarValue(rest)
			p.nextLine()
		}
		if !ok {
			return nil, false
		}
		s = append(s, v)
	}
}

// literal reads the lines of a "|" block scalar indented by ind: clip
// chomping, the indentation taken from a first line that is not empty and
// does not start with a further space.
func (p *streamParser) literal(ind int) (string, bool) {
	var sb []byte
	for first := true; ; first = false {
		if p.pos >= len(p.b) || p.isDocStart() {
			break
		}
		rest, ok := p.line()
		if !ok {
			return "", false
		}
		if len(rest) == 0 {
			if first {
				return "", false
			}
			sb = append(sb, '\n')
			p.nextLine()
			continue
		}
		n := 0
		for n < len(rest) && rest[n] == ' ' {
			n++
		}
		if n < ind {
			break
		}
		if first && n != ind || rest[len(rest)-1] == ' ' {
			return "", false
		}
		sb = append(sb, rest[ind:]...)
		sb = append(sb, '\n')
		p.nextLine()
	}
	// Clip chomping drops trailing empty lines; the writer never has any.
	if len(sb) == 0 || bytes.HasSuffix(sb, []byte("\n\n")) {
		return "", false
	}
	return string(sb), true
}

// isMapEntry reports whether a sequence item starts with a mapping key.
func isMapEntry(rest []byte) bool {
	_, _, ok := mapKey(rest, nil)
	return ok
}

// mapKey reads the key at the start of line and returns it with the
// offset just after its ':'. With p nil it only checks.
func mapKey(line []byte, p *streamParser) (key string, after int, ok bool) {
	if len(line) > 0 && line[0] == '"' {
		s, n, ok := quoted(line)
		if !ok || n > maxKey || n >= len(line) || line[n] != ':' || n+1 < len(line) && line[n+1] != ' ' {
			return "", 0, false
		}
		return s, n + 1, true
	}
	i := bytes.Index(line, []byte(": "))
	if i < 0 {
		if len(line) == 0 || line[len(line)-1] != ':' {
			return "", 0, false
		}
		i = len(line) - 1
	}
	k := line[:i]
	if len(k) > maxKey || !plainString(k) {
		return "", 0, false
	}
	if p == nil {
		return "", i + 1, true
	}
	return p.str(k), i + 1, true
}

// scalarValue reads a scalar that makes up the rest of a line.
func (p *streamParser) scalarValue(b []byte) (any, bool) {
	if len(b) == 0 {
		return nil, false
	}
	if b[0] == '"' {
		s, n, ok := quoted(b)
		return s, ok && n == len(b)
	}
	switch string(b) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	if isDecimal(b) {
		n, err := strconv.Atoi(string(b))
		return n, err == nil
	}
	if plainString(b) {
		return p.str(b), true
	}
	return nil, false
}

// isDecimal: 0, or an optional minus and digits without a leading zero.
func isDecimal(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || b[0] == '0' && len(b) > 1 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// plainString reports whether b is a plain scalar that yaml.v3 reads as
// exactly the string b: it starts with a letter, '_', '/' or "./", holds
// only characters that mean nothing in a block scalar, contains no ": "
// or " #", does not end in a space or ':', and is no word YAML 1.1 or 1.2
// reads as a boolean or null.
func plainString(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch c := b[0]; {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '/':
	case c == '.' && len(b) > 1 && b[1] == '/':
	default:
		return false
	}
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '/', c == '=', c == ',', c == '@', c == '+', c == '-':
		case c == ':':
			if i+1 < len(b) && b[i+1] == ' ' || i+1 == len(b) {
				return false
			}
		case c == ' ':
			if i+1 < len(b) && b[i+1] == '#' || i+1 == len(b) {
				return false
			}
		default:
			return false
		}
	}
	if len(b) <= 5 && yamlWords[string(bytes.ToLower(b))] {
		return false
	}
	return true
}

// yamlWords are the plain scalars YAML 1.1 or 1.2 reads as booleans or
// null, in lower case.
var yamlWords = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "true": true, "false": true,
	"on": true, "off": true, "null": true,
}

// quoted reads a double-quoted scalar at the start of b that uses only
// JSON's escapes, and returns it and the offset after the closing quote.
func quoted(b []byte) (string, int, bool) {
	var sb []byte
	for i := 1; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			if sb == nil {
				return string(b[1:i]), i + 1, true
			}
			return string(sb), i + 1, true
		case c != '\\':
			if sb != nil {
				sb = append(sb, c)
			}
			i++
			continue
		}
		if sb == nil {
			sb = append([]byte{}, b[1:i]...)
		}
		if i+1 >= len(b) {
			return "", 0, false
		}
		switch b[i+1] {
		case '"', '\\':
			sb = append(sb, b[i+1])
		case 'n':
			sb = append(sb, '\n')
		case 't':
			sb = append(sb, '\t')
		case 'r':
			sb = append(sb, '\r')
		case 'b':
			sb = append(sb, '\b')
		case 'f':
			sb = append(sb, '\f')
		case 'u':
			if i+6 > len(b) {
				return "", 0, false
			}
			r, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 32)
			if err != nil || r >= 0xD800 && r <= 0xDFFF || unprintable(rune(r)) {
				return "", 0, false
			}
			sb = utf8.AppendRune(sb, rune(r))
			i += 6
			continue
		default:
			return "", 0, false
		}
		i += 2
	}
	return "", 0, false
}

// printable reports whether b is UTF-8 that yaml.v3 reads without
// complaint and without line breaks other than '\n': printable
// characters, no tabs, carriage returns, NEL, LS, PS or byte order marks.
func printable(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < ' ' && c != '\n' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n <= 1,
			r < 0xA0, // C1 controls and NEL
			r == 0x2028, r == 0x2029, r == 0xFEFF,
			r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return false
		}
		i += n
	}
	return true
}
