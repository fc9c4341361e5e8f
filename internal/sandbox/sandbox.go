// Package sandbox evaluates untrusted input (fleet files and Jsonnet
// extensions; small plain YAML and JSON fleet files, see [fleet.Plain],
// are parsed in-process) in a child process of meshfleet itself, under a time limit
// and resource limits (address space, data segment, CPU time, Go stack):
// Go cannot bound the memory or stack of a goroutine, and a Go stack
// overflow or an out-of-memory condition is a fatal error that no recover
// catches. The child runs the same code in-process ([fleet.ParseHere],
// [fleet.EvalJsonnetHere]) and answers with JSON on its stdout; whatever
// kills it becomes a clear error and exit code 1 in the parent.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// Environment variables. MESHFLEET_SANDBOX=off evaluates in-process
// (trusted input only).
const (
	envChild   = "MESHFLEET_SANDBOX_CHILD"
	envMode    = "MESHFLEET_SANDBOX"
	envTimeout = "MESHFLEET_EVAL_TIMEOUT" // a Go duration, default 60s
	envMemory  = "MESHFLEET_EVAL_MEMORY"  // MiB, default 2048
)

// Limits bound one evaluation.
type Limits struct {
	Timeout time.Duration // wall clock; the child is killed after it
	Memory  uint64        // bytes of heap (RLIMIT_DATA, and the Go memory limit)
	Stack   int           // bytes of Go stack per goroutine
}

// DefaultLimits are generous for any real fleet: a 10,000-cluster fleet
// validates in a few seconds and a few hundred MiB.
var DefaultLimits = Limits{Timeout: 60 * time.Second, Memory: 2 << 30, Stack: 256 << 20}

// maxAnswer bounds what the parent reads from the child.
const maxAnswer = 2*fleet.MaxJsonnetOutput + 4*fleet.MaxFileSize

// Isolator runs evaluations in child processes. It implements
// [fleet.Isolator].
type Isolator struct {
	exe    string
	limits Limits
}

// New returns an Isolator that runs this executable, with limits taken
// from the environment, or nil when MESHFLEET_SANDBOX=off or the
// executable cannot be found (then evaluation happens in-process).
func New() (fleet.Isolator, error) {
	if os.Getenv(envMode) == "off" || !supported {
		return nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil
	}
	l := DefaultLimits
	if s := os.Getenv(envTimeout); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 60s", envTimeout, s)
		}
		l.Timeout = d
	}
	if s := os.Getenv(envMemory); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n < 64 {
			return nil, fmt.Errorf("%s=%q: want a number of MiB, at least 64", envMemory, s)
		}
		l.Memory = n << 20
	}
	return &Isolator{exe: exe, limits: l}, nil
}

type request struct {
	Op       string             `json:"op"` // "parse" or "jsonnet"
	Filename string             `json:"filename,omitempty"`
	Src      []byte             `json:"src,omitempty"`
	Dir      string             `json:"dir,omitempty"`
	Jobs     []fleet.JsonnetJob `json:"jobs,omitempty"`
	Limits   Limits             `json:"limits"`
}

type answer struct {
	Fleet        *fleet.Fleet              `json:"fleet,omitempty"`
	Dir          string                    `json:"dir,omitempty"`
	Fields       map[string]fleet.FieldPos `json:"fields,omitempty"` // see fleet.PositionedFields
	Errors       fleet.Errors              `json:"errors,omitempty"`
	JsonnetError *fleet.JsonnetError       `json:"jsonnetError,omitempty"`
	Error        string                    `json:"error,omitempty"`
	Outs         []string                  `json:"outs,omitempty"`
}

// Parse implements [fleet.Isolator].
func (i *Isolator) Parse(filename string, src []byte) (*fleet.Fleet, error) {
	a, err := i.run(request{Op: "parse", Filename: filename, Src: src})
	if err != nil {
		return nil, fleet.Errors{{Pos: fleet.Position{File: filename}, Msg: err.Error()}}
	}
	if a.Errors != nil {
		if a.Fleet == nil {
			return nil, a.Errors
		}
	} else if a.Error != "" {
		return nil, errors.New(a.Error)
	}
	if a.Fleet == nil {
		return nil, fleet.Errors{{Pos: fleet.Position{File: filename}, Msg: "the evaluator returned no fleet"}}
	}
	f := fleet.Indexed(a.Fleet, a.Dir)
	f.SetFields(a.Fields)
	if a.Errors != nil {
		return f, a.Errors
	}
	return f, nil
}

