// task-client drives strata-proxy's Tasks service with containerd 1.6's own Go client,
// unchanged: NewContainer + NewTask + Start + Wait + Delete on every snapshotter given, exit
// codes, the /tasks/* events (decoded), Exec, CloseIO, Pids, Pause/Resume, what a running task
// protects (raw Containers.Delete and Snapshots.Remove), Kill, NotFound, and the calls Strata
// does not implement (Metrics, Checkpoint: a known gap, asserted as codes.Unimplemented).
//
// Usage:
//
//	task-client -a SOCKET [-image it/task:1] [-snapshotters strata-overlay,strata-native]
//	            [-namespace task-client] [-timeout 5m]
//
// The image (busybox + python3, integration/task_image.sh) must already be imported in the
// namespace; it is unpacked for each snapshotter that does not have it yet (the first one also
// runs the exit-code, event, exec and kill checks). Containers are named tc-<pid>-* so that runs
// never collide; every container, task, process and snapshot a run creates is removed at the
// end, failed checks or not (check `cleanup`). The event subscription is proven live by one
// event the program publishes itself on /task-client/sync (not a /tasks/ topic).
//
// Output: one `PASS <name>` or `FAIL <name>: <why>` line per check, then exactly
// `N passed, N failed`; exit status 1 if any check failed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/events"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/typeurl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	exitTimeout  = 60 * time.Second // a task or process must exit within this
	eventTimeout = 10 * time.Second // an event must arrive within this
	syncTopic    = "/task-client/sync"
)

// suite holds the client, the run's context, the event log and the tally.
type suite struct {
	client *containerd.Client
	ns     string   // namespace under test
	imgRef string   // image name
	sns    []string // snapshotters under test
	prefix string   // container ID prefix, unique to the run

	ctx      context.Context // namespace ns, the run's deadline
	cleanCtx context.Context // namespace ns, its own deadline (cleanup runs after a timeout too)
	image    containerd.Image
	events   *eventLog

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

// cleanup undoes everything registered, newest first, and fails on any error but NotFound.
func (s *suite) cleanup() error {
	var errs []error
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		if err := s.cleanups[i](); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d cleanup step(s) failed: %v", len(errs), errs)
	}
	return nil
}

// --- small assertions -----------------------------------------------------------------------

func wantErr(err error, is func(error) bool, class string) error {
	if err == nil {
		return fmt.Errorf("got no error, want %s", class)
	}
	if !is(err) {
		return fmt.Errorf("got %v, want %s", err, class)
	}
	return nil
}

func wantNotFound(err error) error { return wantErr(err, errdefs.IsNotFound, "NotFound") }

func wantFailedPrecondition(err error) error {
	return wantErr(err, errdefs.IsFailedPrecondition, "FailedPrecondition")
}

// wantUnimplemented: errdefs.ErrNotImplemented is what errdefs.FromGRPC makes of
// codes.Unimplemented, and of nothing else.
func wantUnimplemented(err error) error {
	return wantErr(err, errdefs.IsNotImplemented, "Unimplemented (errdefs.ErrNotImplemented)")
}

func wrap(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", step, err)
}

func same[T comparable](what string, got, want T) error {
	if got != want {
		if g, ok := any(got).(string); ok {
			return fmt.Errorf("%s = %s, want %s", what, strconv.Quote(g), strconv.Quote(any(want).(string)))
		}
		return fmt.Errorf("%s = %v, want %v", what, got, want)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncBuffer is a bytes.Buffer that cio's copy goroutines may write while a check reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitExit waits for an exit status from a Wait channel; a Wait that failed is an error.
func waitExit(ch <-chan containerd.ExitStatus) (uint32, error) {
	select {
	case st, ok := <-ch:
		if !ok {
			return 0, errors.New("Wait channel closed without a status")
		}
		code, _, err := st.Result()
		if err != nil {
			return code, wrap("Wait", err)
		}
		return code, nil
	case <-time.After(exitTimeout):
		return 0, fmt.Errorf("no exit within %v", exitTimeout)
	}
}

// poll retries cond every 50 ms until it holds or d passes; it returns cond's last error.
func poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- events -----------------------------------------------------------------------------------

// eventLog records every envelope of one subscription.
type eventLog struct {
	mu   sync.Mutex
	list []*events.Envelope
	err  error
}

func (l *eventLog) collect(ch <-chan *events.Envelope, errs <-chan error) {
	for {
		select {
		case e := <-ch:
			l.mu.Lock()
			l.list = append(l.list, e)
			l.mu.Unlock()
		case err, ok := <-errs:
			if ok && err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
			}
			return
		}
	}
}

func (l *eventLog) snapshot() ([]*events.Envelope, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*events.Envelope(nil), l.list...), l.err
}

