//! What a simulation run says: per policy, money and core-hours paid and
//! used, waiting times, launches; the clairvoyant lower bound; a terminal
//! table and an HTML page with SVG plots. Pure: it turns numbers into text.

use std::fmt::Write as _;

use super::trace::TraceJob;
use super::world::{OptionWaste, Sample, Score};

/// One policy's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub name: String,
    pub paid_core_hours: f64,
    /// Paid while booting (part of `paid_core_hours`).
    pub boot_core_hours: f64,
    pub used_core_hours: f64,
    /// Of the paid outside boot and not used: joined nodes running no
    /// job, and free cores of nodes running some (fragmentation).
    pub empty_core_hours: f64,
    pub fragment_core_hours: f64,
    /// Per flavour (`site/flavor`), core-hours joined outside boot, empty
    /// and fragmented; flavours never used are left out.
    pub by_flavor: Vec<(String, OptionWaste)>,
    pub cost: f64,
    pub waits: Waits,
    /// 1 - used / paid (boot time excluded from paid).
    pub idle_fraction: f64,
    pub launches: u64,
    pub terminations: u64,
    pub jobs_killed: u64,
    pub completed: u64,
    pub end: i64,
    pub samples: Vec<Sample>,
}

/// One run of the knob sweep (`simulate --sweep`): cloudburst with one
/// combination of its main settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    pub label: String,
    pub paid_outside_boot: f64,
    pub wait_p50: i64,
    pub killed: u64,
}

/// Which of `points` (paid, median wait) no other beats on both: the
/// Pareto front an admin chooses along.
pub fn pareto(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(c, w)| {
            !points
                .iter()
                .any(|&(c2, w2)| c2 <= c && w2 <= w && (c2 < c || w2 < w))
        })
        .collect()
}

/// Seconds from submission to start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Waits {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub mean: f64,
}

impl Waits {
    pub fn of(waits: &[i64]) -> Waits {
        if waits.is_empty() {
            return Waits::default();
        }
        let mut w = waits.to_vec();
        w.sort_unstable();
        let at = |q: f64| w[((w.len() - 1) as f64 * q).round() as usize];
        Waits {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            mean: w.iter().sum::<i64>() as f64 / w.len() as f64,
        }
    }
}

/// `labels` names the world's flavour options, in their order.
pub fn outcome(
    name: &str,
    s: &Score,
    labels: &[String],
    samples: Vec<Sample>,
    end: i64,
) -> Outcome {
    let paid = s.paid_core_seconds / 3600.0;
    let boot = s.boot_core_seconds / 3600.0;
    // Exact: what the completed jobs ran (the per-step integral of busy
    // cores misses jobs shorter than a negotiation step).
    let used = s.job_core_seconds / 3600.0;
    Outcome {
        name: name.to_string(),
        paid_core_hours: paid,
        boot_core_hours: boot,
        used_core_hours: used,
        empty_core_hours: s.empty_core_seconds / 3600.0,
        fragment_core_hours: s.fragment_core_seconds / 3600.0,
        by_flavor: labels
            .iter()
            .zip(&s.waste_by_option)
            .filter(|(_, w)| w.joined > 0.0)
            .map(|(l, w)| {
                let hours = OptionWaste {
                    joined: w.joined / 3600.0,
                    empty: w.empty / 3600.0,
                    fragment: w.fragment / 3600.0,
                };
                (l.clone(), hours)
            })
            .collect(),
        cost: s.paid_cost,
        waits: Waits::of(&s.waits),
        idle_fraction: if paid - boot > 0.0 {
            1.0 - used / (paid - boot)
        } else {
            0.0
        },
        launches: s.launches,
        terminations: s.terminations,
        jobs_killed: s.jobs_killed_by_terminate
            + s.jobs_killed_by_reclaim
            + s.jobs_killed_by_hard_stop,
        completed: s.completed,
        end,
        samples,
    }
}

