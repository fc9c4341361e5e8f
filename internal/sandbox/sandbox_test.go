package sandbox

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestChildFailure(t *testing.T) {
	l := Limits{Timeout: time.Second, Memory: 256 << 20, Stack: 64 << 20}
	died := errors.New("exit status 2")
	for _, tt := range []struct {
		stderr string
		rss    uint64
		want   string
	}{
		{"runtime: goroutine stack exceeds 67108864-byte limit\nfatal error: stack overflow", 0, "recursed too deeply (stack limit 64 MiB)"},
		{"fatal error: runtime: out of memory", 0, "memory limit of 256 MiB"},
		{"SIGSEGV: segmentation violation\nPC=0x0", 200 << 20, "memory limit of 256 MiB"},
		{"meshfleet evaluator: bad request\nmore", 10 << 20, "evaluation failed after 1s: meshfleet evaluator: bad request"},
		{"line\u2028forged\x1b[2J", 0, `evaluation failed after 1s: line\u2028forged\x1b[2J`},
	} {
		got := childFailure(died, tt.stderr, l, time.Second, tt.rss).Error()
		if !strings.Contains(got, tt.want) || strings.ContainsAny(got, "\n\u2028\x1b") {
			t.Errorf("childFailure(%q, rss %d) = %q, want one line containing %q", tt.stderr, tt.rss, got, tt.want)
		}
	}
}

func TestChildMainOnlyInTheChild(t *testing.T) {
	t.Setenv(envChild, "")
	if _, child := ChildMain([]string{"__evaluate"}, strings.NewReader("{}"), nil); child {
		t.Error("ChildMain served a request without " + envChild)
	}
	t.Setenv(envChild, "1")
	if _, child := ChildMain([]string{"render"}, strings.NewReader("{}"), nil); child {
		t.Error("ChildMain took over a command other than __evaluate")
	}
}

func TestNewReadsLimits(t *testing.T) {
	t.Setenv(envMode, "")
	t.Setenv(envTimeout, "5s")
	t.Setenv(envMemory, "300")
	iso, err := New()
	if err != nil || (supported && iso == nil) {
		t.Fatalf("New() = %v, %v", iso, err)
	}
	if i, ok := iso.(*Isolator); ok && (i.limits.Timeout != 5*time.Second || i.limits.Memory != 300<<20) {
		t.Errorf("limits = %+v", i.limits)
	}
	for _, bad := range [][2]string{{envTimeout, "soon"}, {envTimeout, "-1s"}, {envMemory, "1"}, {envMemory, "lots"}} {
		t.Setenv(envTimeout, "")
		t.Setenv(envMemory, "")
		t.Setenv(bad[0], bad[1])
		if _, err := New(); supported && err == nil {
			t.Errorf("New() with %s=%s: no error", bad[0], bad[1])
		}
	}
	t.Setenv(envMode, "off")
	if iso, _ := New(); iso != nil {
		t.Errorf("New() with %s=off = %v, want in-process evaluation", envMode, iso)
	}
}