// taskEvent is one decoded /tasks/* event of the namespace under test.
type taskEvent struct {
	topic string
	ev    interface{}
}

// eventOwner is the container and the process (exec ID; the container ID for init where the
// event names the process) an event is about.
func eventOwner(ev interface{}) (container, process string) {
	switch e := ev.(type) {
	case *eventstypes.TaskCreate:
		return e.ContainerID, e.ContainerID
	case *eventstypes.TaskStart:
		return e.ContainerID, e.ContainerID
	case *eventstypes.TaskExit:
		return e.ContainerID, e.ID
	case *eventstypes.TaskDelete:
		return e.ContainerID, e.ID
	case *eventstypes.TaskExecAdded:
		return e.ContainerID, e.ExecID
	case *eventstypes.TaskExecStarted:
		return e.ContainerID, e.ExecID
	case *eventstypes.TaskPaused:
		return e.ContainerID, e.ContainerID
	case *eventstypes.TaskResumed:
		return e.ContainerID, e.ContainerID
	}
	return "", ""
}

// eventsFor waits until every topic in want has been published for container id, and returns
// that container's events in arrival order. keep filters further (nil keeps all).
func (s *suite) eventsFor(id string, keep func(taskEvent) bool, want ...string) ([]taskEvent, error) {
	var got []taskEvent
	err := poll(eventTimeout, func() error {
		list, err := s.events.snapshot()
		got = nil
		seen := map[string]bool{}
		for _, env := range list {
			if env.Namespace != s.ns || !strings.HasPrefix(env.Topic, "/tasks/") {
				continue
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				return fmt.Errorf("decode %s event (%s): %w", env.Topic, env.Event.TypeUrl, err)
			}
			te := taskEvent{env.Topic, v}
			if c, _ := eventOwner(v); c != id || (keep != nil && !keep(te)) {
				continue
			}
			got = append(got, te)
			seen[env.Topic] = true
		}
		var missing []string
		for _, t := range want {
			if !seen[t] {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			if err != nil {
				return fmt.Errorf("subscription ended (%v); missing %v", err, missing)
			}
			return fmt.Errorf("no %v event for %s within %v (got %s)", missing, id, eventTimeout, topics(got))
		}
		return nil
	})
	return got, err
}

func topics(list []taskEvent) string {
	var t []string
	for _, e := range list {
		t = append(t, e.topic)
	}
	return "[" + strings.Join(t, " ") + "]"
}

// one returns the only event of topic in list.
func one(list []taskEvent, topic string) (interface{}, error) {
	var found []interface{}
	for _, e := range list {
		if e.topic == topic {
			found = append(found, e.ev)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d %s events, want 1 (all: %s)", len(found), topic, topics(list))
	}
	return found[0], nil
}

// inOrder fails unless the topics appear in list in this order.
func inOrder(list []taskEvent, order ...string) error {
	i := 0
	for _, e := range list {
		if i < len(order) && e.topic == order[i] {
			i++
		}
	}
	if i < len(order) {
		return fmt.Errorf("events %s, want the order %v", topics(list), order)
	}
	return nil
}

// subscribe starts recording /tasks/* events and returns once the subscription provably
// delivers (a Publish on syncTopic came back): events published later cannot be missed.
func (s *suite) subscribe() error {
	ctx, cancel := context.WithCancel(s.ctx)
	s.onCleanup(func() error { cancel(); return nil })
	ch, errs := s.client.Subscribe(ctx, `topic~="/tasks/"`, `topic=="`+syncTopic+`"`)
	s.events = &eventLog{}
	go s.events.collect(ch, errs)
	marker := s.prefix + "sync"
	return poll(eventTimeout, func() error {
		if err := s.client.EventService().Publish(s.ctx, syncTopic, &eventstypes.TaskOOM{ContainerID: marker}); err != nil {
			return wrap("Publish "+syncTopic, err)
		}
		time.Sleep(100 * time.Millisecond)
		list, err := s.events.snapshot()
		for _, env := range list {
			if env.Topic == syncTopic && env.Namespace == s.ns {
				v, derr := typeurl.UnmarshalAny(env.Event)
				if derr != nil {
					return wrap("decode "+syncTopic, derr)
				}
				if e, ok := v.(*eventstypes.TaskOOM); ok && e.ContainerID == marker {
					return nil
				}
			}
		}
		if err != nil {
			return wrap("subscription ended", err)
		}
		return fmt.Errorf("the %s event never came back", syncTopic)
	})
}

// --- containers and tasks ---------------------------------------------------------------------

// run is one container of the test image, its task and the exec'd processes.
type run struct {
	id, sn, key string
	c           containerd.Container
	t           containerd.Task
	exitC       <-chan containerd.ExitStatus
	stdout      syncBuffer
	stderr      syncBuffer
	procs       []containerd.Process
	closers     []io.Closer
}

// newRun creates container name (prefixed) from the image, with its own snapshot on sn, as
// ctr run does: containerd.WithNewSnapshot and a spec from the image config.
func (s *suite) newRun(name, sn string, args ...string) (*run, error) {
	r := &run{id: s.prefix + name, sn: sn}
	r.key = r.id + "-snap"
	c, err := s.client.NewContainer(s.ctx, r.id,
		containerd.WithImage(s.image),
		containerd.WithSnapshotter(sn),
		containerd.WithNewSnapshot(r.key, s.image),
		containerd.WithNewSpec(oci.WithImageConfig(s.image), oci.WithProcessArgs(args...)))
	if err != nil {
		return nil, wrap("NewContainer", err)
	}
	r.c = c
	s.onCleanup(func() error { return s.removeRun(r) })
	return r, nil
}

// start creates the task with stdout and stderr captured, asks for its exit and starts it.
func (s *suite) start(r *run) error {
	t, err := r.c.NewTask(s.ctx, cio.NewCreator(cio.WithStreams(nil, &r.stdout, &r.stderr)))
	if err != nil {
		return wrap("NewTask", err)
	}
	r.t = t
	if t.Pid() == 0 {
		return errors.New("NewTask: pid 0")
	}
	if r.exitC, err = t.Wait(s.ctx); err != nil {
		return wrap("Wait", err)
	}
	return wrap("Start", t.Start(s.ctx))
}

// status fails unless the task (or process) reports want.
func (s *suite) status(p containerd.Process, want containerd.ProcessStatus) error {
	st, err := p.Status(s.ctx)
	if err != nil {
		return wrap("Status", err)
	}
	return same("Status", st.Status, want)
}

// gone fails unless r's container and snapshot no longer exist.
func (s *suite) gone(r *run) error {
	_, err := s.client.ContainerService().Get(s.ctx, r.id)
	if err := wantNotFound(err); err != nil {
		return wrap("container "+r.id+" after Delete", err)
	}
	_, err = s.client.SnapshotService(r.sn).Stat(s.ctx, r.key)
	return wrap("snapshot "+r.key+" after Delete(WithSnapshotCleanup)", wantNotFound(err))
}

// execSpec is the task's process (environment, user, capabilities...) running args in /.
func (s *suite) execSpec(r *run, args ...string) (*specs.Process, error) {
	spec, err := r.c.Spec(s.ctx)
	if err != nil {
		return nil, wrap("container Spec", err)
	}
	if spec.Process == nil {
		return nil, errors.New("container spec has no process")
	}
	p := *spec.Process
	p.Args, p.Cwd, p.Terminal = args, "/", false
	return &p, nil
}

// removeRun kills and deletes whatever of r is left: task (SIGKILL to all its processes, after
// a resume if paused), exec'd processes, container, snapshot. It goes on after an error and
// returns them all; NotFound is no error. (An exec'd process is never killed on its own: one
// that was created but not started has no pid yet.)
func (s *suite) removeRun(r *run) error {
	ctx := s.cleanCtx
	var errs []error
	fail := func(step string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, wrap(step, err))
		}
	}
	for _, c := range r.closers {
		c.Close()
	}
	t := r.t
	if t == nil {
		var err error
		if t, err = r.c.Task(ctx, nil); err != nil {
			fail("load task "+r.id, err)
			t = nil
		}
	}
	stopped := t == nil
	if t != nil {
		st, err := t.Status(ctx)
		switch {
		case err != nil:
			fail("task status "+r.id, err)
			stopped = errdefs.IsNotFound(err)
		case st.Status == containerd.Stopped:
			stopped = true
		default:
			if st.Status == containerd.Paused {
				fail("resume "+r.id, t.Resume(ctx))
			}
			ch, err := t.Wait(ctx)
			fail("wait "+r.id, err)
			fail("kill "+r.id, t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll))
			if err == nil {
				_, err = waitExit(ch)
				fail("task "+r.id+" after SIGKILL", err)
				stopped = err == nil
			}
		}
	}
	for _, p := range r.procs {
		if _, err := p.Delete(ctx); err != nil {
			fail("delete process "+p.ID()+" of "+r.id, err)
			if pio := p.IO(); pio != nil { // its FIFOs at least
				pio.Cancel()
				pio.Close()
			}
		}
	}
	if t != nil && stopped {
		_, err := t.Delete(ctx)
		fail("delete task "+r.id, err)
	}
	fail("delete container "+r.id, r.c.Delete(ctx, containerd.WithSnapshotCleanup))
	fail("remove snapshot "+r.key, s.client.SnapshotService(r.sn).Remove(ctx, r.key))
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// --- the checks -------------------------------------------------------------------------------