/// The clairvoyant lower bound: every cloud job that fits a flavour starts
/// at submission + the mean boot time, on a perfectly packed node of the
/// cheapest price per core.
pub fn clairvoyant(
    jobs: &[TraceJob],
    fits: impl Fn(&TraceJob) -> bool,
    boot: f64,
    price_per_core_hour: f64,
) -> Outcome {
    let core_hours: f64 = jobs
        .iter()
        .filter(|j| j.cloud && fits(j))
        .map(|j| j.cpus as f64 * j.runtime as f64 / 3600.0)
        .sum();
    let n = jobs.iter().filter(|j| j.cloud && fits(j)).count() as u64;
    let w = boot.round() as i64;
    Outcome {
        name: "clairvoyant".into(),
        paid_core_hours: core_hours,
        boot_core_hours: 0.0,
        used_core_hours: core_hours,
        empty_core_hours: 0.0,
        fragment_core_hours: 0.0,
        by_flavor: Vec::new(),
        cost: core_hours * price_per_core_hour,
        waits: Waits {
            p50: w,
            p90: w,
            p99: w,
            mean: boot,
        },
        idle_fraction: 0.0,
        launches: 0,
        terminations: 0,
        jobs_killed: 0,
        completed: n,
        end: 0,
        samples: Vec::new(),
    }
}

fn duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{:.1}m", s as f64 / 60.0),
        s => format!("{:.1}h", s as f64 / 3600.0),
    }
}

/// The terminal table.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<12} {:>10} {:>10} {:>9} {:>9} {:>6} {:>7} {:>7} {:>7} {:>8} {:>6} {:>6}",
        "policy",
        "paid c-h",
        "boot c-h",
        "used c-h",
        "cost $",
        "idle",
        "wait50",
        "wait90",
        "wait99",
        "launches",
        "terms",
        "killed"
    );
    for o in outcomes {
        let _ = writeln!(
            t,
            "{:<12} {:>10.1} {:>10.1} {:>9.1} {:>9.2} {:>5.0}% {:>7} {:>7} {:>7} {:>8} {:>6} {:>6}",
            o.name,
            o.paid_core_hours,
            o.boot_core_hours,
            o.used_core_hours,
            o.cost,
            o.idle_fraction * 100.0,
            duration(o.waits.p50),
            duration(o.waits.p90),
            duration(o.waits.p99),
            o.launches,
            o.terminations,
            o.jobs_killed
        );
    }
    t
}

const COLORS: [&str; 5] = ["#1b6ac9", "#d1495b", "#edae49", "#00798c", "#6a4c93"];

/// A line chart: one polyline per series of (x, y).
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let (w, h, l, b) = (720.0, 260.0, 60.0, 30.0);
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, z), x| (a.min(x), z.max(x)));
    let y1 = ys.fold(0.0f64, f64::max).max(1.0);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let sx = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - 10.0);
    let sy = |y: f64| h - b - y / y1 * (h - b - 20.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{l}\" y=\"14\" font-weight=\"bold\">{title}</text>\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{l}\" y1=\"20\" x2=\"{l}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"{}\">{y1:.0}</text><text x=\"4\" y=\"{}\">0</text>\
         <text x=\"4\" y=\"{}\">{y_label}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{x1:.0} {x_label}</text>",
        h - b,
        w - 10.0,
        h - b,
        h - b,
        sy(y1) + 4.0,
        h - b,
        sy(y1) + 16.0,
        w - 10.0,
        h - b + 14.0,
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
            pts.join(" "),
            l + 10.0 + i as f64 * 110.0,
            h - 2.0
        );
    }
    s.push_str("</svg>");
    s
}

