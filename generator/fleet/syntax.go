package fleet

import (
	"fmt"
	"strings"
)

// syntaxError words a YAML parser error. The parser often reports an
// indentation mistake at the start of the enclosing block ("line 10: did
// not find expected key" for a key on line 14 that is one space out), and
// a tab as "found character that cannot start any token": find the line
// that is really wrong and say what is wrong with it.
func syntaxError(filename string, src []byte, line int, msg string) *Error {
	lines := strings.Split(string(src), "\n")
	if l, c, ok := firstTab(lines); ok && (strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "expected key") || strings.Contains(msg, "not allowed in this context")) {
		return &Error{Pos: Position{filename, l, c}, Msg: "a tab character: YAML indents with spaces only"}
	}
	if indentationMistake(msg) {
		if l, c, hint, ok := misindented(lines); ok {
			return &Error{Pos: Position{filename, l, c}, Msg: hint}
		}
	}
	return &Error{Pos: Position{File: filename, Line: line}, Msg: msg}
}

func indentationMistake(msg string) bool {
	for _, m := range []string{"did not find expected key", "mapping values are not allowed", "did not find expected '-' indicator", "block sequence entries are not allowed", "did not find expected <document start>"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// firstTab finds a tab in a line's indentation, or between a key's colon
// and its value: the places where YAML does not allow one.
func firstTab(lines []string) (line, col int, ok bool) {
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, "\t") {
			return i + 1, len(l) - len(trimmed) + 1, true
		}
	}
	return 0, 0, false
}

// misindented walks the block structure of a YAML document by its
// indentation and returns the first line that fits no enclosing block:
// indented deeper than a line that already has its value, or dedented to
// a column no open block starts at. Flow collections, block scalars and
// quoted strings spanning lines are stepped over.
func misindented(lines []string) (line, col int, hint string, ok bool) {
	stack := []int{0} // indentation of the open blocks, innermost last
	opens := false    // the previous line ends in a key with no value yet
	prev := 0
	scalar := -1 // inside a block scalar whose key is at this indentation
	for i, raw := range lines {
		text := strings.TrimRight(raw, " \r")
		content := strings.TrimLeft(text, " ")
		indent := len(text) - len(content)
		if content == "" || strings.HasPrefix(content, "#") || strings.HasPrefix(content, "---") || strings.HasPrefix(content, "...") {
			continue
		}
		if scalar >= 0 {
			if indent > scalar {
				continue
			}
			scalar = -1
		}
		top := stack[len(stack)-1]
		switch {
		case indent > top && opens:
			stack = append(stack, indent)
		case indent > top:
			return i + 1, indent + 1, fmt.Sprintf("indented deeper than line %d, which already has a value: check the indentation of lines %d and %d", prev, prev, i+1), true
		case indent < top:
			for len(stack) > 1 && stack[len(stack)-1] > indent {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1] != indent {
				return i + 1, indent + 1, fmt.Sprintf("indented by %d spaces, which lines up with no enclosing block (%s): check the indentation", indent, columns(stack, top)), true
			}
		}
		// A sequence entry's content is a block of its own, two columns in.
		item := content
		for strings.HasPrefix(item, "- ") || item == "-" {
			item = strings.TrimLeft(strings.TrimPrefix(item, "-"), " ")
			stack = append(stack, len(text)-len(item))
			if item == "" {
				stack = stack[:len(stack)-1]
			}
		}
		value := valueOf(item)
		opens = item == "" || (value == "" && strings.HasSuffix(stripComment(item), ":"))
		if strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">") {
			scalar = indent
		}
		if strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{") || strings.HasPrefix(value, `"`) || strings.HasPrefix(value, "'") {
			if !balanced(value) {
				return 0, 0, "", false // spans lines: too subtle for this walk
			}
		}
		prev = i + 1
	}
	return 0, 0, "", false
}

// columns lists the indentations a dedented line may take.
func columns(stack []int, top int) string {
	var cs []string
	for _, s := range append(stack, top) {
		cs = append(cs, fmt.Sprint(s))
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return "blocks here start at " + strings.Join(out, ", ") + " spaces"
}

// valueOf is what follows "key:" on a line, or "" for a key alone.
func valueOf(item string) string {
	s := stripComment(item)
	if i := strings.Index(s, ": "); i >= 0 && !strings.HasPrefix(s, `"`) && !strings.HasPrefix(s, "'") {
		return strings.TrimSpace(s[i+2:])
	}
	if strings.HasSuffix(s, ":") {
		return ""
	}
	return s
}

func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// balanced reports whether a flow value or quoted string ends on its line.
func balanced(v string) bool {
	depth, quote := 0, rune(0)
	for _, r := range v {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '[' || r == '{':
			depth++
		case r == ']' || r == '}':
			depth--
		}
	}
	return depth == 0 && quote == 0
}