func (s *suite) setup() error {
	img, err := s.client.GetImage(s.ctx, s.imgRef)
	if err != nil {
		return wrap(fmt.Sprintf("GetImage %s in namespace %s (import it first)", s.imgRef, s.ns), err)
	}
	s.image = img
	return nil
}

func (s *suite) run() {
	if !s.check("setup: image "+s.imgRef+" in namespace "+s.ns, s.setup) ||
		!s.check("events: Subscribe(topic~=\"/tasks/\") delivers (a published sync event comes back)", s.subscribe) {
		return
	}
	for _, sn := range s.sns {
		s.checkRun(sn)
	}
	s.checkExitCode(s.sns[0])
	s.checkLongRunning(s.sns[0])
	s.check("Tasks.Get of an unknown container: NotFound", func() error {
		_, err := s.client.TaskService().Get(s.ctx, &tasks.GetRequest{ContainerID: s.prefix + "no-such-container"})
		return wantNotFound(errdefs.FromGRPC(err))
	})
}

// checkRun: python3 printing 42 through NewContainer + NewTask + Start + Wait + Delete on sn.
func (s *suite) checkRun(sn string) {
	if !s.check(sn+": image unpacked (Unpack unless IsUnpacked)", func() error {
		ok, err := s.image.IsUnpacked(s.ctx, sn)
		if err != nil {
			return wrap("IsUnpacked", err)
		}
		if !ok {
			if err := s.image.Unpack(s.ctx, sn); err != nil {
				return wrap("Unpack", err)
			}
		}
		ok, err = s.image.IsUnpacked(s.ctx, sn)
		return firstErr(wrap("IsUnpacked after Unpack", err), same("IsUnpacked after Unpack", ok, true))
	}) {
		return
	}
	var r *run
	if !s.check(sn+": NewContainer + NewTask + Start + Wait: python3 exits 0 printing exactly 42", func() error {
		var err error
		if r, err = s.newRun("py-"+sn, sn, "python3", "-c", "print(6*7)"); err != nil {
			return err
		}
		if err := s.start(r); err != nil {
			return err
		}
		code, err := waitExit(r.exitC)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exit status %d, want 0 (stderr %q)", code, r.stderr.String())
		}
		// task.Delete waits for the output copy: read stdout after it.
		st, err := r.t.Delete(s.ctx)
		if err != nil {
			return wrap("task Delete", err)
		}
		return firstErr(same("task.Delete exit status", st.ExitCode(), uint32(0)),
			same("stdout", r.stdout.String(), "42\n"))
	}) {
		return
	}
	s.check(sn+": container.Delete(WithSnapshotCleanup) removes the container and its snapshot", func() error {
		if err := r.c.Delete(s.ctx, containerd.WithSnapshotCleanup); err != nil {
			return wrap("container Delete", err)
		}
		return s.gone(r)
	})
}

