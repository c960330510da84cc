package strataconformance

// Daemon lifecycle and gRPC dialing shared by every suite.
//
// Environment:
//   STRATA_PROXY            daemon binary (default /var/tmp/strata-target/debug/strata-proxy)
//   STRATA_PROXY_ARGS       extra whitespace-separated daemon arguments
//   STRATA_CONFORMANCE_LOGS directory receiving one log file per daemon
//                           (default $TMPDIR/strata-conformance-logs)
//   STRATA_STOP_TIMEOUT     how long to wait after SIGTERM (Go duration, default 10s)
//   STRATA_BTRFS_ROOT       a directory on btrfs: strata-btrfs is tested too, its daemons
//                           keeping their --root below it (scripts/btrfs-loop.sh makes one)

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/defaults"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/pkg/dialer"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

const (
	defaultProxy = "/var/tmp/strata-target/debug/strata-proxy"
	startTimeout = 30 * time.Second
	// sun_path is 108 bytes on Linux, including the terminating NUL.
	maxSocketPath = 107
)

var serverSeq uint64

// server is one running strata-proxy process.
type server struct {
	root    string // --root
	sock    string // --address
	sockDir string // extra directory created when dir was too long for a socket
	logPath string
	logFile *os.File
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid once exited is closed
	conn    *grpc.ClientConn
}

// TestMain reports which daemon binary is under test before running.
func TestMain(m *testing.M) {
	bin := proxyBinary()
	if st, err := os.Stat(bin); err != nil {
		fmt.Printf("strata-proxy binary %s: %v\n", bin, err)
	} else {
		fmt.Printf("strata-proxy binary %s (%d bytes, modified %s); logs in %s\n",
			bin, st.Size(), st.ModTime().Format(time.RFC3339), logDir())
	}
	os.Exit(m.Run())
}

func proxyBinary() string {
	if p := os.Getenv("STRATA_PROXY"); p != "" {
		return p
	}
	return defaultProxy
}

func logDir() string {
	if d := os.Getenv("STRATA_CONFORMANCE_LOGS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "strata-conformance-logs")
}

func stopTimeout() time.Duration {
	if s := os.Getenv("STRATA_STOP_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 10 * time.Second
}

// btrfsRoot is STRATA_BTRFS_ROOT ("" when strata-btrfs is not tested).
func btrfsRoot() string {
	return os.Getenv("STRATA_BTRFS_ROOT")
}

// startServerFor is startServer for the snapshot backend name: a strata-btrfs
// daemon gets a fresh --root below btrfsRoot(), every other one below dir.
func startServerFor(ctx context.Context, name, dir string) (*server, error) {
	if name != "strata-btrfs" || btrfsRoot() == "" {
		return startServer(ctx, dir)
	}
	root, err := os.MkdirTemp(btrfsRoot(), "strata-root-")
	if err != nil {
		return nil, err
	}
	return startServerAt(ctx, dir, root)
}

// startServer launches a fresh daemon whose root and socket live under dir,
// waits until the socket accepts connections and dials it.
func startServer(ctx context.Context, dir string) (*server, error) {
	return startServerAt(ctx, dir, filepath.Join(dir, "strata-root"))
}

// startServerAt is startServer with the daemon's --root at root.
func startServerAt(ctx context.Context, dir, root string) (*server, error) {
	seq := atomic.AddUint64(&serverSeq, 1)
	s := &server{
		root:   root,
		sock:   filepath.Join(dir, "strata.sock"),
		exited: make(chan struct{}),
	}
	if len(s.sock) > maxSocketPath {
		short, err := os.MkdirTemp("", "strata-sock-")
		if err != nil {
			return nil, err
		}
		s.sockDir = short
		s.sock = filepath.Join(short, "s.sock")
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, err
	}
	if err := s.openLog(seq, dir); err != nil {
		return nil, err
	}

	args := []string{"--root", s.root, "--address", s.sock,
		"--runtime-address", filepath.Join(filepath.Dir(s.sock), "r.sock"),
		// Its own task state: a daemon locks the one it uses.
		"--state", filepath.Join(filepath.Dir(s.sock), "state")}
	args = append(args, strings.Fields(os.Getenv("STRATA_PROXY_ARGS"))...)
	s.cmd = exec.Command(proxyBinary(), args...)
	s.cmd.Stdout = s.logFile
	s.cmd.Stderr = s.logFile
	// Own process group: a terminal ^C to the test binary does not race teardown.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.cleanupFiles()
		return nil, fmt.Errorf("start %s: %w", proxyBinary(), err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	log.G(ctx).Infof("strata-proxy #%d pid %d root %s socket %s log %s",
		seq, s.cmd.Process.Pid, s.root, s.sock, s.logPath)

	if err := s.waitReady(); err != nil {
		_ = s.stop()
		return nil, err
	}
	conn, err := dial(s.sock)
	if err != nil {
		_ = s.stop()
		return nil, err
	}
	s.conn = conn
	return s, nil
}

func (s *server) openLog(seq uint64, dir string) error {
	ld := logDir()
	if err := os.MkdirAll(ld, 0o755); err != nil {
		return err
	}
	s.logPath = filepath.Join(ld, fmt.Sprintf("%04d-%s.log", seq, filepath.Base(filepath.Dir(dir))+"-"+filepath.Base(dir)))
	f, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	s.logFile = f
	return nil
}

// waitReady polls the socket until it accepts a connection, the process
// exits, or startTimeout elapses.
func (s *server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("strata-proxy exited before serving (%v)%s", s.waitErr, s.logTail())
		default:
		}
		c, err := net.DialTimeout("unix", s.sock, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strata-proxy socket %s not accepting after %v: %v%s", s.sock, startTimeout, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial connects exactly like containerd 1.6 connects to a proxy plugin
// (services/server/server.go: getClient).
func dial(sock string) (*grpc.ClientConn, error) {
	bo := backoff.DefaultConfig
	bo.MaxDelay = 3 * time.Second
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo}),
		grpc.WithContextDialer(dialer.ContextDialer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(defaults.DefaultMaxRecvMsgSize)),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(defaults.DefaultMaxSendMsgSize)),
	}
	conn, err := grpc.Dial(dialer.DialAddress(sock), opts...)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", sock, err)
	}
	return conn, nil
}

