package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Pod network stand-in: every istiod runs on a pod address of its own, a
// /32 added to lo, so that the API server (and anything else) reaches it at
// the container ports, as on a pod network. EndpointSlices refuse loopback
// addresses, so 127.0.0.1 cannot be a pod address. The addresses come from
// 10.252.0.0/14, never one the fleet or the output mentions; `ip addr add`
// refuses an address lo already has, which makes the choice safe against
// other runs on this machine. Each address carries the label lo:mfc<pid> of
// the run that added it: it is removed at the end, and a later run removes
// those of runs that no longer exist (a run killed with SIGKILL).
//
// Adding addresses needs CAP_NET_ADMIN (root); without it the harness says
// so and stops.
type podNet struct {
	mu    sync.Mutex
	addrs []string
}

func podLabel(pid int) string { return "lo:mfc" + strconv.Itoa(pid) }

// alloc adds a free pod address to lo and returns it.
func (p *podNet) alloc(h *Harness) (string, error) {
	var last string
	for range 64 {
		a := fmt.Sprintf("10.%d.%d.%d", 252+rand.IntN(4), rand.IntN(256), 1+rand.IntN(254))
		if h.mentioned(a) {
			continue
		}
		out, err := exec.Command("ip", "addr", "add", a+"/32", "dev", "lo", "label", podLabel(os.Getpid())).CombinedOutput()
		if err != nil {
			last = strings.TrimSpace(string(out))
			if strings.Contains(last, "already") || strings.Contains(last, "File exists") {
				continue
			}
			return "", fmt.Errorf("adding pod address %s to lo (needs root: CAP_NET_ADMIN): %s %v", a, last, err)
		}
		p.mu.Lock()
		p.addrs = append(p.addrs, a)
		p.mu.Unlock()
		return a, nil
	}
	return "", fmt.Errorf("no free pod address in 10.252.0.0/14: %s", last)
}

// release removes every address this run added.
func (p *podNet) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.addrs {
		_ = exec.Command("ip", "addr", "del", a+"/32", "dev", "lo").Run()
	}
	p.addrs = nil
}

// collectStale removes the pod addresses of runs whose process is gone.
func collectStale() {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show", "dev", "lo").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		// 1: lo    inet 10.252.1.2/32 scope global lo:mfc123\ ...
		if len(f) < 4 || f[2] != "inet" {
			continue
		}
		for _, x := range f {
			pid, ok := strings.CutPrefix(strings.TrimSuffix(x, `\`), "lo:mfc")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(pid)
			if err != nil || n == os.Getpid() || syscall.Kill(n, 0) == nil {
				continue
			}
			_ = exec.Command("ip", "addr", "del", f[3], "dev", "lo").Run()
		}
	}
}
