// cri-pull pulls an image the way containerd's CRI plugin does for kubelet: the Go client's
// Pull with unpack and pkg/snapshotters.AppendInfoHandlerWrapper, which adds the
// containerd.io/snapshot/cri.* labels to every layer's Prepare. It prints the wall time.
//
// Usage: cri-pull -a <containerd socket> -n <namespace> -snapshotter <name> [-plain-http] REF
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/pkg/snapshotters"
	"github.com/containerd/containerd/remotes/docker"
)

func main() {
	address := flag.String("a", "/run/containerd/containerd.sock", "containerd socket")
	ns := flag.String("n", "k8s.io", "namespace")
	sn := flag.String("snapshotter", "overlayfs", "snapshotter")
	plain := flag.Bool("plain-http", false, "use plain HTTP to the registry")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: cri-pull [flags] REF")
		os.Exit(2)
	}
	ref := flag.Arg(0)
	client, err := containerd.New(*address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), *ns)
	resolver := docker.NewResolver(docker.ResolverOptions{PlainHTTP: *plain})
	start := time.Now()
	img, err := client.Pull(ctx, ref,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(*sn),
		containerd.WithResolver(resolver),
		containerd.WithImageHandlerWrapper(snapshotters.AppendInfoHandlerWrapper(ref)),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pull:", err)
		os.Exit(1)
	}
	fmt.Printf("pulled %s %s in %.3f s\n", img.Name(), img.Target().Digest, time.Since(start).Seconds())
}
