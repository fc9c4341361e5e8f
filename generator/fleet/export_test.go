package fleet

// PatternWords says in words what a schema pattern accepts, or "".
func PatternWords(re string) string { return patterns[re] }

// WithoutSource returns a copy of f without the positions behind
// [Fleet.Pos], so that fleets loaded from different files compare equal.
func WithoutSource(f *Fleet) *Fleet {
	c := *f
	c.fields = nil
	return &c
}
