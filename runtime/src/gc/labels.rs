//! The `containerd.io/gc.*` labels (containerd 1.6 `metadata/gc.go`).

use std::time::{Duration, SystemTime};

use strata_core::labels::Labels;

use super::mark::{Node, Resource};

/// Any value makes a blob or snapshot a root.
pub const ROOT: &str = "containerd.io/gc.root";
/// `…content`, `…content.<x>` or `…content/<x>` = a digest this object keeps.
pub const REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// `…snapshot.<snapshotter>[/<x>]` = a snapshot key this object keeps.
pub const REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";
/// RFC 3339 time after which a lease no longer holds anything.
pub const EXPIRE: &str = "containerd.io/gc.expire";
/// Any value: the lease holds its snapshots' parent chains only, and its blobs alone.
pub const FLAT: &str = "containerd.io/gc.flat";

/// The nodes `labels` reference in namespace `ns`; `snapshotter` maps a name as written in a
/// label to the backend it names (aliases).
pub fn refs(ns: &str, labels: &Labels, snapshotter: &dyn Fn(&str) -> String) -> Vec<Node> {
    let mut out = Vec::new();
    for (k, v) in labels.range(REF_CONTENT.to_string()..) {
        let Some(rest) = k.strip_prefix(REF_CONTENT) else {
            break;
        };
        if rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') {
            out.push(Node::new(Resource::Content, ns, v.clone()));
        }
    }
    for (k, v) in labels.range(REF_SNAPSHOT.to_string()..) {
        let Some(rest) = k.strip_prefix(REF_SNAPSHOT) else {
            break;
        };
        let name = rest.split('/').next().unwrap_or_default();
        out.push(Node::snapshot(ns, &snapshotter(name), v));
    }
    out
}

/// Whether the labels make their object a root.
pub fn is_root(labels: &Labels) -> bool {
    labels.contains_key(ROOT)
}

/// Whether a lease with these labels has expired at `now` (an unparsable time never expires,
/// as containerd logs and ignores it).
pub fn expired(labels: &Labels, now: SystemTime) -> bool {
    let Some(v) = labels.get(EXPIRE) else {
        return false;
    };
    match parse_rfc3339(v) {
        Some(t) => t < now,
        None => {
            tracing::info!(value = %v, "ignoring invalid lease expiration");
            false
        }
    }
}

