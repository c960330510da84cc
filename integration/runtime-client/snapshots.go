package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
)

// payload is what the snapshot checks write into a bind-mounted active snapshot.
var payload = make([]byte, 8192)

// mountTypes is the mount type containerd's snapshotter of that kind returns for an
// active snapshot without and with a parent ("" when unknown).
func mountTypes(sn string) (root, child string) {
	switch sn {
	case "strata-overlay", "overlayfs":
		return "bind", "overlay"
	case "strata-native", "native":
		return "bind", "bind"
	case "strata-btrfs", "btrfs":
		return "btrfs", "btrfs"
	}
	return "", ""
}

// wantMounts checks there is one mount of type typ (any type when typ is empty) with a
// source, and for an overlay that it has upperdir/workdir (rw) or not (ro).
func wantMounts(ms []mount.Mount, typ string, rw bool) error {
	if len(ms) != 1 {
		return fmt.Errorf("mounts = %+v, want exactly one", ms)
	}
	m := ms[0]
	if (typ != "" && m.Type != typ) || m.Source == "" {
		return fmt.Errorf("mount = %+v, want type %q with a source", m, typ)
	}
	opts := strings.Join(m.Options, ",")
	switch m.Type {
	case "overlay":
		if !strings.Contains(opts, "lowerdir=") || strings.Contains(opts, "upperdir=") != rw || strings.Contains(opts, "workdir=") != rw {
			return fmt.Errorf("overlay options %q, want lowerdir and upperdir/workdir=%v", opts, rw)
		}
	case "bind":
		if !contains(m.Options, "rbind") || contains(m.Options, "rw") != rw || contains(m.Options, "ro") == rw {
			return fmt.Errorf("bind options %q, want rbind and rw=%v", opts, rw)
		}
	}
	return nil
}

// wantInfo stats key and checks its kind, parent and labels.
func wantInfo(ctx context.Context, sn snapshots.Snapshotter, key string, kind snapshots.Kind, parent string, labels map[string]string) error {
	info, err := sn.Stat(ctx, key)
	if err != nil {
		return wrap("Stat "+key, err)
	}
	return firstErr(same("name", info.Name, key), same("kind", info.Kind, kind), same("parent", info.Parent, parent),
		sameLabels(key, info.Labels, labels))
}

// removeLater registers the removal of snapshot key in ctx.
func (s *suite) removeLater(ctx context.Context, key string) {
	sn := s.client.SnapshotService(s.sn)
	s.onCleanup(func() error { return sn.Remove(ctx, key) })
}

