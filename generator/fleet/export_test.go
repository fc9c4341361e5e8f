package fleet

// PatternWords says in words what a schema pattern accepts, or "".
func PatternWords(re string) string { return patterns[re] }