// checkExitCode: sh -c 'exit 3', and the /tasks/* events of that task, decoded.
func (s *suite) checkExitCode(sn string) {
	var r *run
	if !s.check("exit code: Wait gives 3 for sh -c 'exit 3'", func() error {
		var err error
		if r, err = s.newRun("exit3", sn, "sh", "-c", "exit 3"); err != nil {
			return err
		}
		if err := s.start(r); err != nil {
			return err
		}
		code, err := waitExit(r.exitC)
		return firstErr(err, same("exit status", code, uint32(3)))
	}) {
		return
	}
	pid := r.t.Pid()
	if !s.check("exit code: task.Delete returns 3", func() error {
		st, err := r.t.Delete(s.ctx)
		if err != nil {
			return wrap("task Delete", err)
		}
		return same("task.Delete exit status", st.ExitCode(), uint32(3))
	}) {
		return
	}
	var list []taskEvent
	if s.check("events: /tasks/create, /tasks/start, /tasks/exit (ContainerID, ID, Pid, ExitStatus 3), /tasks/delete for the task, decoded", func() error {
		var err error
		if list, err = s.eventsFor(r.id, nil, "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"); err != nil {
			return err
		}
		var errs []error
		if v, err := one(list, "/tasks/create"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskCreate); !ok {
			errs = append(errs, fmt.Errorf("/tasks/create carries %T", v))
		} else {
			errs = append(errs, same("TaskCreate.Pid", e.Pid, pid))
		}
		if v, err := one(list, "/tasks/start"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskStart); !ok {
			errs = append(errs, fmt.Errorf("/tasks/start carries %T", v))
		} else {
			errs = append(errs, same("TaskStart.Pid", e.Pid, pid))
		}
		if v, err := one(list, "/tasks/exit"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskExit); !ok {
			errs = append(errs, fmt.Errorf("/tasks/exit carries %T", v))
		} else {
			errs = append(errs, same("TaskExit.ContainerID", e.ContainerID, r.id),
				same("TaskExit.ID (init: the container ID)", e.ID, r.id),
				same("TaskExit.Pid", e.Pid, pid), same("TaskExit.ExitStatus", e.ExitStatus, uint32(3)))
		}
		if v, err := one(list, "/tasks/delete"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskDelete); !ok {
			errs = append(errs, fmt.Errorf("/tasks/delete carries %T", v))
		} else {
			errs = append(errs, same("TaskDelete.Pid", e.Pid, pid), same("TaskDelete.ExitStatus", e.ExitStatus, uint32(3)))
		}
		return firstErr(errs...)
	}) {
		// containerd 1.6's runc shim sends a process's start and its exit under one lock
		// (eventSendMu): a subscriber never sees the exit first, however fast the process.
		s.check("events: /tasks/create, then /tasks/start, then /tasks/exit (never the exit before the start)", func() error {
			return inOrder(list, "/tasks/create", "/tasks/start", "/tasks/exit")
		})
	}
	s.check("exit code: container.Delete(WithSnapshotCleanup) removes the container and its snapshot", func() error {
		return firstErr(wrap("container Delete", r.c.Delete(s.ctx, containerd.WithSnapshotCleanup)), s.gone(r))
	})
}

