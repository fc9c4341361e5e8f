// Command etcd is etcd's own main (go.etcd.io/etcd/server/v3/etcdmain),
// at the version k8s.io/kubernetes pins, for hack/e2e.sh.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
