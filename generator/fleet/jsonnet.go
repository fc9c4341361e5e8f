package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
)

// Limits of Jsonnet evaluation in this process. The Go stack and the
// memory are bounded only by the process (see [Isolator]).
const (
	// jsonnetMaxStack is the deepest Jsonnet call stack (go-jsonnet's
	// default is 500).
	jsonnetMaxStack = 500
	// MaxJsonnetOutput is the most JSON one evaluation may produce.
	MaxJsonnetOutput = 64 << 20
)

// JsonnetVM returns a Jsonnet VM whose imports resolve relative to the
// importing file and may not leave dir, the fleet file's directory tree.
// Its errors are single lines, FILE:LINE:COL: message. VMs are not safe
// for concurrent use.
func JsonnetVM(dir string) (*jsonnet.VM, error) {
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, err
	}
	vm := jsonnet.MakeVM()
	vm.MaxStack = jsonnetMaxStack
	vm.ErrorFormatter = jsonnetErrorFormatter{}
	vm.Importer(&confinedImporter{root: root, shown: dir, cache: map[string]jsonnet.Contents{}})
	return vm, nil
}

// JsonnetJob is one evaluation of a Jsonnet file with top-level arguments.
type JsonnetJob struct {
	File    string            `json:"file"`    // relative to the directory given to EvalJsonnet
	TLAVars map[string]string `json:"tlaVars"` // string arguments
	TLACode map[string]string `json:"tlaCode"` // arguments as Jsonnet code (JSON)
}

// EvalJsonnet evaluates each job in dir, with imports confined to dir,
// and returns their JSON outputs in order. Through an [Isolator] when one
// is set.
func EvalJsonnet(dir string, jobs []JsonnetJob) ([]string, error) {
	if isolator != nil {
		return isolator.EvalJsonnet(dir, jobs)
	}
	return EvalJsonnetHere(dir, jobs)
}

// EvalJsonnetHere is [EvalJsonnet] in this process.
func EvalJsonnetHere(dir string, jobs []JsonnetJob) (outs []string, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, fmt.Errorf("jsonnet evaluation failed: %v", r)
		}
	}()
	vm, err := JsonnetVM(dir)
	if err != nil {
		return nil, err
	}
	total := 0
	for i, j := range jobs {
		vm.TLAReset()
		for k, v := range j.TLAVars {
			vm.TLAVar(k, v)
		}
		for k, v := range j.TLACode {
			vm.TLACode(k, v)
		}
		out, err := vm.EvaluateFile(j.File)
		if err != nil {
			return nil, &JsonnetError{Job: i, Msg: strings.TrimSpace(err.Error())}
		}
		if total += len(out); total > MaxJsonnetOutput {
			return nil, &JsonnetError{Job: i, Msg: fmt.Sprintf("%s: the output is larger than the limit of %d bytes", Quote(j.File), MaxJsonnetOutput)}
		}
		outs = append(outs, out)
	}
	return outs, nil
}

// jsonnetErrorFormatter formats Jsonnet errors as one line,
// FILE:LINE:COL: message, with the message's control characters escaped:
// a string the Jsonnet code made cannot forge more lines.
type jsonnetErrorFormatter struct{}

func (jsonnetErrorFormatter) SetMaxStackTraceSize(int)                 {}
func (jsonnetErrorFormatter) SetColorFormatter(jsonnet.ColorFormatter) {}

func (jsonnetErrorFormatter) Format(err error) string {
	var loc ast.LocationRange
	var msg string
	switch e := err.(type) {
	case jsonnet.RuntimeError:
		msg = e.Msg
		for _, f := range e.StackTrace { // innermost last
			if f.Loc.IsSet() {
				loc = f.Loc
			}
		}
	case interface{ Loc() ast.LocationRange }: // a static (syntax) error
		loc = e.Loc()
		msg = err.Error()
		if loc.IsSet() {
			msg = strings.TrimPrefix(msg, loc.String()+" ")
		}
	default:
		msg = err.Error()
	}
	if !loc.IsSet() {
		return Escape(msg)
	}
	file := loc.FileName
	if loc.File != nil && loc.File.DiagnosticFileName != "" {
		file = string(loc.File.DiagnosticFileName)
	}
	return fmt.Sprintf("%s:%d:%d: %s", Escape(file), loc.Begin.Line, loc.Begin.Column, Escape(msg))
}

// confinedImporter reads imports from files under root only.
type confinedImporter struct {
	root  string // absolute, symlinks resolved
	shown string // root as the user named it, for errors
	cache map[string]jsonnet.Contents
}

func (i *confinedImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	// Imports are relative to the importing file; a snippet's are
	// relative to the fleet's directory.
	target := importedPath
	if !filepath.IsAbs(importedPath) {
		from := i.shown
		if importedFrom != "" {
			from = filepath.Dir(importedFrom)
		}
		target = filepath.Join(from, importedPath)
	}
	if c, ok := i.cache[target]; ok {
		return c, target, nil
	}
	abs, err := filepath.Abs(target)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %s: %w", Quote(importedPath), unwrapPath(err))
	}
	rel, err := filepath.Rel(i.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return jsonnet.Contents{}, "", fmt.Errorf("import %s: %s is outside %s, the fleet file's directory", Quote(importedPath), Quote(target), Quote(i.shown))
	}
	// Read through an os.Root, so that a link swapped in since the check
	// above still cannot lead out, and only regular files: a named pipe
	// would block the import forever.
	root, err := os.OpenRoot(i.root)
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %s: %w", Quote(importedPath), unwrapPath(err))
	}
	defer root.Close()
	b, err := readRegular(root, rel)
	if err != nil {
		return jsonnet.Contents{}, "", fmt.Errorf("import %s: %w", Quote(importedPath), unwrapPath(err))
	}
	c := jsonnet.MakeContentsRaw(b)
	i.cache[target] = c
	return c, target, nil
}

// unwrapPath drops the path from a *fs.PathError: the caller names it.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var es Errors
	if errors.As(err, &es) && len(es) > 0 {
		return errors.New(es[0].Msg)
	}
	return err
}

// JsonnetError is a failed evaluation of one of the jobs given to
// [EvalJsonnet].
type JsonnetError struct {
	Job int    // index in the jobs
	Msg string // one line, FILE:LINE:COL: message where known
}

func (e *JsonnetError) Error() string { return e.Msg }
