//! Prometheus metrics and the status page, served on `agent.listen`
//! (127.0.0.1:9754 by default: loopback unless the admin says otherwise).
//!
//! `Metrics` is pure bookkeeping fed by each cycle's report; `serve` is
//! the listener thread, which only ever reads the last rendered texts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::cycle::Report;
use crate::lifecycle::{Node, State};
use crate::planner::Action;
use crate::registry::Event;

use super::status::Status;

/// Seconds; the last bucket is +Inf.
const BUCKETS: [f64; 8] = [60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];

#[derive(Default, Clone)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn write(&self, o: &mut String, name: &str, help: &str) {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(o, "{name}_bucket{{le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(o, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// One point of the 24-hour plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: i64,
    pub idle_jobs: u64,
    pub nodes: usize,
    pub cost_per_hour: f64,
}

#[derive(Default)]
pub struct Metrics {
    pub cycles: u64,
    pub cycle_seconds: f64,
    launches: BTreeMap<(String, String), u64>,
    failures: BTreeMap<(String, String), u64>,
    boot_to_join: Histogram,
    join_to_claim: Histogram,
    joined_at: BTreeMap<String, i64>,
    claimed: BTreeSet<String>,
    pub history: VecDeque<Point>,
}

impl Metrics {
    /// Takes in the actions of a cycle (or of launches between cycles).
    pub fn observe_actions(&mut self, r: &Report) {
        for d in &r.done {
            if let Action::Launch { site, flavor, .. } = &d.action {
                *self
                    .launches
                    .entry((site.clone(), flavor.clone()))
                    .or_insert(0) += 1;
                if let Some(class) = d.outcome.failure_class() {
                    *self.failures.entry((site.clone(), class)).or_insert(0) += 1;
                }
            }
        }
    }

    /// Takes in one cycle: its report and the nodes as they are now.
    pub fn observe(&mut self, r: &Report, nodes: &[Node], cycle_seconds: f64) {
        self.cycles += 1;
        self.cycle_seconds = cycle_seconds;
        self.observe_actions(r);
        for t in &r.transitions {
            let created = nodes.iter().find(|n| n.id == t.node).map(|n| n.created_at);
            self.transition(&t.node, t.from, t.to, t.at, created);
        }
        let live: Vec<&Node> = nodes.iter().filter(|n| n.state != State::Gone).collect();
        self.history.push_back(Point {
            at: r.now,
            idle_jobs: r.idle_jobs,
            nodes: live.len(),
            cost_per_hour: live.iter().map(|n| n.price_per_hour).sum(),
        });
        while self.history.front().is_some_and(|p| p.at < r.now - 86_400) {
            self.history.pop_front();
        }
    }

    /// The boot and claim histograms of a restarted agent: the registry's
    /// events replayed through the same rule as a running agent's cycles,
    /// so a restart loses none of them. Events whose states this version
    /// does not know are skipped.
    pub fn rebuild(&mut self, events: &[Event], nodes: &[Node]) {
        for e in events {
            let (Some(from), Some(to)) = (
                e.from.as_deref().and_then(State::parse),
                State::parse(&e.to),
            ) else {
                continue;
            };
            let created = nodes.iter().find(|n| n.id == e.node).map(|n| n.created_at);
            self.transition(&e.node, from, to, e.at, created);
        }
    }

