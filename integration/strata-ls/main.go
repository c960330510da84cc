// strata-ls lists what a strata-proxy socket holds, through containerd's own
// proxy clients (the same code path containerd's GC uses, no namespace header).
//
// Usage:
//
//	strata-ls -a SOCKET [-wait 10s] [-n NAMESPACE] [-snapshotter NAME]...
//
// With -n every call carries that containerd-namespace header, as containerd 2.x's proxy
// clients send it (the proxy socket must show the same flat view whatever the header says).
//
// Output, one item per line:
//
//	blob <digest> <size>
//	ingest <ref>
//	snapshot <snapshotter> <kind> <name> parent=<parent>
//
// With -wait it first retries until the socket answers a content List.
// Exit status 1 on any RPC error (after the wait, if any).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/content"
	contentproxy "github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	snapshotproxy "github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"
)

type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func dial(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	// Exactly like containerd dials a proxy plugin: a "unix://" target (a bare
	// path would become the HTTP/2 :authority, which the server rejects).
	return grpc.DialContext(ctx, dialer.DialAddress(addr), grpc.WithInsecure(),
		grpc.WithContextDialer(dialer.ContextDialer), grpc.WithBlock())
}

func listBlobs(ctx context.Context, cs content.Store) ([]string, error) {
	var out []string
	err := cs.Walk(ctx, func(i content.Info) error {
		out = append(out, fmt.Sprintf("blob %s %d", i.Digest, i.Size))
		return nil
	})
	return out, err
}

func run(ctx context.Context, addr string, wait time.Duration, sns []string) error {
	deadline := time.Now().Add(wait)
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := dial(dctx, addr)
		cancel()
		if err == nil {
			cs := contentproxy.NewContentStore(contentapi.NewContentClient(conn))
			blobs, lerr := listBlobs(ctx, cs)
			if lerr == nil {
				defer conn.Close()
				return print(ctx, conn, cs, blobs, sns)
			}
			conn.Close()
			err = lerr
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func print(ctx context.Context, conn *grpc.ClientConn, cs content.Store, blobs []string, sns []string) error {
	for _, b := range blobs {
		fmt.Println(b)
	}
	sts, err := cs.ListStatuses(ctx)
	if err != nil {
		return fmt.Errorf("list statuses: %w", err)
	}
	for _, s := range sts {
		fmt.Printf("ingest %s\n", s.Ref)
	}
	for _, sn := range sns {
		ss := snapshotproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), sn)
		err := ss.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			fmt.Printf("snapshot %s %s %s parent=%s\n", sn, i.Kind, i.Name, i.Parent)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list snapshots of %s: %w", sn, err)
		}
	}
	return nil
}

func main() {
	addr := flag.String("a", "", "strata-proxy unix socket")
	wait := flag.Duration("wait", 0, "retry until the socket answers, up to this long")
	ns := flag.String("n", "", "send this containerd-namespace header (default: none)")
	var sns names
	flag.Var(&sns, "snapshotter", "snapshotter name to list (repeatable)")
	flag.Parse()
	if *addr == "" {
		fmt.Fprintln(os.Stderr, "strata-ls: -a SOCKET is required")
		os.Exit(2)
	}
	ctx := context.Background()
	if *ns != "" {
		// Sets the gRPC containerd-namespace header too.
		ctx = namespaces.WithNamespace(ctx, *ns)
	}
	if err := run(ctx, *addr, *wait, sns); err != nil {
		fmt.Fprintf(os.Stderr, "strata-ls: %v\n", err)
		os.Exit(1)
	}
}
