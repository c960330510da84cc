package strataconformance

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/content/testsuite"
	"github.com/containerd/containerd/metadata"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	bolt "go.etcd.io/bbolt"
)

// TestContentDirect runs the content suite straight through containerd's
// content proxy client (what a content proxy_plugin user sees without the
// metadata layer, e.g. `ctr content` against the daemon).
func TestContentDirect(t *testing.T) {
	testsuite.ContentSuite(t, "strata", directContentStore)
}

func directContentStore(ctx context.Context, root string) (context.Context, content.Store, func() error, error) {
	s, err := startServer(ctx, root)
	if err != nil {
		return nil, nil, nil, err
	}
	return ctx, proxy.NewContentStore(contentapi.NewContentClient(s.conn)), s.stop, nil
}

// TestContentMetadata runs the content suites through containerd's metadata
// layer exactly as containerd uses a content proxy plugin: the proxy store is
// the metadata DB's backend (services/server/server.go), namespaces come from
// a context wrapper like containerd's metadata/content_test.go, and a garbage
// collection at teardown must succeed.
func TestContentMetadata(t *testing.T) {
	testsuite.ContentSuite(t, "strata-metadata", metadataContentStore())
	testsuite.ContentCrossNSSharedSuite(t, "strata-metadata", metadataContentStore())
	testsuite.ContentCrossNSIsolatedSuite(t, "strata-metadata", metadataContentStore(metadata.WithPolicyIsolated))
}

func metadataContentStore(opts ...metadata.DBOpt) testsuite.StoreInitFn {
	return func(ctx context.Context, root string) (context.Context, content.Store, func() error, error) {
		s, err := startServer(ctx, root)
		if err != nil {
			return nil, nil, nil, err
		}
		db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o660, nil)
		if err != nil {
			_ = s.stop()
			return nil, nil, nil, err
		}
		backend := proxy.NewContentStore(contentapi.NewContentClient(s.conn))
		mdb := metadata.NewDB(db, backend, map[string]snapshots.Snapshotter{}, opts...)
		if err := mdb.Init(ctx); err != nil {
			db.Close()
			_ = s.stop()
			return nil, nil, nil, fmt.Errorf("metadata init: %w", err)
		}

		var (
			count uint64
			name  = testsuite.Name(ctx)
		)
		wrap := func(ctx context.Context) (context.Context, func(context.Context) error, error) {
			n := atomic.AddUint64(&count, 1)
			return namespaces.WithNamespace(ctx, fmt.Sprintf("%s-n%d", name, n)), func(context.Context) error {
				return nil
			}, nil
		}
		ctx = testsuite.SetContextWrapper(ctx, wrap)

		cleanup := func() error {
			_, gcErr := mdb.GarbageCollect(context.Background())
			dbErr := db.Close()
			stopErr := s.stop()
			switch {
			case gcErr != nil:
				return fmt.Errorf("garbage collection: %w (stop: %v)", gcErr, stopErr)
			case stopErr != nil:
				return stopErr
			default:
				return dbErr
			}
		}
		return ctx, mdb.ContentStore(), cleanup, nil
	}
}
