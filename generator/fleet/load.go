package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueyaml "cuelang.org/go/encoding/yaml"
	yaml "go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest fleet file meshfleet reads: about 90,000
// clusters in YAML. Larger inputs are refused before they are parsed.
const MaxFileSize = 16 << 20

// Load reads, validates and decodes the fleet file at path. Problems with
// the file's content are returned as [Errors]. Only regular files of at
// most [MaxFileSize] bytes are read: a FIFO, a device such as /dev/zero or
// a directory is refused.
func Load(path string) (*Fleet, error) {
	src, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// ReadFile reads a fleet or extension file: a regular file of at most
// [MaxFileSize] bytes. Anything else is refused without blocking on it.
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	fd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, Errors{{Pos: Position{File: path}, Msg: fmt.Sprintf("not a regular file (%s); refusing to read it", fileType(st.Mode()))}}
	}
	if st.Size() > MaxFileSize {
		return nil, Errors{{Pos: Position{File: path}, Msg: fmt.Sprintf("%d bytes is larger than the limit of %d", st.Size(), MaxFileSize)}}
	}
	src, err := io.ReadAll(io.LimitReader(fd, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > MaxFileSize { // it grew while we read it
		return nil, Errors{{Pos: Position{File: path}, Msg: fmt.Sprintf("larger than the limit of %d bytes", MaxFileSize)}}
	}
	return src, nil
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// Parse validates and decodes a fleet file. The extension of filename
// picks the format (.yaml, .yml, .json, .cue or .jsonnet), and filename is
// what errors point into. Jsonnet imports resolve relative to filename.
func Parse(filename string, src []byte) (*Fleet, error) {
	if isolator != nil && !Plain(filename, src) {
		return isolator.Parse(filename, src)
	}
	return ParseHere(filename, src)
}

// ParseHere is [Parse] in this process, whatever [SetIsolator] said. A
// panic in one of the parsers is returned as an error.
func ParseHere(filename string, src []byte) (f *Fleet, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, Errors{{Pos: Position{File: filename}, Msg: fmt.Sprintf("the parser failed on this input (%v); please report it", r)}}
		}
	}()
	if len(src) > MaxFileSize {
		return nil, Errors{{Pos: Position{File: filename}, Msg: fmt.Sprintf("%d bytes is larger than the limit of %d", len(src), MaxFileSize)}}
	}
	if !utf8.Valid(src) {
		return nil, Errors{invalidUTF8(filename, src)}
	}
	ctx := cuecontext.New()
	doc, err := build(ctx, filename, src)
	if err != nil {
		return nil, err
	}
	v, clusters, salvage, pruned, errs := validateSchema(ctx, doc)
	if len(errs) > 0 {
		// Judge what passed the schema by the rules too, so that one run
		// reports every problem.
		var f Fleet
		if b, err := json.Marshal(salvage); err == nil && json.Unmarshal(b, &f) == nil {
			f.index()
			f.Dir = filepath.Dir(filename)
			errs = append(errs, check(&f, &problems{filename: filename, locate: doc.locator(), pruned: pruned})...)
		}
		return nil, errs.withoutEchoes().sorted()
	}
	f = new(Fleet)
	if err := v.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: decoding validated fleet: %w", filename, err)
	}
	if len(clusters) > 0 && f.Spec.Clusters == nil {
		f.Spec.Clusters = make(map[string]*Cluster, len(clusters))
	}
	maps.Copy(f.Spec.Clusters, clusters)
	f.index()
	f.Dir = filepath.Dir(filename)
	f.fields = doc.fields()
	return f, check(f, &problems{filename: filename, locate: doc.locator()}).orNil()
}