/// Go 1.19's `time.Parse(time.RFC3339, v)`, which containerd 1.6 reads `gc.expire` with, and no
/// laxer (a value Go rejects never expires): `YYYY-MM-DD`, `T`, a one- or two-digit hour,
/// `:MM:SS`, an optional fraction after `.` or `,`, then `Z` or `±hh:mm` (any two digits each).
fn parse_rfc3339(v: &str) -> Option<SystemTime> {
    let mut c = Cursor {
        b: v.as_bytes(),
        p: 0,
    };
    let year = c.num(4, 4)?;
    let month = c
        .lit(b'-')
        .and_then(|_| c.num(2, 2))
        .filter(|m| (1..=12).contains(m))?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let day = c.lit(b'-').and_then(|_| c.num(2, 2));
    let day = day.filter(|d| (1..=days_in[month as usize - 1]).contains(d))?;
    let hour = c.lit(b'T').and_then(|_| c.num(1, 2)).filter(|h| *h < 24)?;
    let min = c.lit(b':').and_then(|_| c.num(2, 2)).filter(|m| *m < 60)?;
    let sec = c.lit(b':').and_then(|_| c.num(2, 2)).filter(|s| *s < 60)?;
    let mut nanos = 0;
    if matches!(c.peek(0), Some(b'.' | b',')) && c.peek(1).is_some_and(|d| d.is_ascii_digit()) {
        c.p += 1;
        let start = c.p;
        while c.peek(0).is_some_and(|d| d.is_ascii_digit()) {
            c.p += 1;
        }
        let digits = &c.b[start..c.p.min(start + 9)];
        nanos = digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
        nanos *= 10u32.pow(9 - digits.len() as u32);
    }
    let offset = match c.peek(0)? {
        b'Z' => {
            c.p += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            c.p += 1;
            let hh = c.num(2, 2)?;
            let mm = c.lit(b':').and_then(|_| c.num(2, 2))?;
            if sign == b'-' {
                -(hh * 3600 + mm * 60)
            } else {
                hh * 3600 + mm * 60
            }
        }
        _ => return None,
    };
    if c.p != c.b.len() {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
    let whole = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(whole)?
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(whole)?
    };
    t.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// A position in the bytes being parsed.
struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cursor<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.p + ahead).copied()
    }

    fn lit(&mut self, want: u8) -> Option<()> {
        (self.peek(0)? == want).then(|| self.p += 1)
    }

    /// `min..=max` decimal digits (as many as there are, up to `max`).
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.p;
        while self.p - start < max && self.peek(0).is_some_and(|d| d.is_ascii_digit()) {
            self.p += 1;
        }
        let digits = &self.b[start..self.p];
        (digits.len() >= min).then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn content_and_snapshot_refs_follow_containerd_separators() {
        let l = labels(&[
            ("containerd.io/gc.ref.content", "sha256:a"),
            ("containerd.io/gc.ref.content.l.0", "sha256:b"),
            ("containerd.io/gc.ref.content/x", "sha256:c"),
            ("containerd.io/gc.ref.contentx", "sha256:no"),
            ("containerd.io/gc.ref.snapshot.overlayfs", "chain"),
            ("containerd.io/gc.ref.snapshot.native/extra", "k2"),
            ("other", "sha256:no"),
        ]);
        let alias = |n: &str| {
            if n == "overlayfs" {
                "strata-overlay".into()
            } else {
                n.to_string()
            }
        };
        let got = refs("ns", &l, &alias);
        let keys: Vec<(Resource, &str)> = got.iter().map(|n| (n.kind, n.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (Resource::Content, "sha256:a"),
                (Resource::Content, "sha256:b"),
                (Resource::Content, "sha256:c"),
                (Resource::Snapshot, "native/k2"),
                (Resource::Snapshot, "strata-overlay/chain"),
            ]
        );
    }

    /// Unix seconds Go 1.19's `time.Parse(time.RFC3339, …)` gives for these (checked with go).
    #[test]
    fn rfc3339_matches_go() {
        let cases = [
            ("2020-01-01T00:00:00Z", 1_577_836_800i64),
            ("2020-01-01T7:00:00Z", 1_577_862_000),
            ("2020-01-01T00:00:00-01:30", 1_577_842_200),
            ("2020-01-01T00:00:00+25:00", 1_577_746_800),
            ("2020-01-01T00:00:00+99:99", 1_577_474_460),
            ("2020-02-29T00:00:00Z", 1_582_934_400),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
            ("0000-01-01T00:00:00Z", -62_167_219_200),
        ];
        for (v, secs) in cases {
            let want = if secs >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
            } else {
                SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            };
            assert_eq!(parse_rfc3339(v), Some(want), "{v}");
        }
        let half = parse_rfc3339("2020-01-01T00:00:00,5Z").unwrap();
        assert_eq!(
            half,
            parse_rfc3339("2020-01-01T00:00:00Z").unwrap() + Duration::from_millis(500)
        );
        let long = parse_rfc3339("2020-01-01T00:00:00.1234567891Z").unwrap();
        assert_eq!(
            long.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
            123_456_789
        );
        for bad in [
            "2019-02-29T00:00:00Z",
            "2020-01-01T00:00:00+2:00",
            "2020-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiry_is_rfc3339_and_bad_values_never_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert!(expired(&labels(&[(EXPIRE, "2020-01-01T00:00:00Z")]), now));
        assert!(!expired(
            &labels(&[(EXPIRE, "2040-01-01T00:00:00+02:00")]),
            now
        ));
        assert!(!expired(&labels(&[(EXPIRE, "tomorrow")]), now));
        assert!(!expired(&labels(&[]), now));
    }
}
