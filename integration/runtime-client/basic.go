package main

import (
	"fmt"
	"regexp"
	"time"

	"github.com/containerd/containerd/leases"
	digest "github.com/opencontainers/go-digest"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (s *suite) checkVersion() {
	s.check("version", func() error {
		v, err := s.client.Version(s.base)
		if err != nil {
			return wrap("Version", err)
		}
		if v.Version == "" || v.Revision == "" {
			return fmt.Errorf("Version = %+v, want version and revision", v)
		}
		return nil
	})
	s.check("server-uuid", func() error {
		a, err := s.client.Server(s.base)
		if err != nil {
			return wrap("Server", err)
		}
		if !uuidRE.MatchString(a.UUID) {
			return fmt.Errorf("UUID %q is not a UUID", a.UUID)
		}
		b, err := s.client.Server(s.base)
		return firstErr(wrap("second Server", err), same("second UUID", b.UUID, a.UUID))
	})
}

func (s *suite) checkNamespaces() {
	nss := s.client.NamespaceService()
	name := s.ns + "-ns"
	s.check("namespaces/create-setlabel-labels", func() error {
		if err := nss.Create(s.base, name, map[string]string{"rc.a": "1"}); err != nil {
			return wrap("Create", err)
		}
		s.onCleanup(func() error { return nss.Delete(s.base, name) })
		if err := nss.SetLabel(s.base, name, "rc.b", "2"); err != nil {
			return wrap("SetLabel", err)
		}
		got, err := nss.Labels(s.base, name)
		return firstErr(wrap("Labels", err), sameLabels(name, got, map[string]string{"rc.a": "1", "rc.b": "2"}))
	})
	s.check("namespaces/create-duplicate", func() error {
		return wantAlreadyExists(nss.Create(s.base, name, nil))
	})
	s.check("namespaces/list", func() error {
		list, err := nss.List(s.base)
		if err != nil {
			return wrap("List", err)
		}
		if !contains(list, name) || !contains(list, s.ns) {
			return fmt.Errorf("List = %v, want %s and %s in it", list, name, s.ns)
		}
		return nil
	})
	s.check("namespaces/delete-nonempty", func() error { return s.deleteNonEmptyNamespace(name) })
	s.check("namespaces/delete-empty", func() error {
		if err := nss.Delete(s.base, name); err != nil {
			return wrap("Delete", err)
		}
		list, err := nss.List(s.base)
		if err != nil {
			return wrap("List", err)
		}
		if contains(list, name) {
			return fmt.Errorf("List = %v still has %s", list, name)
		}
		return wrap("second Delete", wantNotFound(nss.Delete(s.base, name)))
	})
}

// deleteNonEmptyNamespace: a namespace holding a blob cannot go; once the blob is
// deleted it can (the caller checks).
func (s *suite) deleteNonEmptyNamespace(name string) error {
	ctx := s.inNamespace(name)
	cs := s.client.ContentStore()
	desc, err := s.writeBlob(ctx, "namespace "+name, map[string]string{gcRoot: "1"})
	if err != nil {
		return err
	}
	s.onCleanup(func() error { return cs.Delete(ctx, desc.Digest) })
	if err := wantFailedPrecondition(s.client.NamespaceService().Delete(s.base, name)); err != nil {
		return wrap("Delete with a blob", err)
	}
	if _, err := s.client.NamespaceService().Labels(s.base, name); err != nil {
		return wrap("Labels after refused Delete", err)
	}
	_, err = cs.Info(ctx, desc.Digest)
	return firstErr(wrap("Info after refused Delete", err), wrap("content Delete", cs.Delete(ctx, desc.Digest)))
}

func (s *suite) checkLeases() {
	ls := s.client.LeasesService()
	filter := `labels."rc.lease"==probe`
	var l leases.Lease
	if !s.check("leases/create", func() (err error) {
		start := time.Now()
		l, err = s.newLease(s.base, leases.WithLabels(map[string]string{"rc.lease": "probe"}))
		if err != nil {
			return err
		}
		return checkLease(l, start)
	}) {
		return
	}
	s.check("leases/create-duplicate", func() error {
		_, err := ls.Create(s.base, leases.WithID(l.ID))
		return wantAlreadyExists(err)
	})
	s.check("leases/list-filter", func() error {
		return firstErr(s.wantLeases(filter, l.ID), s.wantLeases("id=="+l.ID, l.ID), s.wantLeases(`labels."rc.lease"==other`))
	})
	s.check("leases/resources", func() error { return s.leaseResources(l) })
	s.check("leases/delete-sync", func() error {
		if err := ls.Delete(s.base, l, leases.SynchronousDelete); err != nil {
			return wrap("Delete", err)
		}
		return firstErr(s.wantLeases(filter), wrap("second Delete", wantNotFound(ls.Delete(s.base, l))))
	})
}

// checkLease verifies a lease created at start with label rc.lease and a one-hour expiry.
func checkLease(l leases.Lease, start time.Time) error {
	if l.ID == "" || l.CreatedAt.IsZero() {
		return fmt.Errorf("lease = %+v, want an ID and CreatedAt", l)
	}
	if l.Labels["rc.lease"] != "probe" {
		return fmt.Errorf("labels = %v, want rc.lease=probe", l.Labels)
	}
	exp, err := time.Parse(time.RFC3339, l.Labels[gcExpire])
	if err != nil {
		return fmt.Errorf("label %s: %v", gcExpire, err)
	}
	if d := exp.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
		return fmt.Errorf("%s = %s, want about an hour after %s", gcExpire, exp, start)
	}
	return nil
}

// wantLeases lists leases with filter and compares their IDs with want.
func (s *suite) wantLeases(filter string, want ...string) error {
	list, err := s.client.LeasesService().List(s.base, filter)
	if err != nil {
		return wrap("List "+filter, err)
	}
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	return sameSet("List "+filter, ids, want)
}

// leaseResources adds a content and a snapshot resource, lists, deletes one, lists.
func (s *suite) leaseResources(l leases.Lease) error {
	ls := s.client.LeasesService()
	blob := leases.Resource{ID: digest.FromString("rc resource").String(), Type: "content"}
	snap := leases.Resource{ID: "rc-resource-snapshot", Type: "snapshots/" + s.sn}
	for _, r := range []leases.Resource{blob, snap} {
		if err := ls.AddResource(s.base, l, r); err != nil {
			return wrap("AddResource "+r.Type, err)
		}
	}
	if err := s.wantResources(l, blob, snap); err != nil {
		return err
	}
	if err := ls.DeleteResource(s.base, l, blob); err != nil {
		return wrap("DeleteResource", err)
	}
	return s.wantResources(l, snap)
}

// wantResources compares a lease's resources with want.
func (s *suite) wantResources(l leases.Lease, want ...leases.Resource) error {
	got, err := s.client.LeasesService().ListResources(s.base, l)
	if err != nil {
		return wrap("ListResources", err)
	}
	return sameSet("ListResources", resourceNames(got), resourceNames(want))
}

func resourceNames(rs []leases.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+":"+r.ID)
	}
	return out
}

// leaseHas fails unless lease l holds resource r.
func (s *suite) leaseHas(l leases.Lease, r leases.Resource) error {
	got, err := s.client.LeasesService().ListResources(s.base, l)
	if err != nil {
		return wrap("ListResources", err)
	}
	if !contains(resourceNames(got), r.Type+":"+r.ID) {
		return fmt.Errorf("lease %s resources = %v, want %s:%s in them", l.ID, resourceNames(got), r.Type, r.ID)
	}
	return nil
}
