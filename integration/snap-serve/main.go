// snap-serve serves one of containerd's own snapshotters over the proxy-plugin Snapshots API,
// and with -content its local content store over the Content API, on a unix socket, with no
// containerd (and so no metadata layer) in front: strata-bench's "served directly" baseline,
// the same APIs strata-proxy serves.
//
// Usage: snap-serve -snapshotter overlayfs|native|none -root DIR -address SOCK
// [-content DIR] [-async-remove=false]
//
// The overlay snapshotter is built as containerd's plugin builds it (asynchronous remove:
// directories are deleted by Cleanup, which containerd's GC calls); -async-remove=false
// deletes them inside Remove.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/content/local"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/services/content/contentserver"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/native"
	"github.com/containerd/containerd/snapshots/overlay"
	"google.golang.org/grpc"
)

func main() {
	kind := flag.String("snapshotter", "overlayfs", "overlayfs, native or none")
	contentDir := flag.String("content", "", "also serve containerd's local content store in this directory")
	root := flag.String("root", "", "the snapshotter's root directory")
	address := flag.String("address", "", "the unix socket to serve on")
	async := flag.Bool("async-remove", true, "overlayfs: delete directories in Cleanup, as containerd's plugin does")
	flag.Parse()
	if *root == "" || *address == "" {
		fmt.Fprintln(os.Stderr, "usage: snap-serve -snapshotter overlayfs|native -root DIR -address SOCK")
		os.Exit(2)
	}
	var sn snapshots.Snapshotter
	var err error
	switch *kind {
	case "overlayfs":
		var opts []overlay.Opt
		if *async {
			opts = append(opts, overlay.AsynchronousRemove)
		}
		sn, err = overlay.NewSnapshotter(*root, opts...)
	case "native":
		sn, err = native.NewSnapshotter(*root)
	case "none":
	default:
		err = fmt.Errorf("unknown snapshotter %q", *kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapshotter:", err)
		os.Exit(1)
	}
	if sn != nil {
		defer sn.Close()
	}
	l, err := net.Listen("unix", *address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	rpc := grpc.NewServer()
	if sn != nil {
		snapshotsapi.RegisterSnapshotsServer(rpc, snapshotservice.FromSnapshotter(sn))
	}
	if *contentDir != "" {
		cs, err := local.NewStore(*contentDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "content store:", err)
			os.Exit(1)
		}
		contentapi.RegisterContentServer(rpc, contentserver.New(cs))
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		rpc.GracefulStop()
	}()
	if err := rpc.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}
