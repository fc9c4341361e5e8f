package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Pod network stand-in: every istiod runs on a pod address of its own, a
// /32 added to lo, so that the API server (and anything else) reaches it at
// the container ports, as on a pod network. EndpointSlices refuse loopback
// addresses, so 127.0.0.1 cannot be a pod address. The addresses come from
// 10.252.0.0/14, never one the fleet or the output mentions, and are added
// to the lo of the network namespace the harness runs in (netns.go), never
// to the machine's: they go away with the namespace.
type podNet struct {
	mu    sync.Mutex
	addrs []string
}

// alloc adds a free pod address to lo and returns it.
func (p *podNet) alloc(h *Harness) (string, error) {
	var last string
	for range 64 {
		a := fmt.Sprintf("10.%d.%d.%d", 252+rand.IntN(4), rand.IntN(256), 1+rand.IntN(254))
		if h.mentioned(a) || p.has(a) {
			continue
		}
		out, err := exec.Command("ip", "addr", "add", a+"/32", "dev", "lo").CombinedOutput()
		if err != nil {
			last = strings.TrimSpace(string(out))
			return "", fmt.Errorf("adding pod address %s to lo: %s %v", a, last, err)
		}
		p.mu.Lock()
		p.addrs = append(p.addrs, a)
		p.mu.Unlock()
		return a, nil
	}
	return "", fmt.Errorf("no free pod address in 10.252.0.0/14")
}

func (p *podNet) has(a string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.addrs, a)
}
