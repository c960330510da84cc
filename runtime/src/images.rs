//! Images (containerd `metadata/images.go`): a name, a target descriptor and labels. Every
//! image is a garbage collection root keeping its target and what its labels reference.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_core::digest::Digest;
use strata_core::filters::{Adaptor, parse_all};
use strata_core::labels::{Labels, validate, without_empty};
use strata_core::time::{from_nanos, to_nanos};

use crate::gc::mark::{Node, Resource};
use crate::table::{Table, key, prefix};
use crate::{Ctx, Error, Event, Result, Runtime};

pub(crate) const CF: &str = "rt_images";

/// An OCI descriptor (containerd.types.Descriptor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub annotations: Labels,
}

/// An image as the Images service returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub labels: Labels,
    pub target: Descriptor,
    pub created: SystemTime,
    pub updated: SystemTime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(default)]
    pub labels: Labels,
    pub target: Descriptor,
    pub created: i64,
    pub updated: i64,
}

impl Record {
    fn image(self, name: &str) -> Image {
        Image {
            name: name.to_string(),
            labels: self.labels,
            target: self.target,
            created: from_nanos(self.created),
            updated: from_nanos(self.updated),
        }
    }
}

/// Filter fields: `name`, `target.digest`, `target.mediatype`, `labels.<k>`, `annotations.<k>`.
impl Adaptor for Image {
    fn field(&self, path: &[String]) -> Option<String> {
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        match path.first().map(String::as_str)? {
            "name" => non_empty(&self.name),
            "target" => match path.get(1).map(String::as_str)? {
                "digest" => non_empty(&self.target.digest),
                "mediatype" => non_empty(&self.target.media_type),
                _ => None,
            },
            "labels" => self.labels.get(&path[1..].join(".")).cloned(),
            "annotations" => self.target.annotations.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// The image store of the runtime.
pub struct Images {
    rt: Runtime,
    table: Table,
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("image {name:?}: not found"))
}

impl Images {
    pub(crate) fn new(rt: Runtime) -> Self {
        let table = Table::new(rt.db().clone(), CF, "image");
        Images { rt, table }
    }

    pub fn get(&self, ctx: &Ctx, name: &str) -> Result<Image> {
        let rec: Record = self
            .table
            .get(&key(&[&ctx.namespace, name]))?
            .ok_or_else(|| not_found(name))?;
        Ok(rec.image(name))
    }

    /// The namespace's images matching any of `filters`, by name.
    pub fn list(&self, ctx: &Ctx, filters: &[String]) -> Result<Vec<Image>> {
        let filter = parse_all(filters)?;
        let mut out = Vec::new();
        for (name, rec) in self.table.scan::<Record>(&prefix(&[&ctx.namespace]))? {
            let image = rec.image(&name);
            if filter.matches(&image) {
                out.push(image);
            }
        }
        Ok(out)
    }

    /// Creates an image (Created = Updated = now); AlreadyExists for a taken name.
    pub fn create(&self, ctx: &Ctx, mut image: Image) -> Result<Image> {
        validate_image(&mut image)?;
        let _g = self.rt.hold();
        self.rt.ensure_namespace(&ctx.namespace)?;
        let k = key(&[&ctx.namespace, &image.name]);
        if self.table.get::<Record>(&k)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "image {:?}: already exists",
                image.name
            )));
        }
        let now = to_nanos(SystemTime::now());
        self.write(&k, &image, now, now)?;
        let out = self.get(ctx, &image.name)?;
        self.rt.changed([node(ctx, &image.name)], false);
        self.rt.publish(
            &ctx.namespace,
            Event::ImageCreate {
                name: out.name.clone(),
                labels: out.labels.clone(),
            },
        );
        Ok(out)
    }

    /// Updates `image.name` per containerd's field paths: none = replace all, `labels`,
    /// `labels.<k>`, `target`, `annotations`, `annotations.<k>`.
    pub fn update(&self, ctx: &Ctx, image: Image, paths: &[String]) -> Result<Image> {
        if image.name.is_empty() {
            return Err(Error::InvalidArgument(
                "image name is required for update".into(),
            ));
        }
        let _g = self.rt.hold();
        let k = key(&[&ctx.namespace, &image.name]);
        let rec: Record = self.table.get(&k)?.ok_or_else(|| not_found(&image.name))?;
        let created = rec.created;
        let mut updated = rec.image(&image.name);
        if paths.is_empty() {
            updated.labels = image.labels.clone();
            updated.target = image.target.clone();
        }
        for path in paths {
            apply_path(&mut updated, &image, path)?;
        }
        validate_image(&mut updated)?;
        self.write(&k, &updated, created, to_nanos(SystemTime::now()))?;
        let out = self.get(ctx, &image.name)?;
        self.rt.changed([node(ctx, &image.name)], false);
        self.rt.publish(
            &ctx.namespace,
            Event::ImageUpdate {
                name: out.name.clone(),
                labels: out.labels.clone(),
            },
        );
        Ok(out)
    }

    /// Deletes an image; what only it kept becomes garbage.
    pub fn delete(&self, ctx: &Ctx, name: &str) -> Result<()> {
        let _g = self.rt.hold();
        let k = key(&[&ctx.namespace, name]);
        if self.table.get::<Record>(&k)?.is_none() {
            return Err(not_found(name));
        }
        self.table.delete(&k)?;
        self.rt.changed([], true);
        self.rt
            .publish(&ctx.namespace, Event::ImageDelete { name: name.into() });
        Ok(())
    }

    /// Whether namespace `ns` has any image.
    pub(crate) fn any(&self, ns: &str) -> Result<bool> {
        self.table.any(&prefix(&[ns]))
    }

    /// Every image of every namespace: `(namespace, image)` (the collector's roots).
    pub(crate) fn all(&self) -> Result<Vec<(String, Record)>> {
        self.table.scan::<Record>(&[])
    }

    fn write(&self, k: &[u8], image: &Image, created: i64, updated: i64) -> Result<()> {
        let mut target = image.target.clone();
        target.annotations = without_empty(target.annotations);
        let rec = Record {
            labels: without_empty(image.labels.clone()),
            target,
            created,
            updated,
        };
        self.table.put(k, &rec)
    }
}

