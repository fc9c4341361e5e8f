package fleet

import "cuelang.org/go/cue"

// PatternWords says in words what a schema pattern accepts, or "".
func PatternWords(re string) string { return patterns[re] }

// WithoutSource returns a copy of f without the parsed file behind
// [Fleet.Pos], so that fleets loaded from different files compare equal.
func WithoutSource(f *Fleet) *Fleet {
	c := *f
	c.filename, c.data = "", cue.Value{}
	return &c
}
