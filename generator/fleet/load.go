package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueyaml "cuelang.org/go/encoding/yaml"
	yaml "go.yaml.in/yaml/v3"
)

// Load reads, validates and decodes the fleet file at path. Problems with
// the file's content are returned as [Errors].
func Load(path string) (*Fleet, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse validates and decodes a fleet file. The extension of filename
// picks the format (.yaml, .yml, .json, .cue or .jsonnet), and filename is
// what errors point into. Jsonnet imports resolve relative to filename.
func Parse(filename string, src []byte) (*Fleet, error) {
	ctx := cuecontext.New()
	data, err := build(ctx, filename, src)
	if err != nil {
		return nil, err
	}
	v, salvage, pruned, errs := validateSchema(ctx, filename, data)
	if len(errs) > 0 {
		// Judge what passed the schema by the rules too, so that one run
		// reports every problem.
		var f Fleet
		if b, err := json.Marshal(salvage); err == nil && json.Unmarshal(b, &f) == nil {
			f.index()
			f.Dir = filepath.Dir(filename)
			errs = append(errs, check(&f, &problems{filename: filename, data: data, pruned: pruned})...)
		}
		return nil, errs.withoutEchoes().sorted()
	}
	f := new(Fleet)
	if err := v.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: decoding validated fleet: %w", filename, err)
	}
	f.index()
	f.Dir = filepath.Dir(filename)
	f.filename, f.data = filename, data
	return f, check(f, &problems{filename: filename, data: data}).orNil()
}

// build turns the source into a CUE value whose positions point into the
// user's file.
func build(ctx *cue.Context, filename string, src []byte) (cue.Value, error) {
	switch ext := filepath.Ext(filename); ext {
	case ".yaml", ".yml", ".json":
		return buildYAML(ctx, filename, src)
	case ".cue":
		v := ctx.CompileBytes(src, cue.Filename(filename))
		if err := v.Err(); err != nil {
			return v, convert(filename, cue.Value{}, err)
		}
		return v, nil
	case ".jsonnet", ".libsonnet":
		out, err := evalJsonnet(filename, src)
		if err != nil {
			return cue.Value{}, err
		}
		return buildYAML(ctx, filename, out)
	default:
		return cue.Value{}, Errors{{Pos: Position{File: filename}, Msg: fmt.Sprintf("unknown fleet file format %q: want .yaml, .yml, .json, .cue or .jsonnet", ext)}}
	}
}

// buildYAML parses YAML or JSON. It first walks the document itself,
// because CUE merges duplicate keys silently and turns a stream of several
// documents into a list.
func buildYAML(ctx *cue.Context, filename string, src []byte) (cue.Value, error) {
	src, err := checkYAML(filename, src)
	if err != nil {
		return cue.Value{}, err
	}
	f, err := cueyaml.Extract(filename, src)
	if err != nil {
		return cue.Value{}, convert(filename, cue.Value{}, err)
	}
	v := ctx.BuildFile(f)
	if err := v.Err(); err != nil { // e.g. .nan, which CUE has no number for
		return v, convert(filename, v, err)
	}
	return v, nil
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
			for i, c := range n.Content {
				walk(c, append(path, fmt.Sprint(i)))
			}
		case yaml.MappingNode:
			seen := map[string]*yaml.Node{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				p := append(path[:len(path):len(path)], k.Value)
				if first, dup := seen[k.Value]; dup {
					errs = append(errs, &Error{
						Pos:  Position{filename, k.Line, k.Column},
						Path: strings.Join(p, "."),
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
