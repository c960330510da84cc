package strataconformance

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	contentproxy "github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/metadata"
	"github.com/containerd/containerd/pkg/testutil"
	"github.com/containerd/containerd/snapshots"
	snproxy "github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	bolt "go.etcd.io/bbolt"
)

// snapshotterNames lists the backends to test, from STRATA_SNAPSHOTTERS, plus
// strata-btrfs when STRATA_BTRFS_ROOT is set.
func snapshotterNames() []string {
	env := os.Getenv("STRATA_SNAPSHOTTERS")
	if env == "" {
		env = "strata-overlay,strata-native,strata-lazy"
	}
	if btrfsRoot() != "" && !strings.Contains(env, "strata-btrfs") {
		env += ",strata-btrfs"
	}
	var names []string
	for _, n := range strings.Split(env, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// TestSnapshotsDirect runs the snapshotter suite through containerd's
// snapshot proxy client, one backend at a time.
func TestSnapshotsDirect(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, name := range snapshotterNames() {
		name := name
		t.Run(name, func(t *testing.T) {
			testsuite.SnapshotterSuite(t, name, directSnapshotter(name))
		})
	}
}

func directSnapshotter(name string) testsuite.SnapshotterFunc {
	return func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		s, err := startServerFor(ctx, name, root)
		if err != nil {
			return nil, nil, err
		}
		sn := snproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(s.conn), name)
		return sn, s.stop, nil
	}
}

// TestSnapshotsMetadata runs the snapshotter suite through containerd's
// metadata layer, as containerd uses a snapshot proxy plugin: namespaced
// backend keys, labels kept in bolt, and Remove reaching the backend only
// through the garbage collection run at teardown.
func TestSnapshotsMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, name := range snapshotterNames() {
		name := name
		t.Run(name, func(t *testing.T) {
			testsuite.SnapshotterSuite(t, name, metadataSnapshotter(name))
		})
	}
}

func metadataSnapshotter(name string) testsuite.SnapshotterFunc {
	return func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		s, err := startServerFor(ctx, name, root)
		if err != nil {
			return nil, nil, err
		}
		db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o660, nil)
		if err != nil {
			_ = s.stop()
			return nil, nil, err
		}
		cs := contentproxy.NewContentStore(contentapi.NewContentClient(s.conn))
		backend := snproxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(s.conn), name)
		mdb := metadata.NewDB(db, cs, map[string]snapshots.Snapshotter{name: backend})
		if err := mdb.Init(ctx); err != nil {
			db.Close()
			_ = s.stop()
			return nil, nil, fmt.Errorf("metadata init: %w", err)
		}
		sn := mdb.Snapshotter(name)
		cleanup := func() error {
			closeErr := sn.Close()
			_, gcErr := mdb.GarbageCollect(context.Background())
			dbErr := db.Close()
			stopErr := s.stop()
			switch {
			case gcErr != nil:
				return fmt.Errorf("garbage collection: %w (stop: %v)", gcErr, stopErr)
			case stopErr != nil:
				return stopErr
			case closeErr != nil:
				return closeErr
			default:
				return dbErr
			}
		}
		return sn, cleanup, nil
	}
}