// build turns the source into CUE values whose positions point into the
// user's file.
func build(ctx *cue.Context, filename string, src []byte) (*document, error) {
	switch ext := filepath.Ext(filename); ext {
	case ".yaml", ".yml", ".json":
		return buildYAML(ctx, filename, src)
	case ".cue":
		v := ctx.CompileBytes(src, cue.Filename(filename))
		if err := v.Err(); err != nil {
			return nil, convert(filename, nil, nil, err)
		}
		return wholeDocument(filename, v), nil
	case ".jsonnet", ".libsonnet":
		out, err := evalJsonnet(filename, src)
		if err != nil {
			return nil, err
		}
		return buildYAML(ctx, filename, out)
	default:
		return nil, Errors{{Pos: Position{File: filename}, Msg: fmt.Sprintf("unknown fleet file format %q: want .yaml, .yml, .json, .cue or .jsonnet", ext)}}
	}
}

// buildYAML parses YAML or JSON. It first walks the document itself,
// because CUE merges duplicate keys silently and turns a stream of several
// documents into a list.
func buildYAML(ctx *cue.Context, filename string, src []byte) (*document, error) {
	src, err := normalizeBreaks(filename, src)
	if err != nil {
		return nil, err
	}
	src, err = checkYAML(filename, src)
	if err != nil {
		return nil, err
	}
	f, err := cueyaml.Extract(filename, src)
	if err != nil {
		return nil, convert(filename, nil, nil, err)
	}
	return splitDocument(ctx, filename, f)
}

// normalizeBreaks turns CR LF and lone CR line breaks into LF, as YAML
// does when it reads them: CUE's YAML decoder counts lines by LF only and
// panics on the difference. The YAML parser also breaks lines at NEL, LS
// and PS (YAML 1.1), where YAML 1.2 and JSON see ordinary characters; in
// a JSON document (they can only be inside strings) they are escaped, in
// YAML they are refused: the two parsers would read different values.
func normalizeBreaks(filename string, src []byte) ([]byte, error) {
	if bytes.IndexByte(src, '\r') >= 0 {
		src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
		src = bytes.ReplaceAll(src, []byte("\r"), []byte("\n"))
	}
	for i, r := range string(src) {
		// YAML allows tab, LF and CR of the C0 controls, NEL of C1, and
		// neither DEL nor U+FFFE/U+FFFF; its parser says only "control
		// characters are not allowed", without a position.
		if r < ' ' && r != '\t' && r != '\n' || r == 0x7f || r >= 0x80 && r < 0xa0 && r != 0x85 || r == 0xfffe || r == 0xffff {
			return nil, Errors{{Pos: offsetPos(filename, src, i), Msg: fmt.Sprintf("control character %U is not allowed; write it escaped in a double-quoted string", r)}}
		}
	}
	if !bytes.ContainsAny(src, "\u0085\u2028\u2029") {
		return src, nil
	}
	if isJSON(filename) {
		src = bytes.ReplaceAll(src, []byte("\u0085"), []byte(`\u0085`))
		src = bytes.ReplaceAll(src, []byte("\u2028"), []byte(`\u2028`))
		return bytes.ReplaceAll(src, []byte("\u2029"), []byte(`\u2029`)), nil
	}
	i := bytes.IndexAny(src, "\u0085\u2028\u2029")
	r, _ := utf8.DecodeRune(src[i:])
	return nil, Errors{{Pos: offsetPos(filename, src, i), Msg: fmt.Sprintf("raw %U character: YAML parsers disagree on whether it breaks the line; write it escaped (\\u%04X) in a double-quoted string", r, r)}}
}

func isJSON(filename string) bool {
	switch filepath.Ext(filename) {
	case ".json", ".jsonnet", ".libsonnet":
		return true
	}
	return false
}

// offsetPos is the line and column (in characters) of byte offset i.
func offsetPos(filename string, src []byte, i int) Position {
	line := 1 + bytes.Count(src[:i], []byte("\n"))
	start := bytes.LastIndexByte(src[:i], '\n') + 1
	return Position{filename, line, 1 + utf8.RuneCount(src[start:i])}
}

