package fleet

import (
	"bytes"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// An Isolator evaluates untrusted input (fleet files in every format and
// Jsonnet extensions) somewhere its time, memory and stack are bounded,
// such as a child process with resource limits. Go cannot bound the
// memory or the stack of a goroutine, and a Go stack overflow is a fatal
// error, not a panic, so evaluating in this process can only be bounded by
// the process's own limits.
type Isolator interface {
	// Parse does what [ParseHere] does.
	Parse(filename string, src []byte) (*Fleet, error)
	// EvalJsonnet does what [EvalJsonnetHere] does.
	EvalJsonnet(dir string, jobs []JsonnetJob) ([]string, error)
}

var isolator Isolator

// SetIsolator makes [Parse], [Load] and [EvalJsonnet] evaluate through i;
// nil evaluates in this process. Call it before any evaluation starts.
func SetIsolator(i Isolator) { isolator = i }

// Indexed completes a Fleet decoded from JSON (as an [Isolator] returns
// it): cluster names and the sorted Clusters, and the directory of the
// fleet file.
func Indexed(f *Fleet, dir string) *Fleet {
	f.index()
	f.Dir = dir
	return f
}

// Limits of a plain document, which is parsed in this process.
const (
	plainSize   = 256 << 10 // bytes: about 1,700 clusters in YAML
	plainDepth  = 32        // nesting; a fleet needs about 8
	plainDigits = 32        // bytes of an unquoted scalar that may be a number
)

// Plain reports whether src, the fleet file filename, is a plain YAML or
// JSON document, which [Parse] evaluates in this process even with an
// [Isolator]: starting the isolated process would cost more than the
// evaluation. A plain document is at most 256 KiB and one YAML document
// nested at most 32 deep, with no anchors, aliases or tags and no
// unquoted scalar that may be a number with an exponent or of more than
// 32 bytes: what makes an
// evaluation's time or memory outgrow its input's size (a 50 KB mapping
// nested 10,000 deep takes a gigabyte) is absent. Only the YAML parser,
// linear and bounded, runs on a document before it is found plain. CUE
// and Jsonnet are programs and are always isolated.
func Plain(filename string, src []byte) bool {
	switch filepath.Ext(filename) {
	case ".yaml", ".yml", ".json":
	default:
		return false
	}
	if len(src) > plainSize {
		return false
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if dec.Decode(&doc) != nil || dec.Decode(new(yaml.Node)) == nil {
		return false // errors and streams are the isolated parser's to report
	}
	return plainNode(&doc, 0)
}

// quoted are the styles of scalars that are strings whatever they hold.
const quoted = yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

// numberLike reports whether an unquoted scalar may be read as a number
// by one of the parsers: it starts with a digit or a point, after an
// optional sign.
func numberLike(v string) bool {
	v = strings.TrimLeft(v, "+-")
	return v != "" && (v[0] >= '0' && v[0] <= '9' || v[0] == '.')
}

func plainNode(n *yaml.Node, depth int) bool {
	if depth > plainDepth || n.Kind == yaml.AliasNode || n.Anchor != "" || n.Style&yaml.TaggedStyle != 0 {
		return false
	}
	if n.Kind == yaml.ScalarNode && n.Style&quoted == 0 && numberLike(n.Value) &&
		(strings.ContainsAny(n.Value, "eE") || len(n.Value) > plainDigits) {
		return false
	}
	for _, c := range n.Content {
		if !plainNode(c, depth+1) {
			return false
		}
	}
	return true
}
