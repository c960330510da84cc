//! The client's settings, as the daemon's TOML carries them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How registries are reached.
///
/// ```toml
/// plain_http = ["127.0.0.1:5000"]
/// request_timeout_ms = 30000
/// [hosts."registry.example:443"]
/// ca_file = "/etc/strata/registry-ca.pem"
/// username = "puller"
/// password = "secret"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Hosts (`host[:port]`, as in image references) reached over plain HTTP; every other host
    /// is reached over HTTPS only.
    pub plain_http: Vec<String>,
    /// Per-host settings, by `host[:port]`.
    pub hosts: BTreeMap<String, HostConfig>,
    /// The bound on connecting and receiving a response's headers, and on each read of a
    /// body, in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            plain_http: Vec::new(),
            hosts: BTreeMap::new(),
            request_timeout_ms: 30_000,
        }
    }
}

impl RegistryConfig {
    /// The request timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// Whether `host` is reached over plain HTTP.
    pub fn is_plain_http(&self, host: &str) -> bool {
        self.plain_http.iter().any(|h| h == host)
    }
}

/// Settings of one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// A PEM file of CA certificates trusted for this host, besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The user name for Basic auth, or for getting bearer tokens from the token realm.
    pub username: Option<String>,
    /// The password going with `username`.
    pub password: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_from_toml_with_defaults() {
        let c: RegistryConfig = toml::from_str(
            r#"
            plain_http = ["127.0.0.1:5000"]
            [hosts."r.example:8443"]
            ca_file = "/tmp/ca.pem"
            username = "u"
            password = "p"
            "#,
        )
        .unwrap();
        assert!(c.is_plain_http("127.0.0.1:5000"));
        assert!(!c.is_plain_http("r.example:8443"));
        assert_eq!(c.timeout(), Duration::from_secs(30));
        let h = &c.hosts["r.example:8443"];
        assert_eq!(h.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(h.username.as_deref(), Some("u"));
        assert!(toml::from_str::<RegistryConfig>("plain = []").is_err());
    }
}