func invalidUTF8(filename string, src []byte) *Error {
	i := 0
	for i < len(src) {
		r, n := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	return &Error{Pos: offsetPos(filename, src, i), Msg: "the file is not valid UTF-8"}
}

// checkYAML reports syntax errors, streams of several documents and
// duplicate keys with their positions. It returns src without trailing
// empty documents, which CUE would otherwise turn into a list.
func checkYAML(filename string, src []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, Errors{{Pos: Position{File: filename}, Msg: "the file is empty"}}
	} else if err != nil {
		return nil, Errors{yamlError(filename, src, err)}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" && root.Value == "" {
		return nil, Errors{{Pos: Position{File: filename}, Msg: "the file is empty"}}
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{Pos: Position{filename, root.Line, root.Column}, Msg: "a fleet file is a mapping with apiVersion, kind, metadata and spec"}}
	}
	trim := false
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, Errors{yamlError(filename, src, err)}
		}
		if c := next.Content; len(c) == 1 && c[0].Kind == yaml.ScalarNode && c[0].Tag == "!!null" && c[0].Value == "" {
			// An empty document, as after a trailing "---": cut it off.
			trim = true
			continue
		}
		return nil, Errors{{Pos: Position{filename, next.Line, next.Column}, Msg: "a fleet file holds one document; found a second one"}}
	}
	var errs Errors
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			if len(n.Content) > maxFields {
				errs = append(errs, &Error{
					Pos:  Position{filename, n.Line, n.Column},
					Path: joinPath(path),
					Msg:  fmt.Sprintf("%d elements; no list of a fleet has more than %d", len(n.Content), maxFields),
				})
				return
			}
			for i, c := range n.Content {
				walk(c, append(path, fmt.Sprint(i)))
			}
		case yaml.MappingNode:
			if len(n.Content)/2 > maxFields && !slices.ContainsFunc(largeMaps, func(m []string) bool { return slices.Equal(m, path) }) {
				errs = append(errs, &Error{
					Pos:  Position{filename, n.Line, n.Column},
					Path: joinPath(path),
					Msg:  fmt.Sprintf("%d fields; no part of a fleet has more than %d", len(n.Content)/2, maxFields),
				})
				return
			}
			seen := map[string]*yaml.Node{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := append(path[:len(path):len(path)], k.Value)
				if first, dup := seen[k.Value]; dup {
					errs = append(errs, &Error{
						Pos:  Position{filename, k.Line, k.Column},
						Path: joinPath(p),
						Msg:  fmt.Sprintf("duplicate key %q (first defined at line %d)", k.Value, first.Line),
					})
					continue
				}
				seen[k.Value] = k
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(root, nil)
	if trim {
		src = endOfDocument(src, root.Line)
	}
	return src, errs.orNil()
}

// endOfDocument returns src up to the first document marker ("---" or
// "...") after line n, where the first document's content starts.
func endOfDocument(src []byte, n int) []byte {
	offset, line := 0, 1
	for l := range strings.Lines(string(src)) {
		if line > n && (strings.HasPrefix(l, "---") || strings.HasPrefix(l, "...")) {
			return src[:offset]
		}
		offset += len(l)
		line++
	}
	return src
}

// yamlError turns a YAML parser error ("yaml: line 3: did not find …")
// into a positioned Error that names the line really at fault.
func yamlError(filename string, src []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
	}
	return syntaxError(filename, src, line, msg)
}

// evalJsonnet evaluates a Jsonnet fleet file to JSON. Jsonnet's errors
// are already positioned in the Jsonnet source and are returned as they
// are. Positions in later errors point into the evaluated JSON, which is
// what `jsonnet FILE` prints.
func evalJsonnet(filename string, src []byte) ([]byte, error) {
	vm, err := JsonnetVM(filepath.Dir(filename))
	if err != nil {
		return nil, err
	}
	out, err := vm.EvaluateAnonymousSnippet(filename, string(src))
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(err.Error()))
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		return nil, Errors{{Pos: Position{File: filename}, Msg: "a Jsonnet fleet file must evaluate to an object"}}
	}
	return []byte(out), nil
}
