// runtime-client drives strata-proxy's runtime socket with containerd 1.6's own Go
// client, unchanged: version, namespaces, leases, content, images, snapshots,
// containers and garbage collection, each check asserting containerd's semantics.
//
// Usage:
//
//	runtime-client -a SOCKET [-snapshotter strata-overlay] [-timeout 5m]
//
// Output: one `PASS <name>` or `FAIL <name>: <why>` line per check, then exactly
// `N passed, N failed`; exit status 1 if any check failed. Everything is created in
// a namespace unique to the run and removed at the end (check `cleanup`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/namespaces"
)

// suite holds the client, the run's contexts and the tally.
type suite struct {
	client *containerd.Client
	sn     string // snapshotter under test
	ns     string // this run's namespace

	root context.Context // no namespace (deadline only)
	base context.Context // namespace ns, no lease
	ctx  context.Context // namespace ns, under the run lease

	passed, failed int
	cleanups       []func() error
}

// check runs one named check and prints its PASS/FAIL line; it reports success.
func (s *suite) check(name string, fn func() error) bool {
	if err := fn(); err != nil {
		s.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return false
	}
	s.passed++
	fmt.Printf("PASS %s\n", name)
	return true
}

// onCleanup registers fn to run at the end, last registered first; NotFound is ignored.
func (s *suite) onCleanup(fn func() error) { s.cleanups = append(s.cleanups, fn) }

// inNamespace is the run's root context in namespace ns.
func (s *suite) inNamespace(ns string) context.Context {
	return namespaces.WithNamespace(s.root, ns)
}

// setup creates the run's namespace and the lease that protects what the checks create.
// (containerd wants a namespace header even on the namespaces service: the run's.)
func (s *suite) setup() error {
	s.base = s.inNamespace(s.ns)
	nss := s.client.NamespaceService()
	s.onCleanup(func() error { return nss.Delete(s.base, s.ns) }) // unique name: even if Create half-failed
	if err := nss.Create(s.base, s.ns, map[string]string{"rc.run": "runtime-client"}); err != nil {
		return fmt.Errorf("create namespace %s: %w", s.ns, err)
	}
	l, err := s.newLease(s.base)
	if err != nil {
		return err
	}
	s.ctx = leases.WithLease(s.base, l.ID)
	return nil
}

// newLease creates a lease expiring in an hour, deleted (synchronously) at cleanup.
func (s *suite) newLease(ctx context.Context, opts ...leases.Opt) (leases.Lease, error) {
	ls := s.client.LeasesService()
	opts = append([]leases.Opt{leases.WithRandomID(), leases.WithExpiration(time.Hour)}, opts...)
	l, err := ls.Create(ctx, opts...)
	if err != nil {
		return l, fmt.Errorf("create lease: %w", err)
	}
	s.onCleanup(func() error { return ls.Delete(ctx, l, leases.SynchronousDelete) })
	return l, nil
}

func (s *suite) run() {
	if !s.check("setup", s.setup) {
		return
	}
	s.checkVersion()
	s.checkNamespaces()
	s.checkLeases()
	s.checkContent()
	s.checkSharedContent()
	s.checkImages()
	s.checkSnapshots()
	s.checkContainers()
	s.checkGCLease()
	s.checkGCRoot()
	s.checkGCImage()
	s.checkGCContainer()
}

// cleanup undoes everything registered, newest first, and fails on any error but NotFound.
func (s *suite) cleanup() error {
	var errs []error
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		if err := s.cleanups[i](); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d cleanup step(s) failed: %v", len(errs), errs)
	}
	return nil
}

func main() {
	addr := flag.String("a", "", "strata-proxy runtime socket (--runtime-address)")
	sn := flag.String("snapshotter", "strata-overlay", "snapshotter to test")
	timeout := flag.Duration("timeout", 5*time.Minute, "deadline for the whole run")
	flag.Parse()
	if *addr == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: runtime-client -a SOCKET [-snapshotter NAME] [-timeout D]")
		os.Exit(2)
	}
	root, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	s := &suite{sn: *sn, root: root, ns: fmt.Sprintf("rc-%d-%d", os.Getpid(), time.Now().UnixNano())}
	if s.check("connect", func() (err error) { s.client, err = containerd.New(*addr); return err }) {
		defer s.client.Close()
		s.run()
		s.check("cleanup", s.cleanup)
	}
	fmt.Printf("%d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}