func (s *suite) checkSnapshots() {
	sn := s.client.SnapshotService(s.sn)
	ctx := s.ctx
	rootType, childType := mountTypes(s.sn)
	const active, base, child, view = "rc-active", "rc-base", "rc-child", "rc-view"
	tag := map[string]string{"rc.snap": "yes"}
	wrote := false
	if !s.check("snapshots/prepare-mounts", func() error {
		ms, err := sn.Prepare(ctx, active, "", snapshots.WithLabels(tag))
		if err != nil {
			return wrap("Prepare", err)
		}
		s.removeLater(ctx, active)
		if err := wantMounts(ms, rootType, true); err != nil {
			return err
		}
		again, err := sn.Mounts(ctx, active)
		if err != nil || !reflect.DeepEqual(again, ms) {
			return fmt.Errorf("Mounts = %+v, %v; want %+v as from Prepare", again, err, ms)
		}
		if ms[0].Type == "bind" {
			wrote = true
			return os.WriteFile(filepath.Join(ms[0].Source, "payload"), payload, 0o644)
		}
		return nil
	}) {
		return
	}
	if !s.check("snapshots/commit-stat", func() error {
		if err := sn.Commit(ctx, base, active, snapshots.WithLabels(tag)); err != nil {
			return wrap("Commit", err)
		}
		s.removeLater(ctx, base)
		_, err := sn.Stat(ctx, active)
		return firstErr(wrap("Stat of committed key", wantNotFound(err)),
			wantInfo(ctx, sn, base, snapshots.KindCommitted, "", tag))
	}) {
		return
	}
	s.check("snapshots/prepare-child-mounts", func() error {
		ms, err := sn.Prepare(ctx, child, base)
		if err != nil {
			return wrap("Prepare", err)
		}
		s.removeLater(ctx, child)
		return firstErr(wantMounts(ms, childType, true), wantInfo(ctx, sn, child, snapshots.KindActive, base, nil))
	})
	s.check("snapshots/prepare-existing-key", func() error {
		_, err := sn.Prepare(ctx, child, base)
		return wantAlreadyExists(err)
	})
	s.check("snapshots/walk-filter", func() error {
		return firstErr(s.wantSnapshots(`labels."rc.snap"==yes`, base), s.wantSnapshots("parent=="+base, child),
			s.wantSnapshots("kind==committed", base))
	})
	s.check("snapshots/usage", func() error { return s.wantUsage(base, wrote) })
	s.check("snapshots/update-labels", func() error { return s.updateSnapshotLabels(base, tag) })
	s.check("snapshots/view", func() error { return s.view(view, base, rootType) })
	s.check("snapshots/remove-parent-with-child", func() error {
		if err := wantFailedPrecondition(sn.Remove(ctx, base)); err != nil {
			return err
		}
		_, err := sn.Stat(ctx, base)
		return wrap("Stat after refused Remove", err)
	})
}

// wantSnapshots walks with filter and compares the names with want.
func (s *suite) wantSnapshots(filter string, want ...string) error {
	var got []string
	err := s.client.SnapshotService(s.sn).Walk(s.ctx, func(_ context.Context, i snapshots.Info) error {
		got = append(got, i.Name)
		return nil
	}, filter)
	return firstErr(wrap("Walk "+filter, err), sameSet("Walk "+filter, got, want))
}

// wantUsage: a committed snapshot accounts at least for the payload written into it.
func (s *suite) wantUsage(key string, wrote bool) error {
	u, err := s.client.SnapshotService(s.sn).Usage(s.ctx, key)
	if err != nil {
		return wrap("Usage", err)
	}
	min := int64(0)
	if wrote {
		min = int64(len(payload))
	}
	if u.Size < min || u.Inodes < 1 {
		return fmt.Errorf("Usage = %+v, want size >= %d and inodes >= 1", u, min)
	}
	return nil
}

// updateSnapshotLabels: only the label named in the field paths changes.
func (s *suite) updateSnapshotLabels(key string, tag map[string]string) error {
	sn := s.client.SnapshotService(s.sn)
	want := map[string]string{"rc.new": "1"}
	for k, v := range tag {
		want[k] = v
	}
	info, err := sn.Update(s.ctx, snapshots.Info{Name: key, Labels: map[string]string{"rc.new": "1", "rc.snap": "ignored"}}, "labels.rc.new")
	if err != nil {
		return wrap("Update", err)
	}
	return firstErr(sameLabels("Update result", info.Labels, want),
		wantInfo(s.ctx, sn, key, snapshots.KindCommitted, "", want))
}

// view creates a read-only view of parent, checks it and removes it.
func (s *suite) view(key, parent, typ string) error {
	sn := s.client.SnapshotService(s.sn)
	ms, err := sn.View(s.ctx, key, parent)
	if err != nil {
		return wrap("View", err)
	}
	s.removeLater(s.ctx, key)
	if err := firstErr(wantMounts(ms, typ, false), wantInfo(s.ctx, sn, key, snapshots.KindView, parent, nil)); err != nil {
		return err
	}
	if err := sn.Remove(s.ctx, key); err != nil {
		return wrap("Remove", err)
	}
	_, err = sn.Stat(s.ctx, key)
	return wrap("Stat after Remove", wantNotFound(err))
}