// checkLongRunning: a task that runs until SIGTERM (then exits 7), and everything done to it.
func (s *suite) checkLongRunning(sn string) {
	var r *run
	if !s.check("long task: NewTask + Start, Status running", func() error {
		var err error
		r, err = s.newRun("long", sn, "sh", "-c", `trap "exit 7" TERM; while :; do sleep 0.1; done`)
		if err != nil {
			return err
		}
		return firstErr(s.start(r), s.status(r.t, containerd.Running))
	}) {
		return
	}
	t := r.t
	s.check("task.Pids holds the init pid", func() error {
		list, err := t.Pids(s.ctx)
		if err != nil {
			return wrap("Pids", err)
		}
		var pids []uint32
		for _, p := range list {
			if p.Pid == t.Pid() {
				return nil
			}
			pids = append(pids, p.Pid)
		}
		return fmt.Errorf("Pids = %v, want the init pid %d among them", pids, t.Pid())
	})
	s.check("task.Pause: Status paused", func() error {
		return firstErr(wrap("Pause", t.Pause(s.ctx)), s.status(t, containerd.Paused))
	})
	s.check("task.Resume: Status running", func() error {
		return firstErr(wrap("Resume", t.Resume(s.ctx)), s.status(t, containerd.Running))
	})
	s.check("events: /tasks/paused, then /tasks/resumed", func() error {
		list, err := s.eventsFor(r.id, nil, "/tasks/paused", "/tasks/resumed")
		return firstErr(err, inOrder(list, "/tasks/paused", "/tasks/resumed"))
	})
	s.checkExec(r)
	s.checkCloseIO(r)
	s.checkProtected(r)
	s.checkUnimplemented(r)

	if !s.check("task.Kill(SIGTERM): Wait gives 7 (the task's trap)", func() error {
		if err := t.Kill(s.ctx, syscall.SIGTERM); err != nil {
			return wrap("Kill", err)
		}
		code, err := waitExit(r.exitC)
		return firstErr(err, same("exit status", code, uint32(7)))
	}) {
		return
	}
	if !s.check("task.Delete after SIGTERM returns 7", func() error {
		st, err := t.Delete(s.ctx)
		if err != nil {
			return wrap("task Delete", err)
		}
		return same("task.Delete exit status", st.ExitCode(), uint32(7))
	}) {
		return
	}
	s.check("Tasks.Get of the deleted task: NotFound", func() error {
		_, err := s.client.TaskService().Get(s.ctx, &tasks.GetRequest{ContainerID: r.id})
		return wantNotFound(errdefs.FromGRPC(err))
	})
	s.check("long task: container.Delete(WithSnapshotCleanup) removes the container and its snapshot", func() error {
		return firstErr(wrap("container Delete", r.c.Delete(s.ctx, containerd.WithSnapshotCleanup)), s.gone(r))
	})
}

