package main

import (
	"fmt"

	"github.com/containerd/containerd/images"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *suite) checkImages() {
	is := s.client.ImageService()
	name := "runtime-client.test/" + s.ns + ":v1"
	img := images.Image{
		Name:   name,
		Labels: map[string]string{"rc.kind": "test", "rc.keep": "1"},
		Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(name), Size: 123},
	}
	if !s.check("images/create-get", func() error {
		created, err := is.Create(s.base, img)
		if err != nil {
			return wrap("Create", err)
		}
		s.onCleanup(func() error { return is.Delete(s.base, name) })
		if created.CreatedAt.IsZero() {
			return fmt.Errorf("Create returned no CreatedAt: %+v", created)
		}
		got, err := is.Get(s.base, name)
		return firstErr(wrap("Get", err), sameImage(got, img))
	}) {
		return
	}
	s.check("images/create-duplicate", func() error {
		_, err := is.Create(s.base, img)
		return wantAlreadyExists(err)
	})
	s.check("images/get-missing", func() error {
		_, err := is.Get(s.base, name+"-missing")
		return wantNotFound(err)
	})
	s.check("images/list-filters", func() error {
		return firstErr(s.wantImages("name=="+name, name), s.wantImages(`labels."rc.kind"==test`, name),
			s.wantImages(`labels."rc.kind"==other`), s.wantImages("target.digest=="+img.Target.Digest.String(), name))
	})
	s.check("images/update-fieldpaths", func() error {
		upd := images.Image{Name: name, Labels: map[string]string{"rc.kind": "updated", "rc.new": "x", "rc.keep": "dropped"}}
		got, err := is.Update(s.base, upd, "labels.rc.kind", "labels.rc.new")
		if err != nil {
			return wrap("Update", err)
		}
		want := img
		want.Labels = map[string]string{"rc.kind": "updated", "rc.new": "x", "rc.keep": "1"}
		if err := sameImage(got, want); err != nil {
			return wrap("Update result", err)
		}
		got, err = is.Get(s.base, name)
		return firstErr(wrap("Get", err), sameImage(got, want))
	})
	s.check("images/delete-sync", func() error {
		if err := is.Delete(s.base, name, images.SynchronousDelete()); err != nil {
			return wrap("Delete", err)
		}
		_, err := is.Get(s.base, name)
		return firstErr(wrap("Get after Delete", wantNotFound(err)), s.wantImages("name=="+name))
	})
}

// sameImage compares name, target and labels.
func sameImage(got, want images.Image) error {
	return firstErr(same("name", got.Name, want.Name),
		same("target.digest", got.Target.Digest, want.Target.Digest),
		same("target.size", got.Target.Size, want.Target.Size),
		same("target.mediatype", got.Target.MediaType, want.Target.MediaType),
		sameLabels("image", got.Labels, want.Labels))
}

// wantImages lists images with filter and compares their names with want.
func (s *suite) wantImages(filter string, want ...string) error {
	list, err := s.client.ImageService().List(s.base, filter)
	if err != nil {
		return wrap("List "+filter, err)
	}
	var names []string
	for _, i := range list {
		names = append(names, i.Name)
	}
	return sameSet("List "+filter, names, want)
}
