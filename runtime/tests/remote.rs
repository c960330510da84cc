//! Remote blobs (client 3 of strata-lazy): a layer that a manifest pulled from a registry lists
//! with a TOC digest is answered AlreadyExists at its Write and kept as a record (info, labels,
//! list, delete, GC) while the runtime fills it into the content store in the background.
//! Real RocksDB and content store; the registry is a fetcher serving bytes from memory, held
//! back by a gate so the tests see the state before the fill.

mod common;

use std::collections::HashMap;
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{Env, ctx, digest_of, labels_of};
use strata_core::digest::Digest;
use strata_runtime::{BlobFetcher, Error, Opened};

/// Serves blobs by digest once its gate is open; counts the whole-blob fetches.
#[derive(Default)]
struct GatedRegistry {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    open: Mutex<bool>,
    opened_cv: Condvar,
    fetches: AtomicUsize,
}

impl GatedRegistry {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened_cv.notify_all();
    }
}

impl BlobFetcher for GatedRegistry {
    fn locate(&self, image: &str, digest: &str) -> io::Result<(String, u64)> {
        let blobs = self.blobs.lock().unwrap();
        let b = blobs.get(digest).ok_or(io::ErrorKind::NotFound)?;
        Ok((format!("{image}-located"), b.len() as u64))
    }

    fn open(&self, _image: &str, digest: &str) -> io::Result<Box<dyn Read + Send>> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened_cv.wait(open).unwrap();
        }
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let b = self.blobs.lock().unwrap().get(digest).cloned();
        Ok(Box::new(Cursor::new(b.ok_or(io::ErrorKind::NotFound)?)))
    }
}

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TOC: &str = "containerd.io/snapshot/stargz/toc.digest";

fn layer_bytes() -> Vec<u8> {
    (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect()
}

/// A manifest listing `layer` (with a TOC digest when `toc`), written to `ns` with the labels
/// containerd's fetch gives it (`distribution.source` when `source`).
fn write_manifest(env: &Env, ns: &str, layer: &[u8], toc: bool, source: bool) -> Digest {
    let l = digest_of(layer);
    let ann = if toc {
        format!(r#","annotations":{{"{TOC}":"sha256:22"}}"#)
    } else {
        String::new()
    };
    let m = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"sha256:33","size":2}},"layers":[{{"mediaType":"{GZIP}","digest":"{l}","size":{}{ann}}}]}}"#,
        layer.len()
    );
    let ls = l.to_string();
    let mut labels = vec![("containerd.io/gc.ref.content.l.0", ls.as_str())];
    if source {
        labels.push(("containerd.io/distribution.source.127.0.0.1", "it/img"));
    }
    // As containerd's fetch does: the blob first, its labels by an Update.
    let d = env.write_blob(&ctx(ns), m.as_bytes(), &[]);
    let paths: Vec<String> = labels.iter().map(|(k, _)| format!("labels.{k}")).collect();
    env.rt
        .content()
        .update(&ctx(ns), &d, &labels_of(&labels), &paths)
        .expect("labelling the manifest");
    d
}

fn setup() -> (Env, Arc<GatedRegistry>, Vec<u8>, Digest) {
    let reg = Arc::new(GatedRegistry::default());
    let layer = layer_bytes();
    let d = digest_of(&layer);
    reg.blobs
        .lock()
        .unwrap()
        .insert(d.to_string(), layer.clone());
    (Env::with_fetcher(reg.clone()), reg, layer, d)
}