// checkExec: a process exec'd into the running task, its output and exit status, its events.
func (s *suite) checkExec(r *run) {
	var p containerd.Process
	var out syncBuffer
	if !s.check("task.Exec: Start + Wait gives 5 for sh -c 'echo from-exec; exit 5'", func() error {
		spec, err := s.execSpec(r, "sh", "-c", "echo from-exec; exit 5")
		if err != nil {
			return err
		}
		if p, err = r.t.Exec(s.ctx, "x1", spec, cio.NewCreator(cio.WithStreams(nil, &out, &out))); err != nil {
			return wrap("Exec", err)
		}
		r.procs = append(r.procs, p)
		ch, err := p.Wait(s.ctx)
		if err != nil {
			return wrap("Wait", err)
		}
		if err := p.Start(s.ctx); err != nil {
			return wrap("Start", err)
		}
		code, err := waitExit(ch)
		return firstErr(err, same("exit status", code, uint32(5)))
	}) {
		return
	}
	pid := p.Pid()
	s.check("process.Delete returns 5, the output is exactly from-exec", func() error {
		st, err := p.Delete(s.ctx)
		if err != nil {
			return wrap("process Delete", err)
		}
		return firstErr(same("process.Delete exit status", st.ExitCode(), uint32(5)),
			same("output", out.String(), "from-exec\n"))
	})
	var list []taskEvent
	if s.check("events: /tasks/exec-added, /tasks/exec-started (Pid), /tasks/exit (ID x1, Pid, ExitStatus 5) for the exec, decoded", func() error {
		isX1 := func(e taskEvent) bool { _, proc := eventOwner(e.ev); return proc == "x1" }
		var err error
		if list, err = s.eventsFor(r.id, isX1, "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit"); err != nil {
			return err
		}
		if _, err := one(list, "/tasks/exec-added"); err != nil {
			return err
		}
		var errs []error
		if v, err := one(list, "/tasks/exec-started"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskExecStarted); !ok {
			errs = append(errs, fmt.Errorf("/tasks/exec-started carries %T", v))
		} else {
			errs = append(errs, same("TaskExecStarted.Pid", e.Pid, pid))
		}
		if v, err := one(list, "/tasks/exit"); err != nil {
			errs = append(errs, err)
		} else if e, ok := v.(*eventstypes.TaskExit); !ok {
			errs = append(errs, fmt.Errorf("/tasks/exit carries %T", v))
		} else {
			errs = append(errs, same("TaskExit.Pid", e.Pid, pid), same("TaskExit.ExitStatus", e.ExitStatus, uint32(5)))
		}
		return firstErr(errs...)
	}) {
		s.check("events: /tasks/exec-added, then /tasks/exec-started, then /tasks/exit of the exec (never the exit before the start)", func() error {
			return inOrder(list, "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit")
		})
	}
}

