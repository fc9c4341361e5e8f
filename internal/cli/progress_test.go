package cli

import (
	"bytes"
	"os"
	"testing"
)

// TestProgressQuietOffTerminal: progress shows only on a terminal, so
// pipes, files and CI logs get none.
func TestProgressQuietOffTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if progressTo(&bytes.Buffer{}) != nil || progressTo(w) != nil {
		t.Error("progress on something that is not a terminal")
	}
}