fn node(ctx: &Ctx, name: &str) -> Node {
    Node::new(Resource::Image, &ctx.namespace, name)
}

fn apply_path(updated: &mut Image, image: &Image, path: &str) -> Result<()> {
    if let Some(k) = path.strip_prefix("labels.") {
        let v = image.labels.get(k).cloned().unwrap_or_default();
        updated.labels.insert(k.to_string(), v);
        return Ok(());
    }
    if let Some(k) = path.strip_prefix("annotations.") {
        let v = image.target.annotations.get(k).cloned().unwrap_or_default();
        updated.target.annotations.insert(k.to_string(), v);
        return Ok(());
    }
    match path {
        "labels" => updated.labels = image.labels.clone(),
        "target" => updated.target = image.target.clone(),
        "annotations" => updated.target.annotations = image.target.annotations.clone(),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "cannot update {path:?} field on image {:?}",
                image.name
            )));
        }
    }
    Ok(())
}

/// containerd's `validateImage`: a name, valid labels, and a target with a valid digest, a
/// positive size and a media type.
fn validate_image(image: &mut Image) -> Result<()> {
    if image.name.is_empty() {
        return Err(Error::InvalidArgument(
            "image name must not be empty".into(),
        ));
    }
    validate(&image.labels)
        .map_err(|e| Error::InvalidArgument(format!("image.labels: {}", e.0)))?;
    let t = &image.target;
    if let Err(e) = Digest::parse(&t.digest) {
        return Err(Error::InvalidArgument(format!(
            "target.digest {:?} invalid: {e}",
            t.digest
        )));
    }
    if t.size <= 0 {
        return Err(Error::InvalidArgument(
            "target.size must be greater than zero".into(),
        ));
    }
    if t.media_type.is_empty() {
        return Err(Error::InvalidArgument(
            "target.mediatype must be set".into(),
        ));
    }
    Ok(())
}
