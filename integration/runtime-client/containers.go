package main

import (
	"context"
	"fmt"
	"reflect"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/defaults"
	"github.com/containerd/typeurl"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const specTypeURL = "types.containerd.io/opencontainers/runtime-spec/1/Spec"

// minimalSpec is the smallest OCI runtime spec a container record carries.
func minimalSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"},
		Root:    &specs.Root{Path: "rootfs"},
	}
}

// newContainer creates container id on snapshot key with containerd's client options.
func (s *suite) newContainer(ctx context.Context, id, key string, labels map[string]string) error {
	_, err := s.client.NewContainer(ctx, id,
		containerd.WithSnapshotter(s.sn), containerd.WithSnapshot(key),
		containerd.WithSpec(minimalSpec()), containerd.WithContainerLabels(labels))
	if err != nil {
		return wrap("NewContainer", err)
	}
	s.onCleanup(func() error { return s.client.ContainerService().Delete(ctx, id) })
	return nil
}

func (s *suite) checkContainers() {
	cs := s.client.ContainerService()
	id, key := "rc-ctr", "rc-ctr-rootfs"
	labels := map[string]string{"rc.ctr": "yes"}
	if !s.check("containers/new-container", func() error {
		if _, err := s.client.SnapshotService(s.sn).Prepare(s.ctx, key, ""); err != nil {
			return wrap("Prepare", err)
		}
		s.removeLater(s.ctx, key)
		return s.newContainer(s.ctx, id, key, labels)
	}) {
		return
	}
	s.check("containers/get", func() error {
		c, err := cs.Get(s.base, id)
		return firstErr(wrap("Get", err), s.sameContainer(c, id, key, labels))
	})
	s.check("containers/list-filter", func() error {
		return firstErr(s.wantContainers(`labels."rc.ctr"==yes`, id), s.wantContainers("id=="+id, id),
			s.wantContainers(`labels."rc.ctr"==no`))
	})
	s.check("containers/update-labels", func() error {
		want := map[string]string{"rc.ctr": "yes", "rc.ctr2": "z"}
		c, err := cs.Update(s.base, containers.Container{ID: id, Labels: map[string]string{"rc.ctr2": "z", "rc.ctr": "ignored"}}, "labels.rc.ctr2")
		if err != nil {
			return wrap("Update", err)
		}
		if err := sameLabels("Update result", c.Labels, want); err != nil {
			return err
		}
		c, err = cs.Get(s.base, id)
		return firstErr(wrap("Get", err), s.sameContainer(c, id, key, want))
	})
	s.check("containers/delete", func() error {
		if err := cs.Delete(s.base, id); err != nil {
			return wrap("Delete", err)
		}
		_, err := cs.Get(s.base, id)
		return firstErr(wrap("Get after Delete", wantNotFound(err)), s.wantContainers("id=="+id))
	})
}

// sameContainer checks a container record as NewContainer wrote it.
func (s *suite) sameContainer(c containers.Container, id, key string, labels map[string]string) error {
	if c.Spec == nil {
		return fmt.Errorf("container %s has no spec", id)
	}
	spec, err := typeurl.UnmarshalAny(c.Spec)
	if err != nil {
		return wrap("unmarshal spec", err)
	}
	if !reflect.DeepEqual(spec, minimalSpec()) {
		return fmt.Errorf("spec = %+v, want %+v", spec, minimalSpec())
	}
	if c.CreatedAt.IsZero() || c.UpdatedAt.IsZero() {
		return fmt.Errorf("container = %+v, want CreatedAt and UpdatedAt", c)
	}
	return firstErr(same("id", c.ID, id), same("snapshotter", c.Snapshotter, s.sn), same("snapshot key", c.SnapshotKey, key),
		same("spec type", c.Spec.TypeUrl, specTypeURL), same("runtime", c.Runtime.Name, defaults.DefaultRuntime),
		sameLabels("container", c.Labels, labels))
}

// wantContainers lists containers with filter and compares their IDs with want.
func (s *suite) wantContainers(filter string, want ...string) error {
	list, err := s.client.ContainerService().List(s.base, filter)
	if err != nil {
		return wrap("List "+filter, err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return sameSet("List "+filter, ids, want)
}
