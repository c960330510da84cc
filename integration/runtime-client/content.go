package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/leases"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	gcRoot   = "containerd.io/gc.root"
	gcExpire = "containerd.io/gc.expire"
)

// blobData is the (run-unique) content of the blob called text.
func (s *suite) blobData(text string) []byte {
	return []byte("runtime-client " + s.ns + " " + text)
}

// writeBlob writes blobData(text) as an octet-stream blob with labels.
func (s *suite) writeBlob(ctx context.Context, text string, labels map[string]string) (ocispec.Descriptor, error) {
	return s.writeBytes(ctx, "application/octet-stream", s.blobData(text), labels)
}

// writeBytes writes data with content.WriteBlob; labels are set at commit.
func (s *suite) writeBytes(ctx context.Context, mediaType string, data []byte, labels map[string]string) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ref := "rc-" + desc.Digest.Encoded()[:16]
	err := content.WriteBlob(ctx, s.client.ContentStore(), ref, bytes.NewReader(data), desc, content.WithLabels(labels))
	return desc, wrap("WriteBlob", err)
}

// wantBlob reads desc back in ctx and compares it with data.
func (s *suite) wantBlob(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	got, err := content.ReadBlob(ctx, s.client.ContentStore(), desc)
	if err != nil {
		return wrap("ReadBlob", err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("read back %q, want %q", got, data)
	}
	return nil
}

func (s *suite) checkContent() {
	cs := s.client.ContentStore()
	data := s.blobData("content")
	var desc ocispec.Descriptor
	if !s.check("content/write-under-lease", func() error {
		l, err := s.newLease(s.base)
		if err != nil {
			return err
		}
		desc, err = s.writeBytes(leases.WithLease(s.base, l.ID), "application/octet-stream", data, map[string]string{"rc.x": "y"})
		if err != nil {
			return err
		}
		s.onCleanup(func() error { return cs.Delete(s.base, desc.Digest) })
		return s.leaseHas(l, leases.Resource{ID: desc.Digest.String(), Type: "content"})
	}) {
		return
	}
	s.check("content/info", func() error {
		info, err := cs.Info(s.base, desc.Digest)
		if err != nil {
			return wrap("Info", err)
		}
		if info.CreatedAt.IsZero() || info.UpdatedAt.IsZero() {
			return fmt.Errorf("Info = %+v, want CreatedAt and UpdatedAt", info)
		}
		return firstErr(same("digest", info.Digest, desc.Digest), same("size", info.Size, desc.Size),
			sameLabels("blob", info.Labels, map[string]string{"rc.x": "y"}))
	})
	s.check("content/update-labels-fieldpaths", func() error { return s.updateBlobLabels(desc) })
	s.check("content/read-back", func() error { return s.wantBlob(s.base, desc, data) })
	s.check("content/walk-filter", func() error {
		return firstErr(s.wantWalk(`labels."rc.x"==y`, desc.Digest), s.wantWalk(`labels."rc.x"==n`))
	})
	s.check("content/writer-existing-digest", func() error {
		w, err := cs.Writer(s.base, content.WithRef("rc-dup"), content.WithDescriptor(desc))
		if err == nil {
			w.Close()
		}
		return wantAlreadyExists(err)
	})
	s.check("content/delete", func() error {
		if err := cs.Delete(s.base, desc.Digest); err != nil {
			return wrap("Delete", err)
		}
		_, err := cs.Info(s.base, desc.Digest)
		return wrap("Info after Delete", wantNotFound(err))
	})
}

// updateBlobLabels: only the label named in the field paths changes.
func (s *suite) updateBlobLabels(desc ocispec.Descriptor) error {
	cs := s.client.ContentStore()
	want := map[string]string{"rc.x": "y", "rc.z": "1"}
	info, err := cs.Update(s.base, content.Info{Digest: desc.Digest, Labels: map[string]string{"rc.x": "ignored", "rc.z": "1"}}, "labels.rc.z")
	if err != nil {
		return wrap("Update", err)
	}
	if err := sameLabels("Update result", info.Labels, want); err != nil {
		return err
	}
	info, err = cs.Info(s.base, desc.Digest)
	return firstErr(wrap("Info", err), sameLabels("Info after Update", info.Labels, want))
}

// wantWalk walks the run's namespace with filter and compares the digests with want.
func (s *suite) wantWalk(filter string, want ...digest.Digest) error {
	var got, wanted []string
	err := s.client.ContentStore().Walk(s.base, func(i content.Info) error {
		got = append(got, i.Digest.String())
		return nil
	}, filter)
	if err != nil {
		return wrap("Walk "+filter, err)
	}
	for _, d := range want {
		wanted = append(wanted, d.String())
	}
	return sameSet("Walk "+filter, got, wanted)
}

// checkSharedContent: a blob written in two namespaces is one backend blob seen by
// both; deleting it in one leaves it readable in the other.
func (s *suite) checkSharedContent() {
	cs := s.client.ContentStore()
	other := s.ns + "-b"
	octx := s.inNamespace(other)
	data := s.blobData("shared")
	var desc ocispec.Descriptor
	if !s.check("content/shared-write-both", func() (err error) {
		s.onCleanup(func() error { return s.client.NamespaceService().Delete(s.base, other) })
		for _, ctx := range []context.Context{s.ctx, octx} {
			if desc, err = s.writeBlob(ctx, "shared", map[string]string{gcRoot: "1"}); err != nil {
				return err
			}
			ctx := ctx
			s.onCleanup(func() error { return cs.Delete(ctx, desc.Digest) })
		}
		return firstErr(s.wantBlob(s.base, desc, data), s.wantBlob(octx, desc, data))
	}) {
		return
	}
	s.check("content/shared-delete-one", func() error {
		if err := cs.Delete(s.base, desc.Digest); err != nil {
			return wrap("Delete", err)
		}
		_, err := cs.Info(s.base, desc.Digest)
		if err := wantNotFound(err); err != nil {
			return wrap("Info in deleting namespace", err)
		}
		if _, err := cs.Info(octx, desc.Digest); err != nil {
			return wrap("Info in other namespace", err)
		}
		return wrap("other namespace", s.wantBlob(octx, desc, data))
	})
}