// checkCloseIO: cat exec'd with a stdin that never ends by itself; CloseIO(WithStdinCloser)
// is what ends it.
func (s *suite) checkCloseIO(r *run) {
	var p containerd.Process
	var out syncBuffer
	var exitC <-chan containerd.ExitStatus
	if !s.check("CloseIO: exec'd cat echoes abc from stdin and keeps running", func() error {
		spec, err := s.execSpec(r, "cat")
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		r.closers = append(r.closers, pw) // never closed before cleanup: EOF can only come from CloseIO
		if p, err = r.t.Exec(s.ctx, "cat1", spec, cio.NewCreator(cio.WithStreams(pr, &out, nil))); err != nil {
			return wrap("Exec", err)
		}
		r.procs = append(r.procs, p)
		if exitC, err = p.Wait(s.ctx); err != nil {
			return wrap("Wait", err)
		}
		if err := p.Start(s.ctx); err != nil {
			return wrap("Start", err)
		}
		go pw.Write([]byte("abc")) // blocks until cio's stdin copy takes it
		if err := poll(eventTimeout, func() error { return same("output so far", out.String(), "abc") }); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		return s.status(p, containerd.Running)
	}) {
		return
	}
	s.check("CloseIO(WithStdinCloser): cat exits 0, process.Delete returns 0, output exactly abc", func() error {
		if err := p.CloseIO(s.ctx, containerd.WithStdinCloser); err != nil {
			return wrap("CloseIO", err)
		}
		code, err := waitExit(exitC)
		if err != nil {
			return err
		}
		st, err := p.Delete(s.ctx)
		if err != nil {
			return wrap("process Delete", err)
		}
		return firstErr(same("exit status", code, uint32(0)), same("process.Delete exit status", st.ExitCode(), uint32(0)),
			same("output", out.String(), "abc"))
	})
}

