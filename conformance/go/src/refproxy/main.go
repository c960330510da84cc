// Command refproxy is a reference daemon with strata-proxy's command line
// (--root DIR --address SOCKET) serving containerd 1.6's *own* local content
// store and overlay/native snapshotters over the same gRPC services. It
// validates the conformance harness and gives the baseline results:
//
//	STRATA_PROXY=/var/tmp/strata-conformance/refproxy scripts/conformance.sh
//
// Snapshot requests are routed by their `snapshotter` field: strata-overlay
// (and overlayfs) -> containerd's overlay, strata-native (and native) ->
// containerd's native. Content labels are kept in memory, like containerd's
// content/local tests do, so the direct content suite can pass.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/content/local"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/services/content/contentserver"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/native"
	"github.com/containerd/containerd/snapshots/overlay"
	ptypes "github.com/gogo/protobuf/types"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func main() {
	root := flag.String("root", "", "state directory")
	address := flag.String("address", "", "unix socket to serve on")
	flag.Parse()
	if *root == "" || *address == "" {
		fmt.Fprintln(os.Stderr, "usage: refproxy --root DIR --address SOCKET")
		os.Exit(2)
	}
	if err := run(*root, *address); err != nil {
		fmt.Fprintln(os.Stderr, "refproxy:", err)
		os.Exit(1)
	}
}

func run(root, address string) error {
	cs, err := local.NewLabeledStore(filepath.Join(root, "content"), &memLabels{m: map[digest.Digest]map[string]string{}})
	if err != nil {
		return err
	}
	ov, err := overlay.NewSnapshotter(filepath.Join(root, "overlay"))
	if err != nil {
		return err
	}
	nat, err := native.NewSnapshotter(filepath.Join(root, "native"))
	if err != nil {
		return err
	}
	r := router{m: map[string]snapshotsapi.SnapshotsServer{}}
	for name, sn := range map[string]snapshots.Snapshotter{
		"strata-overlay": ov, "overlayfs": ov, "strata-native": nat, "native": nat,
	} {
		r.m[name] = snapshotservice.FromSnapshotter(sn)
	}

	_ = os.Remove(address)
	l, err := net.Listen("unix", address)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	contentapi.RegisterContentServer(srv, contentserver.New(cs))
	snapshotsapi.RegisterSnapshotsServer(srv, r)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Stop()
	}()
	if err := srv.Serve(l); err != nil {
		return err
	}
	ov.Close()
	nat.Close()
	return nil
}

type memLabels struct {
	l sync.Mutex
	m map[digest.Digest]map[string]string
}

func (s *memLabels) Get(d digest.Digest) (map[string]string, error) {
	s.l.Lock()
	defer s.l.Unlock()
	return s.m[d], nil
}

func (s *memLabels) Set(d digest.Digest, labels map[string]string) error {
	s.l.Lock()
	defer s.l.Unlock()
	s.m[d] = labels
	return nil
}

func (s *memLabels) Update(d digest.Digest, update map[string]string) (map[string]string, error) {
	s.l.Lock()
	defer s.l.Unlock()
	labels, ok := s.m[d]
	if !ok {
		labels = map[string]string{}
	}
	for k, v := range update {
		if v == "" {
			delete(labels, k)
		} else {
			labels[k] = v
		}
	}
	s.m[d] = labels
	return labels, nil
}

// router dispatches snapshot requests on their snapshotter name.
type router struct {
	m map[string]snapshotsapi.SnapshotsServer
}

func (r router) get(name string) (snapshotsapi.SnapshotsServer, error) {
	if s, ok := r.m[name]; ok {
		return s, nil
	}
	return nil, status.Errorf(codes.NotFound, "snapshotter %q not loaded", name)
}

func (r router) Prepare(ctx context.Context, q *snapshotsapi.PrepareSnapshotRequest) (*snapshotsapi.PrepareSnapshotResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Prepare(ctx, q)
}

func (r router) View(ctx context.Context, q *snapshotsapi.ViewSnapshotRequest) (*snapshotsapi.ViewSnapshotResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.View(ctx, q)
}

func (r router) Mounts(ctx context.Context, q *snapshotsapi.MountsRequest) (*snapshotsapi.MountsResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Mounts(ctx, q)
}

func (r router) Commit(ctx context.Context, q *snapshotsapi.CommitSnapshotRequest) (*ptypes.Empty, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Commit(ctx, q)
}

func (r router) Remove(ctx context.Context, q *snapshotsapi.RemoveSnapshotRequest) (*ptypes.Empty, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Remove(ctx, q)
}

func (r router) Stat(ctx context.Context, q *snapshotsapi.StatSnapshotRequest) (*snapshotsapi.StatSnapshotResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Stat(ctx, q)
}

func (r router) Update(ctx context.Context, q *snapshotsapi.UpdateSnapshotRequest) (*snapshotsapi.UpdateSnapshotResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Update(ctx, q)
}

func (r router) List(q *snapshotsapi.ListSnapshotsRequest, ss snapshotsapi.Snapshots_ListServer) error {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return err
	}
	return s.List(q, ss)
}

func (r router) Usage(ctx context.Context, q *snapshotsapi.UsageRequest) (*snapshotsapi.UsageResponse, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Usage(ctx, q)
}

func (r router) Cleanup(ctx context.Context, q *snapshotsapi.CleanupRequest) (*ptypes.Empty, error) {
	s, err := r.get(q.Snapshotter)
	if err != nil {
		return nil, err
	}
	return s.Cleanup(ctx, q)
}