    /// The one rule: a booting node that joins adds its boot time, its
    /// first claim after joining adds the wait for work.
    fn transition(&mut self, node: &str, from: State, to: State, at: i64, created: Option<i64>) {
        if from == State::Booting && matches!(to, State::Idle | State::Busy) {
            if let Some(c) = created {
                self.boot_to_join
                    .observe(at.saturating_sub(c).max(0) as f64);
            }
            self.joined_at.insert(node.to_string(), at);
        }
        if to == State::Busy && self.claimed.insert(node.to_string()) {
            if let Some(j) = self.joined_at.get(node) {
                self.join_to_claim
                    .observe(at.saturating_sub(*j).max(0) as f64);
            }
        }
        if to == State::Gone {
            self.joined_at.remove(node);
            self.claimed.remove(node);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, st: &Status, config: &Config) -> String {
        let mut o = String::new();
        let gauge = |o: &mut String, name: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        };
        gauge(&mut o, "cloudburst_nodes", "Nodes by site and state.");
        let mut by: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for n in &st.nodes {
            *by.entry((n.site.as_str(), n.state.name())).or_insert(0) += 1;
        }
        for ((site, state), c) in &by {
            let _ = writeln!(
                o,
                "cloudburst_nodes{{site=\"{site}\",state=\"{state}\"}} {c}"
            );
        }
        gauge(
            &mut o,
            "cloudburst_terminations_stuck",
            "Nodes whose terminate was accepted but whose instance outlived timers.terminate_timeout.",
        );
        let _ = writeln!(
            o,
            "cloudburst_terminations_stuck {}",
            st.stuck_terminating.len()
        );
        gauge(
            &mut o,
            "cloudburst_site_paused",
            "Sites whose launches are paused (credentials refused).",
        );
        for site in config.sites.iter().map(|s| s.name.get_ref()) {
            let _ = writeln!(
                o,
                "cloudburst_site_paused{{site=\"{site}\"}} {}",
                u8::from(st.paused_sites.contains_key(site))
            );
        }
        let _ = writeln!(o, "# HELP cloudburst_launches_total Launch calls by site and flavour.\n# TYPE cloudburst_launches_total counter");
        for ((site, flavor), c) in &self.launches {
            let _ = writeln!(
                o,
                "cloudburst_launches_total{{site=\"{site}\",flavor=\"{flavor}\"}} {c}"
            );
        }
        let _ = writeln!(o, "# HELP cloudburst_launch_failures_total Failed launches by site and error class.\n# TYPE cloudburst_launch_failures_total counter");
        for ((site, class), c) in &self.failures {
            let _ = writeln!(
                o,
                "cloudburst_launch_failures_total{{site=\"{site}\",class=\"{class}\"}} {c}"
            );
        }
        self.boot_to_join.write(
            &mut o,
            "cloudburst_boot_to_join_seconds",
            "From launch to the pilot's startd joining.",
        );
        self.join_to_claim.write(
            &mut o,
            "cloudburst_join_to_first_claim_seconds",
            "From joining to the first claim.",
        );
        let joined = st
            .nodes
            .iter()
            .filter(|n| matches!(n.state, State::Idle | State::Busy))
            .count();
        let idle = st.nodes.iter().filter(|n| n.state == State::Idle).count();
        gauge(
            &mut o,
            "cloudburst_idle_fraction",
            "Joined nodes that are idle.",
        );
        let _ = writeln!(
            o,
            "cloudburst_idle_fraction {}",
            if joined == 0 {
                0.0
            } else {
                idle as f64 / joined as f64
            }
        );
        gauge(
            &mut o,
            "cloudburst_cost_per_hour",
            "What the live nodes cost per hour.",
        );
        let _ = writeln!(
            o,
            "cloudburst_cost_per_hour {}",
            st.nodes.iter().map(|n| n.price_per_hour).sum::<f64>()
        );
        gauge(
            &mut o,
            "cloudburst_spend_month_to_date",
            "Spend since the start of the month (UTC).",
        );
        let _ = writeln!(
            o,
            "cloudburst_spend_month_to_date {}",
            st.spend_month_to_date
        );
        gauge(
            &mut o,
            "cloudburst_cost_per_hour_limit",
            "limits.max_cost_per_hour.",
        );
        let _ = writeln!(
            o,
            "cloudburst_cost_per_hour_limit {}",
            config.limits.max_cost_per_hour
        );
        gauge(
            &mut o,
            "cloudburst_cycle_duration_seconds",
            "The last cycle's duration.",
        );
        let _ = writeln!(
            o,
            "cloudburst_cycle_duration_seconds {}",
            self.cycle_seconds
        );
        let _ = writeln!(o, "# HELP cloudburst_cycles_total Cycles run.\n# TYPE cloudburst_cycles_total counter\ncloudburst_cycles_total {}", self.cycles);
        if let Some(c) = &st.last_cycle {
            gauge(
                &mut o,
                "cloudburst_idle_cloud_jobs",
                "Idle jobs marked for the cloud.",
            );
            let _ = writeln!(o, "cloudburst_idle_cloud_jobs {}", c.idle_jobs);
            gauge(
                &mut o,
                "cloudburst_unmatched_jobs",
                "Idle cloud jobs no flavour can run.",
            );
            let _ = writeln!(
                o,
                "cloudburst_unmatched_jobs {}",
                c.unmatched.iter().map(|u| u.1).sum::<u64>()
            );
            if let Some(m) = &c.mesos {
                mesos_metrics(&mut o, m);
            }
        }
        o
    }

