package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// The harness runs in a network namespace of its own: its etcds, API
// servers and istiods listen on 127.0.0.1 and on pod addresses of that
// namespace's lo (podnet.go), never on the machine's, and nothing it starts
// can reach outside. enterNetns re-executes the harness under `unshare
// --net` (same PID: unshare execs it, so a caller's kill by PID still
// reaches it) and, once inside, brings lo up. Creating the namespace needs
// root (CAP_SYS_ADMIN), as adding pod addresses does.
const netnsEnv = "MESHFLEET_CONVERGE_NETNS"

func enterNetns() error {
	if os.Getenv(netnsEnv) == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			return fmt.Errorf("bringing up lo in the harness's network namespace: %s %v", out, err)
		}
		return nil
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fmt.Errorf("the harness runs in a network namespace of its own and needs unshare(1): %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{"unshare", "--net", "--", self}, os.Args[1:]...)
	err = syscall.Exec(unshare, args, append(os.Environ(), netnsEnv+"=1"))
	return fmt.Errorf("unshare --net (needs root): %v", err)
}
