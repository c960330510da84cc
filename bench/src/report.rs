//! Results as a terminal table, JSON, and an SVG chart of the ratios.
//!
//! Every ratio is Strata's advantage (see [`Measurement::ratio`]): strata/containerd for rates,
//! containerd/strata for latencies, so > 1.0 always means Strata did better.

use std::fmt::Write as _;

use serde_json::json;

use crate::stats::Measurement;
use crate::workloads::suites::DURABILITY;
use crate::{Args, machine_line};

/// How the ratio column is computed, printed under the table and in the chart.
pub const RATIO_RULE: &str = "ratio = Strata's advantage on medians: strata/containerd for rates \
(higher is better), containerd/strata for latencies (lower is better); > 1.00x = Strata better";

/// Prints the table, the durability notes and `notes`, then writes `--json` and `--svg`.
pub fn write_all(args: &Args, ms: &[Measurement], notes: &[String]) -> anyhow::Result<()> {
    println!("\n{}", table(ms));
    println!("{RATIO_RULE}");
    for line in DURABILITY {
        println!("durability: {line}");
    }
    for n in notes {
        println!("note: {n}");
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&json(args, ms, notes))?)?;
        println!("json: {}", p.display());
    }
    if let Some(p) = &args.svg {
        let title = if args.quick {
            "Strata vs containerd 1.6 (--quick: sizes too small to mean anything)"
        } else {
            "Strata vs containerd 1.6"
        };
        std::fs::write(p, svg(ms, title))?;
        println!("svg: {}", p.display());
    }
    Ok(())
}

/// The JSON document: run description, durability notes, and per workload the raw samples,
/// summaries and ratio.
pub fn json(args: &Args, ms: &[Measurement], notes: &[String]) -> serde_json::Value {
    let results: Vec<_> = ms
        .iter()
        .map(|m| {
            json!({
                "group": m.group,
                "workload": m.workload,
                "backend": m.backend,
                "unit": m.unit,
                "higher_is_better": m.higher_is_better,
                "samples": m.samples,
                "summary": {
                    "strata": m.summary("strata"),
                    "containerd": m.summary("containerd"),
                },
                "ratio": m.ratio(),
                "notes": m.notes,
            })
        })
        .collect();
    json!({
        "machine": machine_line(args),
        "quick": args.quick,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "ratio_rule": RATIO_RULE,
        "durability": DURABILITY,
        "notes": notes,
        "results": results,
    })
}

/// Formats a value with precision suited to its size.
fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The workload column: name, unit and, for latencies, the direction.
fn label(m: &Measurement) -> String {
    if m.higher_is_better {
        format!("{} [{}]", m.workload, m.unit)
    } else {
        format!("{} [{}, lower is better]", m.workload, m.unit)
    }
}