/// A scatter plot of labelled points (x, y) on log scales (the policies
/// differ by orders of magnitude, the sweep's runs by percents); those
/// `front` marks are joined by a line, drawn filled and labelled, the
/// others named in their tooltip. `named` points are always labelled.
fn scatter(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(String, f64, f64)],
    front: &[bool],
    named: usize,
) -> String {
    let (w, h, l, b) = (720.0, 340.0, 60.0, 30.0);
    let lg = |v: f64| v.max(1e-3).log10();
    let range = |f: &dyn Fn(&(String, f64, f64)) -> f64| {
        let (lo, hi) = points
            .iter()
            .map(|p| lg(f(p)))
            .fold((f64::MAX, f64::MIN), |(a, z), v| (a.min(v), z.max(v)));
        if lo > hi {
            (0.0, 1.0)
        } else {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        }
    };
    let (x0, x1) = range(&|p| p.1);
    let (y0, y1) = range(&|p| p.2);
    let sx = |x: f64| l + (lg(x) - x0) / (x1 - x0) * (w - l - 140.0);
    let sy = |y: f64| h - b - (lg(y) - y0) / (y1 - y0) * (h - b - 20.0);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"10\">\
         <text x=\"{l}\" y=\"14\" font-weight=\"bold\" font-size=\"11\">{title}</text>\
         <line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{l}\" y1=\"20\" x2=\"{l}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"30\">{y_label}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{x_label} (log)</text>",
        h - b,
        w - 140.0,
        h - b,
        h - b,
        w - 140.0,
        h - b + 24.0,
    );
    // Decade ticks on both axes.
    for d in (x0 as i64)..=(x1 as i64) {
        let v = 10f64.powi(d as i32);
        let _ = write!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#888\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{v}</text>",
            sx(v),
            h - b,
            h - b + 4.0,
            h - b + 13.0
        );
    }
    for d in (y0 as i64)..=(y1 as i64) {
        let v = 10f64.powi(d as i32);
        let _ = write!(
            s,
            "<line x1=\"{}\" y1=\"{1:.1}\" x2=\"{l}\" y2=\"{1:.1}\" stroke=\"#888\"/><text x=\"{l}\" dx=\"-6\" y=\"{1:.1}\" dy=\"3\" text-anchor=\"end\">{v}</text>",
            l - 4.0,
            sy(v)
        );
    }
    let mut on_front: Vec<&(String, f64, f64)> = points
        .iter()
        .zip(front)
        .filter(|(_, f)| **f)
        .map(|(p, _)| p)
        .collect();
    on_front.sort_by(|a, b| a.1.total_cmp(&b.1));
    let line: Vec<String> = on_front
        .iter()
        .map(|p| format!("{:.1},{:.1}", sx(p.1), sy(p.2)))
        .collect();
    let _ = write!(
        s,
        "<polyline fill=\"none\" stroke=\"#1b6ac9\" stroke-dasharray=\"4 3\" points=\"{}\"/>",
        line.join(" ")
    );
    for (i, ((name, x, y), f)) in points.iter().zip(front).enumerate() {
        let (fill, color) = if *f {
            ("#1b6ac9", "#1b6ac9")
        } else {
            ("white", "#888")
        };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{fill}\" stroke=\"{color}\"><title>{}</title></circle>",
            sx(*x),
            sy(*y),
            escape(name),
        );
        if *f || i < named {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{}</text>",
                sx(*x) + 6.0,
                sy(*y) - 4.0,
                escape(name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What each column of the table means, for the page.
const COLUMNS: &[(&str, &str)] = &[
    ("paid c-h", "core-hours of cloud instances paid for, booting included: what the bill counts"),
    ("boot c-h", "of those, paid while instances booted (no policy can avoid booting; the bound has none)"),
    ("used c-h", "core-hours cloud jobs ran; the same for every policy that ran them all"),
    ("cost $", "the bill at the site's prices"),
    ("idle", "1 - used / (paid - boot): paid cores running no job, outside boot. Below the table it is split, for cloudburst, into nodes running no job and cores free beside running jobs, by flavour"),
    ("wait50/90/99", "time from submission to start, percentiles over the cloud jobs"),
    ("launches, terms", "instances started and terminated"),
    ("killed", "jobs that were running when their instance was terminated, reclaimed or reached its hard stop: work lost and run again. cloudburst must show 0; annex shows the jobs a lease was too short for"),
    ("clairvoyant", "the lower bound: every job on perfectly packed cores of the cheapest price, from submission plus a mean boot, nothing idle"),
];

fn over_time(
    outcomes: &[Outcome],
    start: i64,
    f: impl Fn(&Sample) -> f64,
) -> Vec<(String, Vec<(f64, f64)>)> {
    outcomes
        .iter()
        .filter(|o| !o.samples.is_empty())
        .map(|o| {
            (
                o.name.clone(),
                o.samples
                    .iter()
                    .map(|s| ((s.at - start) as f64 / 3600.0, f(s)))
                    .collect(),
            )
        })
        .collect()
}

/// `report.html`: the table, what its columns mean, cost against wait for
/// each policy (and the knob sweep, if run) with the Pareto front, where
/// cloudburst's idle cores went, and the plots (queue, nodes, spend over
/// time; the distribution of waits). No script: the page is static.
pub fn html(
    title: &str,
    outcomes: &[Outcome],
    waits: &[(String, Vec<i64>)],
    sweep: &[SweepPoint],
    start: i64,
) -> String {
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}pre{{font-size:12px}}\
         table{{border-collapse:collapse;font-size:12px}}td,th{{padding:2px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}dt{{font-weight:bold}}dd{{margin:0 0 .4em 1.5em;font-size:13px}}</style></head>\
         <body><h1>{}</h1><pre>{}</pre>",
        escape(title),
        escape(title),
        escape(&table(outcomes))
    );
    page += "<details><summary>What the columns mean</summary><dl>";
    for (name, what) in COLUMNS {
        let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(what));
    }
    page += "</dl></details>";
    // Cost against wait: the policies, then the sweep's runs.
    let mut points: Vec<(String, f64, f64)> = outcomes
        .iter()
        .filter(|o| o.name != "clairvoyant")
        .map(|o| {
            (
                o.name.clone(),
                o.waits.p50 as f64 / 60.0,
                o.paid_core_hours - o.boot_core_hours,
            )
        })
        .collect();
    let named = points.len();
    // The sweep's runs are numbered on the plot, named in the table.
    points.extend(sweep.iter().enumerate().map(|(i, p)| {
        (
            format!("s{}", i + 1),
            p.wait_p50 as f64 / 60.0,
            p.paid_outside_boot,
        )
    }));
    let front = pareto(&points.iter().map(|p| (p.2, p.1)).collect::<Vec<_>>());
    page += &scatter(
        "Cost against wait (filled: no other run is cheaper and quicker)",
        "median wait, min",
        "c-h paid outside boot",
        &points,
        &front,
        named,
    );
    if !sweep.is_empty() {
        page += "<table><tr><th></th><th>cloudburst with</th><th>c-h paid outside boot</th><th>median wait</th><th>killed</th><th>on the front</th></tr>";
        let offset = points.len() - sweep.len();
        for (i, p) in sweep.iter().enumerate() {
            let _ = write!(
                page,
                "<tr><td>s{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                escape(&p.label),
                p.paid_outside_boot,
                duration(p.wait_p50),
                p.killed,
                if front[offset + i] { "yes" } else { "" }
            );
        }
        page += "</table>";
    }
    if let Some(cb) = outcomes.iter().find(|o| o.name == "cloudburst") {
        page += "<h3>Where cloudburst's idle cores went (core-hours, outside boot)</h3>\
                 <table><tr><th>flavour</th><th>joined</th><th>on nodes running no job</th><th>free beside running jobs</th></tr>";
        for (label, w) in &cb.by_flavor {
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                escape(label),
                w.joined,
                w.empty,
                w.fragment
            );
        }
        page += "</table>";
    }
    page += &chart(
        "Idle cloud jobs",
        "h",
        "jobs",
        &over_time(outcomes, start, |s| s.idle_jobs as f64),
    );
    page += &chart(
        "Nodes alive",
        "h",
        "nodes",
        &over_time(outcomes, start, |s| {
            (s.booting + s.idle_nodes + s.busy_nodes + s.draining_nodes) as f64
        }),
    );
    if let Some(cb) = outcomes.iter().find(|o| o.name == "cloudburst") {
        let one = std::slice::from_ref(cb);
        let states: Vec<(String, Vec<(f64, f64)>)> = [
            ("booting", 0usize),
            ("idle", 1),
            ("busy", 2),
            ("draining", 3),
        ]
        .iter()
        .map(|(name, k)| {
            let k = *k;
            (
                name.to_string(),
                over_time(one, start, move |s| {
                    [s.booting, s.idle_nodes, s.busy_nodes, s.draining_nodes][k] as f64
                })
                .remove(0)
                .1,
            )
        })
        .collect();
        page += &chart("cloudburst nodes by state", "h", "nodes", &states);
    }
    page += &chart("Spend", "h", "$", &over_time(outcomes, start, |s| s.spend));
    let cdf: Vec<(String, Vec<(f64, f64)>)> = waits
        .iter()
        .filter(|(_, w)| !w.is_empty())
        .map(|(name, w)| {
            let mut w = w.clone();
            w.sort_unstable();
            let n = w.len() as f64;
            let step = (w.len() / 200).max(1);
            let pts = w
                .iter()
                .enumerate()
                .step_by(step)
                .map(|(i, &x)| (x as f64 / 60.0, (i + 1) as f64 / n * 100.0))
                .collect();
            (name.clone(), pts)
        })
        .collect();
    page += &chart(
        "Waits: share of jobs started within",
        "min",
        "% of jobs",
        &cdf,
    );
    page += "</body></html>\n";
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_percentiles() {
        let w = Waits::of(&(1..=100).collect::<Vec<_>>());
        assert_eq!((w.p50, w.p90, w.p99), (51, 90, 99));
        assert_eq!(Waits::of(&[]), Waits::default());
    }

    #[test]
    fn the_page_has_a_plot_per_view() {
        let s = Sample {
            at: 3600,
            idle_jobs: 5,
            ..Sample::default()
        };
        let o = Outcome {
            name: "cloudburst".into(),
            paid_core_hours: 1.0,
            boot_core_hours: 0.1,
            used_core_hours: 0.8,
            empty_core_hours: 0.05,
            fragment_core_hours: 0.05,
            by_flavor: Vec::new(),
            cost: 0.5,
            waits: Waits::default(),
            idle_fraction: 0.1,
            launches: 1,
            terminations: 1,
            jobs_killed: 0,
            completed: 3,
            end: 7200,
            samples: vec![s, Sample { at: 7200, ..s }],
        };
        let sweep = [SweepPoint {
            label: "idle 1m <&>".into(),
            paid_outside_boot: 0.5,
            wait_p50: 60,
            killed: 0,
        }];
        let page = html(
            "t",
            &[o],
            &[("cloudburst".into(), vec![1, 2, 3])],
            &sweep,
            0,
        );
        // Cost against wait, queue, nodes, nodes by state, spend, waits.
        assert_eq!(page.matches("<svg").count(), 6);
        assert!(page.contains("<polyline"));
        assert!(page.contains("idle 1m &lt;&amp;&gt;"));
        assert!(!page.contains("<script"));
        for (name, _) in COLUMNS {
            assert!(page.contains(&escape(name)), "{name}");
        }
    }

    #[test]
    fn the_front_is_what_nothing_beats_on_both() {
        let front = pareto(&[
            (10.0, 5.0),
            (8.0, 6.0),
            (12.0, 6.0),
            (8.0, 6.0),
            (20.0, 1.0),
        ]);
        assert_eq!(front, vec![true, true, false, true, true]);
    }
}
