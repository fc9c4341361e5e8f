package fleet

import (
	"fmt"
	"maps"
	"slices"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
)

// CUE finds a struct's fields by a linear search (adt.nodeContext.getArc),
// so building and validating a struct of n fields takes n² steps: a fleet
// of 10,000 clusters spent most of its time there, and 60,000 labels took
// 12 s. The maps of the fleet that may legitimately grow large are
// therefore not built as one struct: their entries go into chunks of at
// most chunkSize fields, each built, validated and decoded on its own
// (the schema constrains every entry alike, so the chunks are
// independent), which keeps the work linear.
const chunkSize = 128

// largeMaps are the paths of the fleet's maps whose entries are chunked.
var largeMaps = [][]string{
	{"spec", "clusters"},
	{"metadata", "labels"},
	{"metadata", "annotations"},
}

// maxFields is the most fields any other mapping, and the most elements
// any sequence, may have: nothing in the schema comes near it, and CUE
// would spend quadratic time on a huge one before reporting it.
const maxFields = 1000

// document is the user's data as CUE values, with positions in the
// user's file.
type document struct {
	filename string
	main     cue.Value // everything, with the large maps emptied
	chunks   []chunk
	// where is the chunk that holds an entry of a large map, by map path
	// and key.
	where map[string]map[string]int
}

// chunk holds some entries of one large map.
type chunk struct {
	path  []string
	value cue.Value // a struct of the entries
}

// wholeDocument is a document without chunks, e.g. for a CUE file, which
// CUE evaluates as a whole.
func wholeDocument(filename string, v cue.Value) *document {
	return &document{filename: filename, main: v}
}

// splitDocument builds f as a document: the entries of the large maps
// are taken out of f and built in chunks.
func splitDocument(ctx *cue.Context, filename string, f *ast.File) (*document, error) {
	d := &document{filename: filename, where: map[string]map[string]int{}}
	for _, path := range largeMaps {
		st := findStruct(f.Decls, path)
		if st == nil || len(st.Elts) == 0 {
			continue
		}
		elts := st.Elts
		st.Elts = nil
		key := fmt.Sprint(path)
		d.where[key] = map[string]int{}
		for part := range slices.Chunk(elts, chunkSize) {
			v := ctx.BuildExpr(&ast.StructLit{Elts: part, Lbrace: st.Lbrace})
			if err := v.Err(); err != nil {
				return nil, convert(filename, d.locator(), nil, err)
			}
			for _, e := range part {
				if fd, ok := e.(*ast.Field); ok {
					if name, _, err := ast.LabelName(fd.Label); err == nil {
						d.where[key][name] = len(d.chunks)
					}
				}
			}
			d.chunks = append(d.chunks, chunk{path: path, value: v})
		}
	}
	d.main = ctx.BuildFile(f)
	if err := d.main.Err(); err != nil { // e.g. .nan, which CUE has no number for
		return nil, convert(filename, d.locator(), nil, err)
	}
	return d, nil
}

// findStruct returns the struct literal at path among decls.
func findStruct(decls []ast.Decl, path []string) *ast.StructLit {
	for _, d := range decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if name, _, err := ast.LabelName(fd.Label); err != nil || name != path[0] {
			continue
		}
		st, ok := fd.Value.(*ast.StructLit)
		if !ok {
			return nil
		}
		if len(path) == 1 {
			return st
		}
		return findStruct(st.Elts, path[1:])
	}
	return nil
}

// locator finds positions of field paths in the document.
type locator func(path []string, key bool) Position

func (d *document) locator() locator { return d.pos }

// pos returns where path is in the document: the start of its value, or
// of its key when key is set (see lookupPos).
func (d *document) pos(path []string, key bool) Position {
	for _, m := range largeMaps {
		if len(path) > len(m) && slices.Equal(path[:len(m)], m) {
			if i, ok := d.where[fmt.Sprint(m)][path[len(m)]]; ok {
				return lookupPos(d.filename, d.chunks[i].value, path[len(m):], key)
			}
		}
	}
	return lookupPos(d.filename, d.main, path, key)
}

// fields finds the positions of [PositionedFields].
func (d *document) fields() map[string]FieldPos {
	m := make(map[string]FieldPos, len(PositionedFields))
	for _, path := range PositionedFields {
		sels := make([]cue.Selector, len(path))
		for i, s := range path {
			sels[i] = cue.Str(s)
		}
		m[joinPath(path)] = FieldPos{Pos: d.pos(path, false), Written: d.main.LookupPath(cue.MakePath(sels...)).Exists()}
	}
	return m
}

// decode returns the document's data as Go values, the large maps' entries
// back in place.
func (d *document) decode() (any, bool) {
	var x any
	if err := d.main.Decode(&x); err != nil {
		return nil, false
	}
	for _, c := range d.chunks {
		var entries map[string]any
		if err := c.value.Decode(&entries); err != nil {
			return nil, false
		}
		m, ok := x.(map[string]any)
		for _, label := range c.path {
			if !ok {
				return nil, false
			}
			next, found := m[label].(map[string]any)
			if !found {
				next = map[string]any{}
				m[label] = next
			}
			m = next
		}
		maps.Copy(m, entries)
	}
	return x, true
}

// splitValue encodes Go data as the main value and chunks, as
// splitDocument builds a document, for validating it again. The values
// carry no positions: the original document's locator finds them.
func splitValue(ctx *cue.Context, x any) (cue.Value, []chunk) {
	var chunks []chunk
	var restore []func()
	if root, ok := x.(map[string]any); ok {
		for _, path := range largeMaps {
			parent := root
			for _, label := range path[:len(path)-1] {
				if parent, ok = parent[label].(map[string]any); !ok {
					break
				}
			}
			entries, ok := parent[path[len(path)-1]].(map[string]any)
			if !ok || len(entries) == 0 {
				continue
			}
			parent[path[len(path)-1]] = map[string]any{}
			for part := range slices.Chunk(slices.Sorted(maps.Keys(entries)), chunkSize) {
				m := make(map[string]any, len(part))
				for _, k := range part {
					m[k] = entries[k]
				}
				chunks = append(chunks, chunk{path: path, value: ctx.Encode(m)})
			}
			restore = append(restore, func() { parent[path[len(path)-1]] = entries })
		}
	}
	main := ctx.Encode(x)
	for _, r := range restore { // x stays whole
		r()
	}
	return main, chunks
}