// checkProtected: the raw services refuse to remove what a running task uses.
func (s *suite) checkProtected(r *run) {
	s.check("raw Containers.Delete of a running task's container: FailedPrecondition, container kept", func() error {
		err := s.client.ContainerService().Delete(s.ctx, r.id)
		if err := wantFailedPrecondition(err); err != nil {
			return err
		}
		_, err = s.client.ContainerService().Get(s.ctx, r.id)
		return wrap("Get after the refused Delete", err)
	})
	s.check("raw Snapshots.Remove of a running task's rootfs: FailedPrecondition, snapshot kept", func() error {
		sn := s.client.SnapshotService(r.sn)
		if err := wantFailedPrecondition(sn.Remove(s.ctx, r.key)); err != nil {
			return err
		}
		_, err := sn.Stat(s.ctx, r.key)
		return firstErr(wrap("Stat after the refused Remove", err), s.status(r.t, containerd.Running))
	})
}

// checkUnimplemented: Strata's known gaps answer codes.Unimplemented (not a crash, not a lie).
func (s *suite) checkUnimplemented(r *run) {
	s.check("known gap: Tasks.Metrics is codes.Unimplemented (task.Metrics too)", func() error {
		_, err := s.client.TaskService().Metrics(s.ctx, &tasks.MetricsRequest{Filters: []string{"id==" + r.id}})
		if code := status.Code(err); code != codes.Unimplemented {
			return fmt.Errorf("Tasks.Metrics: code %v (%v), want Unimplemented", code, err)
		}
		_, err = r.t.Metrics(s.ctx)
		return wrap("task.Metrics", wantUnimplemented(err))
	})
	s.check("known gap: task.Checkpoint is codes.Unimplemented, the task runs on (resumed)", func() error {
		_, err := r.t.Checkpoint(s.ctx)
		return firstErr(wrap("task.Checkpoint", wantUnimplemented(err)), s.status(r.t, containerd.Running))
	})
}

func main() {
	addr := flag.String("a", "", "strata-proxy runtime socket (--runtime-address)")
	img := flag.String("image", "it/task:1", "test image (integration/task_image.sh), imported in the namespace")
	sns := flag.String("snapshotters", "strata-overlay", "comma-separated snapshotters to run a task on")
	ns := flag.String("namespace", "task-client", "namespace to work in")
	timeout := flag.Duration("timeout", 5*time.Minute, "deadline for the checks (cleanup has its own 2 min)")
	flag.Parse()
	var list []string
	for _, sn := range strings.Split(*sns, ",") {
		if sn = strings.TrimSpace(sn); sn != "" {
			list = append(list, sn)
		}
	}
	if *addr == "" || flag.NArg() > 0 || len(list) == 0 {
		fmt.Fprintln(os.Stderr, "usage: task-client -a SOCKET [-image REF] [-snapshotters A,B] [-namespace NS] [-timeout D]")
		os.Exit(2)
	}
	root, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	cleanRoot, cancelClean := context.WithTimeout(context.Background(), *timeout+2*time.Minute)
	defer cancelClean()
	s := &suite{
		ns: *ns, imgRef: *img, sns: list, prefix: fmt.Sprintf("tc-%d-", os.Getpid()),
		ctx: namespaces.WithNamespace(root, *ns), cleanCtx: namespaces.WithNamespace(cleanRoot, *ns),
	}
	if s.check("connect", func() (err error) { s.client, err = containerd.New(*addr); return err }) {
		s.run()
		s.check("cleanup", s.cleanup)
		s.client.Close()
	}
	fmt.Printf("%d passed, %d failed\n", s.passed, s.failed)
	if s.failed > 0 {
		os.Exit(1)
	}
}
