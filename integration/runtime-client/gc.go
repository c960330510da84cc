package main

import (
	"context"
	"encoding/json"

	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/snapshots"
	digest "github.com/opencontainers/go-digest"
	imagespec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tempLease creates a lease that the caller deletes with releaseLease (cleanup deletes
// it too, should the check stop before).
func (s *suite) tempLease() (leases.Lease, context.Context, error) {
	l, err := s.newLease(s.base)
	return l, leases.WithLease(s.base, l.ID), err
}

// releaseLease deletes l and waits for the garbage collection it triggers.
func (s *suite) releaseLease(l leases.Lease) error {
	return wrap("delete lease "+l.ID, s.client.LeasesService().Delete(s.base, l, leases.SynchronousDelete))
}

// syncGC runs a synchronous garbage collection the way clients do: by deleting a lease
// with SynchronousDelete.
func (s *suite) syncGC() error {
	l, _, err := s.tempLease()
	if err != nil {
		return err
	}
	return s.releaseLease(l)
}

// wantBlobs checks each blob is present (present=true) or NotFound.
func (s *suite) wantBlobs(present bool, descs ...ocispec.Descriptor) error {
	for _, d := range descs {
		_, err := s.client.ContentStore().Info(s.base, d.Digest)
		if present && err != nil {
			return wrap("Info "+d.Digest.String(), err)
		}
		if !present {
			if err := wantNotFound(err); err != nil {
				return wrap("Info "+d.Digest.String(), err)
			}
		}
	}
	return nil
}

// wantSnapshotsPresent checks each snapshot is present (present=true) or NotFound.
func (s *suite) wantSnapshotsPresent(present bool, keys ...string) error {
	for _, k := range keys {
		_, err := s.client.SnapshotService(s.sn).Stat(s.base, k)
		if present && err != nil {
			return wrap("Stat "+k, err)
		}
		if !present {
			if err := wantNotFound(err); err != nil {
				return wrap("Stat "+k, err)
			}
		}
	}
	return nil
}

// checkGCLease: a blob and a snapshot held only by a lease go with the lease.
func (s *suite) checkGCLease() {
	s.check("gc/lease-delete-collects", func() error {
		l, lctx, err := s.tempLease()
		if err != nil {
			return err
		}
		desc, err := s.writeBlob(lctx, "gc lease", nil)
		if err != nil {
			return err
		}
		const key = "rc-gc-leased"
		if _, err := s.client.SnapshotService(s.sn).Prepare(lctx, key, ""); err != nil {
			return wrap("Prepare", err)
		}
		s.removeLater(s.base, key)
		s.onCleanup(func() error { return s.client.ContentStore().Delete(s.base, desc.Digest) })
		if err := firstErr(s.wantBlobs(true, desc), s.wantSnapshotsPresent(true, key), s.releaseLease(l)); err != nil {
			return err
		}
		return firstErr(s.wantBlobs(false, desc), s.wantSnapshotsPresent(false, key))
	})
}

// checkGCRoot: an unreferenced blob labelled gc.root survives a synchronous GC that
// removes an unreferenced blob without it.
func (s *suite) checkGCRoot() {
	s.check("gc/root-label-survives", func() error {
		root, err := s.writeBlob(s.base, "gc root", map[string]string{gcRoot: "yes"})
		if err != nil {
			return err
		}
		s.onCleanup(func() error { return s.client.ContentStore().Delete(s.base, root.Digest) })
		loose, err := s.writeBlob(s.base, "gc loose", nil)
		if err != nil {
			return err
		}
		s.onCleanup(func() error { return s.client.ContentStore().Delete(s.base, loose.Digest) })
		return firstErr(s.syncGC(), s.wantBlobs(true, root), wrap("unlabelled blob", s.wantBlobs(false, loose)))
	})
}

// imageBlobs writes a layer, a config and a manifest referring to both through
// gc.ref.content labels, under ctx; it returns manifest, config, layer.
func (s *suite) imageBlobs(ctx context.Context) ([]ocispec.Descriptor, error) {
	layer, err := s.writeBytes(ctx, ocispec.MediaTypeImageLayer, s.blobData("layer"), nil)
	if err != nil {
		return nil, err
	}
	cfg, _ := json.Marshal(ocispec.Image{Architecture: "amd64", OS: "linux", RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	config, err := s.writeBytes(ctx, ocispec.MediaTypeImageConfig, cfg, nil)
	if err != nil {
		return nil, err
	}
	mf, _ := json.Marshal(ocispec.Manifest{Versioned: imagespec.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: []ocispec.Descriptor{layer}})
	manifest, err := s.writeBytes(ctx, ocispec.MediaTypeImageManifest, mf, map[string]string{
		"containerd.io/gc.ref.content.config": config.Digest.String(),
		"containerd.io/gc.ref.content.l.0":    layer.Digest.String(),
	})
	return []ocispec.Descriptor{manifest, config, layer}, err
}

// checkGCImage: an image keeps its manifest and, through the manifest's labels, the
// config and layer; deleting the image synchronously collects all three.
func (s *suite) checkGCImage() {
	is := s.client.ImageService()
	name := "runtime-client.test/gc:" + s.ns
	var blobs []ocispec.Descriptor
	if !s.check("gc/image-keeps-refs", func() error {
		l, lctx, err := s.tempLease()
		if err != nil {
			return err
		}
		if blobs, err = s.imageBlobs(lctx); err != nil {
			return err
		}
		for _, d := range blobs {
			d := d
			s.onCleanup(func() error { return s.client.ContentStore().Delete(s.base, d.Digest) })
		}
		if _, err := is.Create(s.base, images.Image{Name: name, Target: blobs[0]}); err != nil {
			return wrap("image Create", err)
		}
		s.onCleanup(func() error { return is.Delete(s.base, name) })
		return firstErr(s.releaseLease(l), s.wantBlobs(true, blobs...))
	}) {
		return
	}
	s.check("gc/image-delete-collects", func() error {
		if err := is.Delete(s.base, name, images.SynchronousDelete()); err != nil {
			return wrap("image Delete", err)
		}
		return s.wantBlobs(false, blobs...)
	})
}

// checkGCContainer: a container keeps its snapshot and that snapshot's parent; once it
// is deleted a synchronous GC collects both.
func (s *suite) checkGCContainer() {
	const id, layer, rootfs = "rc-gc-ctr", "rc-gc-layer", "rc-gc-rootfs"
	if !s.check("gc/container-keeps-snapshots", func() error {
		l, lctx, err := s.tempLease()
		if err != nil {
			return err
		}
		if err := s.snapshotChain(lctx, layer, rootfs); err != nil {
			return err
		}
		if err := s.newContainer(s.base, id, rootfs, nil); err != nil {
			return err
		}
		if err := s.releaseLease(l); err != nil {
			return err
		}
		sn := s.client.SnapshotService(s.sn)
		return firstErr(wantInfo(s.base, sn, rootfs, snapshots.KindActive, layer, nil),
			wantInfo(s.base, sn, layer, snapshots.KindCommitted, "", nil))
	}) {
		return
	}
	s.check("gc/container-delete-collects", func() error {
		if err := s.client.ContainerService().Delete(s.base, id); err != nil {
			return wrap("container Delete", err)
		}
		return firstErr(s.syncGC(), s.wantSnapshotsPresent(false, rootfs, layer))
	})
}

// snapshotChain commits a layer and prepares an active child on it, under ctx.
func (s *suite) snapshotChain(ctx context.Context, layer, child string) error {
	sn := s.client.SnapshotService(s.sn)
	if _, err := sn.Prepare(ctx, layer+"-extract", ""); err != nil {
		return wrap("Prepare layer", err)
	}
	if err := sn.Commit(ctx, layer, layer+"-extract"); err != nil {
		return wrap("Commit layer", err)
	}
	s.removeLater(s.base, layer)
	if _, err := sn.Prepare(ctx, child, layer); err != nil {
		return wrap("Prepare child", err)
	}
	s.removeLater(s.base, child)
	return nil
}