// EvalJsonnet implements [fleet.Isolator].
func (i *Isolator) EvalJsonnet(dir string, jobs []fleet.JsonnetJob) ([]string, error) {
	a, err := i.run(request{Op: "jsonnet", Dir: dir, Jobs: jobs})
	if err != nil {
		files := map[string]bool{}
		var names []string
		for _, j := range jobs {
			if !files[j.File] {
				files[j.File] = true
				names = append(names, fleet.Quote(j.File))
			}
		}
		return nil, fmt.Errorf("evaluating the extensions %s: %w", strings.Join(names, ", "), err)
	}
	switch {
	case a.JsonnetError != nil:
		return nil, a.JsonnetError
	case a.Error != "":
		return nil, errors.New(a.Error)
	case len(a.Outs) != len(jobs):
		return nil, fmt.Errorf("the evaluator returned %d results for %d extension runs", len(a.Outs), len(jobs))
	}
	return a.Outs, nil
}

// run starts the child, hands it the request and reads its answer. The
// error, if any, says which limit the evaluation hit.
func (i *Isolator) run(req request) (*answer, error) {
	req.Limits = i.limits
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), i.limits.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, i.exe, "__evaluate")
	cmd.Args[0] = "meshfleet" // what the binary (or a test binary standing in for it) dispatches on
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr capped
	out.max, stderr.max = maxAnswer, 64<<10
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = time.Second
	configure(cmd)
	start := time.Now()
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("evaluation took longer than the limit of %s; refusing this input (%s raises the limit)", i.limits.Timeout, envTimeout)
	case out.over:
		return nil, fmt.Errorf("evaluation produced more than %d bytes; refusing this input", maxAnswer)
	case err != nil:
		return nil, childFailure(err, stderr.String(), i.limits, time.Since(start), peakRSS(cmd.ProcessState))
	}
	var a answer
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		return nil, fmt.Errorf("evaluator answered badly: %v", err)
	}
	return &a, nil
}

// childFailure explains why the child died.
func childFailure(err error, stderr string, l Limits, took time.Duration, rss uint64) error {
	switch {
	case strings.Contains(stderr, "stack exceeds") || strings.Contains(stderr, "stack overflow"):
		return fmt.Errorf("evaluation recursed too deeply (stack limit %d MiB); refusing this input", l.Stack>>20)
	// The Go runtime does not always notice a failed allocation and may
	// crash elsewhere (a SIGSEGV in the garbage collector); a child that
	// died after using half its memory limit is taken to have hit it.
	case strings.Contains(stderr, "out of memory") || strings.Contains(stderr, "cannot allocate memory") || rss >= l.Memory/2:
		return fmt.Errorf("evaluation needed more than the memory limit of %d MiB; refusing this input (%s raises the limit)", l.Memory>>20, envMemory)
	case killedBy(err, "cpu time limit exceeded"):
		return fmt.Errorf("evaluation used more CPU time than the limit of %s; refusing this input", cpuLimit(l))
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if first == "" {
		first = err.Error()
	}
	return fmt.Errorf("evaluation failed after %s: %s", took.Round(time.Millisecond), fleet.Escape(first))
}

func killedBy(err error, signal string) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && strings.Contains(ee.String(), signal)
}

func cpuLimit(l Limits) time.Duration { return 2*l.Timeout + time.Second }

// capped is a buffer that stops growing at max bytes.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if c.Len()+len(p) > c.max {
		c.over = true
		return 0, io.ErrShortWrite
	}
	return c.Buffer.Write(p)
}

// ChildMain serves one evaluation if this process is a sandbox child,
// and reports whether it was one; the caller exits with code.
func ChildMain(args []string, stdin io.Reader, stdout io.Writer) (code int, child bool) {
	if os.Getenv(envChild) != "1" || len(args) != 1 || args[0] != "__evaluate" {
		return 0, false
	}
	var req request
	if err := json.NewDecoder(io.LimitReader(stdin, maxAnswer)).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "meshfleet evaluator: bad request:", err)
		return 3, true
	}
	if err := limit(req.Limits); err != nil {
		fmt.Fprintln(os.Stderr, "meshfleet evaluator: cannot set limits:", err)
		return 3, true
	}
	var a answer
	switch req.Op {
	case "parse":
		f, err := fleet.ParseHere(req.Filename, req.Src)
		var es fleet.Errors
		switch {
		case errors.As(err, &es):
			a.Errors = es
		case err != nil:
			a.Error = err.Error()
		}
		if f != nil {
			a.Fleet, a.Dir, a.Fields = f, f.Dir, f.Fields()
		}
	case "jsonnet":
		outs, err := fleet.EvalJsonnetHere(req.Dir, req.Jobs)
		var je *fleet.JsonnetError
		switch {
		case errors.As(err, &je):
			a.JsonnetError = je
		case err != nil:
			a.Error = err.Error()
		}
		a.Outs = outs
	default:
		fmt.Fprintln(os.Stderr, "meshfleet evaluator: unknown op", req.Op)
		return 3, true
	}
	if err := json.NewEncoder(stdout).Encode(a); err != nil {
		return 3, true
	}
	return 0, true
}