/// The terminal table: medians, ranges and Strata's advantage per workload, by group.
pub fn table(ms: &[Measurement]) -> String {
    let mut out = String::new();
    let row = |out: &mut String, cells: [&str; 7]| {
        let _ = writeln!(
            out,
            "{:<62} {:<8} {:>9} {:>21} {:>10} {:>21} {:>7}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        );
    };
    row(
        &mut out,
        [
            "workload [unit]",
            "backend",
            "strata",
            "(min..max)",
            "containerd",
            "(min..max)",
            "ratio",
        ],
    );
    let mut group = "";
    for m in ms {
        if m.group != group {
            group = &m.group;
            let _ = writeln!(out, "-- {group}");
        }
        let cell = |t: &str| match m.summary(t) {
            Some(s) => (num(s.median), format!("({}..{})", num(s.min), num(s.max))),
            None => ("-".into(), String::new()),
        };
        let (sm, sr) = cell("strata");
        let (cm, cr) = cell("containerd");
        let ratio = m.ratio().map_or_else(|| "-".into(), |r| format!("{r:.2}x"));
        row(
            &mut out,
            [&label(m), &m.backend, &sm, &sr, &cm, &cr, &ratio],
        );
        for n in &m.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    out
}

/// Layout of the chart.
const LEFT: f64 = 620.0;
const WIDTH: f64 = 460.0;
const BAR: f64 = 18.0;
const GAP: f64 = 6.0;
const HEADER: f64 = 26.0;
const TOP: f64 = 78.0;

/// Bars of Strata's advantage per workload, grouped, on a log2 axis centred on parity (1x):
/// right of the line Strata is better, left containerd is.
pub fn svg(ms: &[Measurement], title: &str) -> String {
    let rows: Vec<(&Measurement, f64)> = ms.iter().filter_map(|m| Some((m, m.ratio()?))).collect();
    let (lo, hi) = axis(rows.iter().map(|r| r.1));
    let x = |r: f64| LEFT + (r.log2() - lo) / (hi - lo) * WIDTH;
    let mut body = String::new();
    let mut y = TOP;
    let mut group = "";
    for (m, r) in &rows {
        if m.group != group {
            group = &m.group;
            y += 6.0;
            let _ = writeln!(
                body,
                r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#,
                y + 14.0,
                escape(group)
            );
            y += HEADER;
        }
        let (a, b) = (x(1.0).min(x(*r)), x(1.0).max(x(*r)));
        let color = if *r >= 1.0 { "#2a9d8f" } else { "#e76f51" };
        let _ = writeln!(
            body,
            r#"<text x="{lx}" y="{ty:.1}" text-anchor="end">{} [{}, {}]</text><rect x="{a:.1}" y="{y:.1}" width="{w:.1}" height="{BAR}" fill="{color}"/><text x="{vx:.1}" y="{ty:.1}">{r:.2}x</text>"#,
            escape(&m.workload),
            escape(m.unit),
            m.direction(),
            lx = LEFT - 70.0,
            ty = y + 13.0,
            w = (b - a).max(1.0),
            vx = b + 4.0,
        );
        let _ = writeln!(
            body,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="dimgray">{}</text>"#,
            LEFT - 8.0,
            y + 13.0,
            escape(&m.backend)
        );
        y += BAR + GAP;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h:.0}" font-family="sans-serif" font-size="12">"#,
        w = LEFT + WIDTH + 70.0,
        h = y + 50.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="42">Bar = Strata's advantage (median of rounds): strata/containerd for rates (higher is better),</text><text x="10" y="58">containerd/strata for latencies (lower is better). Right of 1x: Strata better; left: containerd better. Log scale.</text>"#
    );
    s.push_str(&ticks(lo, hi, &x, y));
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

/// The log2 range of the axis: whole powers of two covering every ratio and at least 1/2..2.
fn axis(ratios: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (-1.0f64, 1.0f64);
    for r in ratios {
        lo = lo.min(r.log2().floor());
        hi = hi.max(r.log2().ceil());
    }
    (lo.max(-10.0), hi.min(10.0))
}

/// Grid lines and labels at every power of two, the parity line dashed.
fn ticks(lo: f64, hi: f64, x: &dyn Fn(f64) -> f64, bottom: f64) -> String {
    let mut s = String::new();
    let mut e = lo;
    while e <= hi {
        let r = e.exp2();
        let px = x(r);
        let (stroke, dash) = if e == 0.0 {
            ("black", r#" stroke-dasharray="4 3""#)
        } else {
            ("#ddd", "")
        };
        let text = if r >= 1.0 {
            format!("{r}x")
        } else {
            format!("1/{}x", (1.0 / r).round())
        };
        let _ = writeln!(
            s,
            r#"<line x1="{px:.1}" y1="{top}" x2="{px:.1}" y2="{bottom:.1}" stroke="{stroke}"{dash}/><text x="{px:.1}" y="{ty:.1}" text-anchor="middle" fill="dimgray">{text}</text>"#,
            top = TOP - 4.0,
            ty = bottom + 16.0,
        );
        e += 1.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">Strata's advantage over containerd 1.6 (log scale)</text>"#,
        x(1.0),
        bottom + 34.0
    );
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(group: &str, s: f64, c: f64, higher: bool) -> Measurement {
        let samples = [
            ("strata".to_string(), vec![s]),
            ("containerd".to_string(), vec![c]),
        ]
        .into();
        Measurement::new(group, "w<1>".into(), "overlay", "ms", higher, samples)
    }

    #[test]
    fn table_groups_and_orients_latency_ratios() {
        let t = table(&[m("a", 2.0, 4.0, false), m("b", 2.0, 4.0, true)]);
        assert!(t.contains("-- a\n") && t.contains("-- b\n"));
        assert!(t.contains("[ms, lower is better]"));
        assert!(t.contains("2.00x") && t.contains("0.50x"));
    }

    #[test]
    fn svg_is_escaped_labelled_and_log_scaled() {
        let s = svg(&[m("g", 1.0, 8.0, false), m("g", 1.0, 8.0, true)], "t");
        assert!(s.contains("w&lt;1&gt;") && !s.contains("w<1>"));
        assert!(s.contains("lower is better") && s.contains("higher is better"));
        assert!(s.contains(">8x<") && s.contains(">1/8x<"));
        assert_eq!(axis([0.3, 5.0].into_iter()), (-2.0, 3.0));
    }
}
