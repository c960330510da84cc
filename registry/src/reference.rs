//! Image references: which registry host and repository an image lives in.

/// Where an image lives: `host[:port]` and repository (`library/busybox`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub host: String,
    pub repository: String,
}

impl ImageRef {
    /// Parses a reference as containerd writes it (`127.0.0.1:5000/x/y:tag`, `docker.io/x`,
    /// `busybox@sha256:…`), with Docker Hub's defaults.
    pub fn parse(r: &str) -> Option<ImageRef> {
        let name = r.split('@').next()?;
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let registry_like = first.contains('.') || first.contains(':') || first == "localhost";
        let (host, path) = if registry_like {
            (first, rest)
        } else {
            ("docker.io", name)
        };
        let path = strip_tag(path);
        let host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let repository = if host == "registry-1.docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        (!repository.is_empty()).then(|| ImageRef {
            host: host.to_string(),
            repository,
        })
    }
}

/// `name:tag` -> `name` (a `:` after the last `/` is a tag).
fn strip_tag(path: &str) -> &str {
    match path.rfind(':') {
        Some(i) if !path[i..].contains('/') => &path[..i],
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_docker_hub_defaults() {
        let r = |s: &str| ImageRef::parse(s).map(|i| (i.host, i.repository));
        assert_eq!(
            r("127.0.0.1:5000/t/img:1"),
            Some(("127.0.0.1:5000".into(), "t/img".into()))
        );
        assert_eq!(
            r("busybox"),
            Some(("registry-1.docker.io".into(), "library/busybox".into()))
        );
        assert_eq!(
            r("docker.io/library/busybox:latest"),
            Some(("registry-1.docker.io".into(), "library/busybox".into()))
        );
        assert_eq!(
            r("ghcr.io/a/b@sha256:00"),
            Some(("ghcr.io".into(), "a/b".into()))
        );
        assert_eq!(r("localhost/x:tag"), Some(("localhost".into(), "x".into())));
    }
}