// stop closes the connection, sends SIGTERM, waits for the process, unmounts
// whatever is left below the root and removes it. It reports a daemon that
// died early, ignored SIGTERM or exited with a failure status.
func (s *server) stop() error {
	var errs []string
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
	select {
	case <-s.exited:
		errs = append(errs, fmt.Sprintf("strata-proxy died during the test (%v)", s.waitErr))
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			if err := exitFailure(s.waitErr); err != nil {
				errs = append(errs, fmt.Sprintf("strata-proxy exited badly after SIGTERM: %v", err))
			}
		case <-time.After(stopTimeout()):
			_ = s.cmd.Process.Kill()
			<-s.exited
			errs = append(errs, fmt.Sprintf("strata-proxy still running %v after SIGTERM; killed", stopTimeout()))
		}
	}
	if err := unmountBelow(s.root); err != nil {
		errs = append(errs, err.Error())
	}
	if err := removeRoot(s.root); err != nil {
		errs = append(errs, fmt.Sprintf("remove root: %v", err))
	}
	s.cleanupFiles()
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; ") + s.logTail())
	}
	return nil
}

// removeRoot deletes a daemon root; btrfs subvolumes left in it (read-only
// ones cannot be emptied file by file) are deleted with btrfs-progs first.
func removeRoot(root string) error {
	if os.RemoveAll(root) == nil {
		return nil
	}
	var subvols []string
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.IsDir() {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino == 256 && p != root {
			subvols = append(subvols, p)
			return filepath.SkipDir
		}
		return nil
	})
	if len(subvols) > 0 {
		args := append([]string{"subvolume", "delete"}, subvols...)
		if out, err := exec.Command("btrfs", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("btrfs subvolume delete: %v: %s", err, out)
		}
	}
	return os.RemoveAll(root)
}

func (s *server) cleanupFiles() {
	if s.logFile != nil {
		s.logFile.Close()
	}
	if s.sockDir != "" {
		os.RemoveAll(s.sockDir)
	}
}

// exitFailure accepts a clean exit or death by SIGTERM.
func exitFailure(err error) error {
	var ee *exec.ExitError
	if err == nil {
		return nil
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return err
}

// logTail returns the last lines of the daemon's log, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Sprintf("\n--- tail of %s ---\n%s", s.logPath, strings.Join(lines, "\n"))
}

// unmountBelow detaches every mount at or below dir (deepest first), as
// listed in /proc/self/mountinfo, until none is left.
func unmountBelow(dir string) error {
	for i := 0; i < 16; i++ {
		mps, err := mountsBelow(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	return fmt.Errorf("mounts remain below %s", dir)
}

func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(string(fields[4]))
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo decodes the \ooo octal escapes of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
