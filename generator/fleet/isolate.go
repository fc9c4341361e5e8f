package fleet

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