    /// The status page: the `status` tables and the 24-hour plot.
    pub fn page(&self, status_text: &str) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>cloudburst</title>\n<meta http-equiv=\"refresh\" content=\"60\">\n<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f6f6f6;padding:1em}}</style></head>\n<body><h1>cloudburst</h1>\n<h2>Last 24 hours</h2>\n{}\n<h2>Status</h2>\n<pre>{}</pre>\n</body></html>\n",
            plot(&self.history),
            esc(status_text)
        )
    }
}

/// An SVG line plot of idle jobs, nodes and cost per hour (each scaled
/// to its own maximum, which the legend states).
pub fn plot(points: &VecDeque<Point>) -> String {
    let (w, h, pad) = (720.0, 240.0, 40.0);
    let mut o = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n<rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\" stroke=\"#ccc\"/>\n");
    if points.len() < 2 {
        o.push_str("<text x=\"20\" y=\"120\">not enough cycles yet for a plot</text>\n</svg>");
        return o;
    }
    let t0 = points.front().unwrap().at as f64;
    let t1 = (points.back().unwrap().at as f64).max(t0 + 1.0);
    type Series = (&'static str, &'static str, fn(&Point) -> f64);
    let series: [Series; 3] = [
        ("idle cloud jobs", "#1f77b4", |p| p.idle_jobs as f64),
        ("nodes", "#2ca02c", |p| p.nodes as f64),
        ("cost per hour", "#d62728", |p| p.cost_per_hour),
    ];
    for (i, (name, color, f)) in series.iter().enumerate() {
        let max = points.iter().map(f).fold(0.0, f64::max).max(1e-9);
        let pts: Vec<String> = points
            .iter()
            .map(|p| {
                let x = pad + (p.at as f64 - t0) / (t1 - t0) * (w - 2.0 * pad);
                let y = h - pad - f(p) / max * (h - 2.0 * pad);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = writeln!(
            o,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        let _ = writeln!(o, "<text x=\"{}\" y=\"20\" fill=\"{color}\" font-size=\"12\">{name} (max {max:.2})</text>", pad + i as f64 * 200.0);
    }
    let hours = (t1 - t0) / 3600.0;
    let _ = writeln!(
        o,
        "<text x=\"{pad}\" y=\"{}\" font-size=\"12\">time: the last {hours:.1} h</text>\n</svg>",
        h - 10.0
    );
    o
}

/// What the listener serves.
#[derive(Default)]
pub struct Pages {
    pub metrics: String,
    pub html: String,
}

/// Serves `/metrics` and `/` from `pages` on `listener` until the
/// process ends. One request per connection; anything else is 404.
pub fn serve(listener: TcpListener, pages: Arc<Mutex<Pages>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            // Read the request head (bounded): it may come in pieces.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while req.len() < 8192 && !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req);
            let path = req.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = {
                let p = pages.lock().unwrap_or_else(|e| e.into_inner());
                match path {
                    "/metrics" => ("200 OK", "text/plain; version=0.0.4", p.metrics.clone()),
                    "/" | "/index.html" => ("200 OK", "text/html; charset=utf-8", p.html.clone()),
                    _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
                }
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// The Mesos side's gauges (`[mesos]` only).
fn mesos_metrics(o: &mut String, m: &crate::mesos::Summary) {
    let _ = writeln!(o, "# HELP cloudburst_mesos_up Whether the Mesos master and the frameworks' queues were read in the last cycle.\n# TYPE cloudburst_mesos_up gauge");
    let _ = writeln!(
        o,
        "cloudburst_mesos_up{{part=\"master\"}} {}",
        u8::from(m.master_unknown.is_none())
    );
    let _ = writeln!(
        o,
        "cloudburst_mesos_up{{part=\"frameworks\"}} {}",
        u8::from(m.frameworks_unknown.is_none())
    );
    let _ = writeln!(o, "# HELP cloudburst_mesos_agents Mesos agents registered on our nodes, by whether they run tasks.\n# TYPE cloudburst_mesos_agents gauge");
    let _ = writeln!(
        o,
        "cloudburst_mesos_agents{{busy=\"true\"}} {}",
        m.busy_agents
    );
    let _ = writeln!(
        o,
        "cloudburst_mesos_agents{{busy=\"false\"}} {}",
        m.agents - m.busy_agents.min(m.agents)
    );
    let _ = writeln!(o, "# HELP cloudburst_mesos_tasks Mesos tasks on our nodes' agents.\n# TYPE cloudburst_mesos_tasks gauge\ncloudburst_mesos_tasks {}", m.tasks);
    for (name, help, by) in [
        (
            "cloudburst_mesos_waiting_tasks",
            "Mesos tasks waiting for an offer, by framework.",
            &m.waiting,
        ),
        (
            "cloudburst_mesos_delayed_tasks",
            "Mesos tasks in their framework's back-off, by framework.",
            &m.delayed,
        ),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (source, n) in by {
            let _ = writeln!(o, "{name}{{framework=\"{source}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_classes_come_from_the_typed_outcome() {
        use crate::cloud::ErrorKind;
        use crate::cycle::ActionOutcome;
        let failed = ActionOutcome::failed(Some(ErrorKind::Capacity), "failed: no room");
        assert_eq!(failed.failure_class().as_deref(), Some("capacity"));
        let unknown = ActionOutcome::unknown(Some(ErrorKind::Transient), "outcome unknown");
        assert_eq!(unknown.failure_class().as_deref(), Some("transient"));
        // A class on a call that did not fail is not a failure.
        let mut done = ActionOutcome::done("ok: i-1");
        assert_eq!(done.failure_class(), None);
        done.class = Some(ErrorKind::Auth);
        assert_eq!(done.failure_class(), None);
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(90.0);
        h.observe(700.0);
        let mut o = String::new();
        h.write(&mut o, "x", "x");
        assert!(o.contains("x_bucket{le=\"60\"} 0"));
        assert!(o.contains("x_bucket{le=\"120\"} 1"));
        assert!(o.contains("x_bucket{le=\"900\"} 2"));
        assert!(o.contains("x_bucket{le=\"+Inf\"} 2"));
        assert!(o.contains("x_sum 790"));
    }

    /// Two nodes launched at 1,000: one joins after 150 s and gets work
    /// 30 s later, the other joins after 400 s and gets work at once.
    /// The histograms hold exactly those values, and an agent restarted
    /// on the same registry shows the same histograms from its events.
    #[test]
    fn boot_and_claim_histograms_hold_their_values_and_survive_a_restart() {
        use crate::lifecycle::Transition;
        let mut registry = crate::registry::Registry::in_memory().unwrap();
        for id in ["a", "b"] {
            let node = Node::requested(id, "aws", "m", &format!("t-{id}"), 1_000);
            registry.record_launch(&node, "x").unwrap();
        }
        let step = |node: &str, from: State, to: State, at: i64| Transition {
            node: node.into(),
            from,
            to,
            at,
            reason: "test".into(),
            instance_id: None,
            startd: None,
            busy_at: None,
        };
        let cycles = [
            vec![
                step("a", State::Requested, State::Booting, 1_010),
                step("b", State::Requested, State::Booting, 1_010),
            ],
            vec![step("a", State::Booting, State::Idle, 1_150)],
            vec![step("a", State::Idle, State::Busy, 1_180)],
            vec![step("b", State::Booting, State::Busy, 1_400)],
            // Busy again later is not a first claim.
            vec![
                step("a", State::Busy, State::Idle, 2_000),
                step("a", State::Idle, State::Busy, 2_100),
            ],
        ];
        let mut live = Metrics::default();
        for transitions in cycles {
            registry.apply(&transitions).unwrap();
            let nodes = registry.nodes().unwrap();
            let r = Report {
                now: transitions[0].at,
                transitions,
                ..Report::default()
            };
            live.observe(&r, &nodes, 0.1);
        }
        let histograms = |m: &Metrics| {
            let mut o = String::new();
            m.boot_to_join.write(&mut o, "boot", "b");
            m.join_to_claim.write(&mut o, "claim", "c");
            o
        };
        let text = histograms(&live);
        for line in [
            "boot_bucket{le=\"120\"} 0",
            "boot_bucket{le=\"180\"} 1",
            "boot_bucket{le=\"600\"} 2",
            "boot_sum 550",
            "boot_count 2",
            "claim_bucket{le=\"60\"} 2",
            "claim_sum 30",
            "claim_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        let mut restarted = Metrics::default();
        restarted.rebuild(&registry.events(None).unwrap(), &registry.nodes().unwrap());
        assert_eq!(histograms(&restarted), text);
    }

    #[test]
    fn the_plot_keeps_a_day_and_draws_three_lines() {
        let mut m = Metrics::default();
        for i in 0..30 {
            let r = Report {
                now: i * 3600,
                idle_jobs: i as u64,
                ..Report::default()
            };
            m.observe(&r, &[], 0.1);
        }
        assert_eq!(m.history.len(), 25, "24 hours and the point at its start");
        let svg = plot(&m.history);
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(m.page("a <b> & c").contains("a &lt;b&gt; &amp; c"));
    }
}
