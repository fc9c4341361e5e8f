package cli

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressTo returns a function that shows on w how far verification
// has come ("meshfleet: 412/1000 overlays verified"), for renders that
// take more than about a second. It returns nil, which shows nothing,
// when w is not a terminal.
func progressTo(w io.Writer) func(done, total int) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	start := time.Now()
	var last time.Time
	return func(done, total int) {
		now := time.Now()
		if now.Sub(start) < time.Second || done < total && now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		if done == total {
			fmt.Fprint(f, "\r\x1b[K") // clear the line for what follows
			return
		}
		fmt.Fprintf(f, "\rmeshfleet: %d/%d overlays verified", done, total)
	}
}
