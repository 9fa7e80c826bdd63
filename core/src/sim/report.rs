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

/// `report.html`: the table and the plots (queue, nodes, spend over time;
/// the distribution of waits).
pub fn html(title: &str, outcomes: &[Outcome], waits: &[(String, Vec<i64>)], start: i64) -> String {
    let mut page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}pre{{font-size:12px}}</style></head>\
         <body><h1>{title}</h1><pre>{}</pre>",
        table(outcomes)
    );
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
        let page = html("t", &[o], &[("cloudburst".into(), vec![1, 2, 3])], 0);
        assert_eq!(page.matches("<svg").count(), 5);
        assert!(page.contains("<polyline"));
    }
}
