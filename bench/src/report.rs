//! Results as a terminal table, JSON, and an SVG chart of the ratios.

use std::fmt::Write as _;

use crate::stats::Measurement;

/// The terminal table: medians, ranges and the Strata/containerd ratio per workload.
pub fn table(ms: &[Measurement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:<8} {:>11} {:>23} {:>11} {:>23} {:>7}",
        "workload", "backend", "strata", "(min..max)", "containerd", "(min..max)", "ratio"
    );
    for m in ms {
        let cell = |t: &str| match m.summary(t) {
            Some(s) => (
                format!("{:.1}", s.median),
                format!("({:.1}..{:.1})", s.min, s.max),
            ),
            None => ("-".into(), String::new()),
        };
        let (sm, sr) = cell("strata");
        let (cm, cr) = cell("containerd");
        let ratio = m
            .ratio()
            .map(|r| format!("{r:.2}x"))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<34} {:<8} {:>11} {:>23} {:>11} {:>23} {:>7}",
            format!("{} [{}]", m.workload, m.unit),
            m.backend,
            sm,
            sr,
            cm,
            cr,
            ratio
        );
        for n in &m.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    out
}

/// A horizontal bar per workload: the ratio, with a line at 1.0 (parity).
pub fn svg(ms: &[Measurement], title: &str) -> String {
    let rows: Vec<(String, f64)> = ms
        .iter()
        .filter_map(|m| Some((format!("{} ({})", m.workload, m.backend), m.ratio()?)))
        .collect();
    let max = rows.iter().map(|r| r.1).fold(2.0f64, f64::max) * 1.1;
    let (left, width, bar, gap) = (330.0, 420.0, 22.0, 8.0);
    let height = 60.0 + rows.len() as f64 * (bar + gap) + 30.0;
    let x = |v: f64| left + v / max * width;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">"#,
        w = left + width + 80.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, (label, r)) in rows.iter().enumerate() {
        let y = 50.0 + i as f64 * (bar + gap);
        let color = if *r >= 1.0 { "#2a9d8f" } else { "#e76f51" };
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{bw:.1}" height="{bar}" fill="{color}"/><text x="{vx:.1}" y="{ty}">{r:.2}x</text>"#,
            escape(label),
            lx = left - 8.0,
            ty = y + 15.0,
            bw = x(*r) - left,
            vx = x(*r) + 4.0,
        );
    }
    let bottom = 50.0 + rows.len() as f64 * (bar + gap);
    let _ = writeln!(
        s,
        r#"<line x1="{p:.1}" y1="40" x2="{p:.1}" y2="{bottom}" stroke="black" stroke-dasharray="4 3"/><text x="{p:.1}" y="{ly}" text-anchor="middle">1.0 = containerd (higher is better for Strata)</text>"#,
        p = x(1.0),
        ly = bottom + 18.0
    );
    s.push_str("</svg>\n");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