fn open_layer(env: &Env, ns: &str, d: &Digest, size: usize) -> Result<Opened, Error> {
    env.rt.content().open(
        &ctx(ns),
        &format!("layer-{d}"),
        size as u64,
        Some(d.clone()),
    )
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_servable_layer_is_kept_remote_then_filled_once_with_its_labels() {
    let (env, reg, layer, d) = setup();
    let _g = env.enter();
    let c = ctx("n");
    write_manifest(&env, "n", &layer, true, true);
    let opened = open_layer(&env, "n", &d, layer.len());
    assert!(
        matches!(opened, Err(Error::AlreadyExists(_))),
        "the layer's Write must be answered AlreadyExists"
    );
    let content = env.rt.content();
    let info = content.info(&c, &d).expect("a remote blob has an info");
    assert_eq!(info.size, layer.len() as u64);
    assert!(content.list(&c, &[]).unwrap().iter().any(|i| i.digest == d));
    let filtered = content
        .list(&c, &[format!("digest=={d}")])
        .expect("list with a filter");
    assert_eq!(filtered.len(), 1, "the filter selects the remote blob");
    let up = labels_of(&[("containerd.io/uncompressed", "sha256:44")]);
    content
        .update(&c, &d, &up, &["labels.containerd.io/uncompressed".into()])
        .expect("labels of a remote blob can be updated");
    assert!(content.exists(&c, &d).unwrap());
    // A reader waits for the fill.
    let rt = env.rt.clone();
    let (c2, d2) = (c.clone(), d.clone());
    let reader = std::thread::spawn(move || {
        let r = rt.content().reader(&c2, &d2)?;
        Ok::<_, Error>(r.read_to_vec()?)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!reader.is_finished(), "a reader must wait for the fill");
    reg.release();
    let got = reader.join().unwrap().expect("reading after the fill");
    assert_eq!(got, layer, "the filled blob has the registry's bytes");
    let info = content.info(&c, &d).expect("the filled blob");
    assert_eq!(
        info.labels
            .get("containerd.io/uncompressed")
            .map(String::as_str),
        Some("sha256:44"),
        "labels set while remote are kept by the fill"
    );
    assert_eq!(
        content
            .list(&c, &[])
            .unwrap()
            .iter()
            .filter(|i| i.digest == d)
            .count(),
        1,
        "listed once after the fill"
    );
    assert_eq!(reg.fetches.load(Ordering::SeqCst), 1);
    // Another namespace pulling it now shares the bytes (no fetch, no record).
    write_manifest(&env, "m", &layer, true, true);
    assert!(matches!(
        open_layer(&env, "m", &d, layer.len()),
        Ok(Opened::Shared(_))
    ));
    assert_eq!(reg.fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn layers_without_a_toc_digest_or_a_registry_source_are_written_by_the_client() {
    let (env, reg, layer, d) = setup();
    let _g = env.enter();
    reg.release();
    write_manifest(&env, "a", &layer, false, true);
    assert!(matches!(
        open_layer(&env, "a", &d, layer.len()),
        Ok(Opened::Live(_))
    ));
    write_manifest(&env, "b", &layer, true, false);
    assert!(matches!(
        open_layer(&env, "b", &d, layer.len()),
        Ok(Opened::Live(_))
    ));
    // A size other than the manifest's: not this layer.
    write_manifest(&env, "c", &layer, true, true);
    assert!(matches!(
        open_layer(&env, "c", &d, layer.len() + 1),
        Ok(Opened::Live(_))
    ));
    assert_eq!(reg.fetches.load(Ordering::SeqCst), 0);
}

#[test]
fn gc_takes_an_unreferenced_remote_blob_and_its_fill_keeps_nothing() {
    let (env, reg, layer, d) = setup();
    let _g = env.enter();
    let c = ctx("n");
    let m = write_manifest(&env, "n", &layer, true, true);
    assert!(matches!(
        open_layer(&env, "n", &d, layer.len()),
        Err(Error::AlreadyExists(_))
    ));
    // The manifest (a root here) keeps the layer by its gc.ref label as long as it is there.
    let root = labels_of(&[("containerd.io/gc.root", "1")]);
    env.rt
        .content()
        .update(&c, &m, &root, &["labels.containerd.io/gc.root".into()])
        .unwrap();
    env.collect();
    assert!(env.rt.content().info(&c, &d).is_ok(), "referenced: kept");
    env.rt.content().delete(&c, &m).unwrap();
    let stats = env.collect();
    assert!(
        stats.content >= 1,
        "the remote blob is collected: {stats:?}"
    );
    assert!(matches!(
        env.rt.content().info(&c, &d),
        Err(Error::NotFound(_))
    ));
    reg.release();
    wait_until("the fill ends", || reg.fetches.load(Ordering::SeqCst) == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(env.rt.content().info(&c, &d), Err(Error::NotFound(_))),
        "a fill nobody wants any more is not claimed"
    );
    // The bytes are not kept anywhere: the same layer written again is a live ingest.
    assert!(matches!(
        env.rt
            .content()
            .open(&ctx("other"), "x", layer.len() as u64, Some(d.clone())),
        Ok(Opened::Live(_))
    ));
}

#[test]
fn a_registry_serving_other_bytes_leaves_readers_an_error_not_a_wrong_blob() {
    let (env, reg, layer, d) = setup();
    let _g = env.enter();
    let c = ctx("n");
    let m = write_manifest(&env, "n", &layer, true, true);
    let mut bad = layer.clone();
    bad[1000] ^= 1;
    reg.blobs.lock().unwrap().insert(d.to_string(), bad);
    assert!(matches!(
        open_layer(&env, "n", &d, layer.len()),
        Err(Error::AlreadyExists(_))
    ));
    reg.release();
    wait_until("the first fill attempt", || {
        reg.fetches.load(Ordering::SeqCst) >= 1
    });
    let err = match env.rt.content().reader(&c, &d) {
        Err(e) => e,
        Ok(_) => panic!("a blob that does not match its digest must never be readable"),
    };
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    env.rt.content().delete(&c, &m).unwrap();
    assert!(
        matches!(
            env.rt.namespaces().delete("n"),
            Err(Error::FailedPrecondition(_))
        ),
        "a namespace holding a remote blob is not empty"
    );
    env.rt
        .content()
        .delete(&c, &d)
        .expect("a remote blob can be deleted");
    env.rt
        .namespaces()
        .delete("n")
        .expect("then the namespace is empty");
    assert!(matches!(
        env.rt.content().info(&c, &d),
        Err(Error::NotFound(_))
    ));
}
