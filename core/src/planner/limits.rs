//! Limits: what the live nodes (and the project's other instances) add
//! up to, which limit a launch would break, back-off, and step 4, which
//! launches a share of the shortfall within every limit.

use std::collections::{BTreeMap, HashMap};

use crate::demand::FlavorOption;
use crate::lifecycle::Node;
use crate::model::Resources;

use super::{option_of, Action, Inputs, Plan, Want};

/// What is running, counted the way the limits are stated.
pub(super) struct Totals {
    nodes: u32,
    cost: f64,
    /// Per site: nodes, cores, memory (MB), GPUs.
    by_site: HashMap<String, (u32, u64, u64, u64)>,
    by_group: HashMap<String, u32>,
}

pub(super) fn totals(
    nodes: &[Node],
    options: &[FlavorOption],
    foreign: &BTreeMap<String, (u32, u32)>,
) -> Totals {
    let mut t = Totals {
        nodes: 0,
        cost: 0.0,
        by_site: HashMap::new(),
        by_group: HashMap::new(),
    };
    for (site, &(n, cores)) in foreign {
        let s = t.by_site.entry(site.clone()).or_default();
        s.0 += n;
        s.1 += u64::from(cores);
    }
    for n in nodes.iter().filter(|n| n.state.is_live()) {
        let cap = option_of(options, n)
            .map(|i| options[i].capacity)
            .unwrap_or_default();
        add(&mut t, &n.site, n.group.as_deref(), &cap, n.price_per_hour);
    }
    t
}

fn add(t: &mut Totals, site: &str, group: Option<&str>, cap: &Resources, price: f64) {
    t.nodes += 1;
    t.cost += price;
    let s = t.by_site.entry(site.to_string()).or_default();
    s.0 += 1;
    s.1 += cap.cpus;
    s.2 += cap.memory;
    s.3 += cap.gpus;
    if let Some(g) = group {
        *t.by_group.entry(g.to_string()).or_default() += 1;
    }
}

pub(super) fn in_backoff(inputs: &Inputs<'_>, o: usize) -> bool {
    let o = &inputs.options[o];
    let paused = inputs
        .paused
        .get(&o.site)
        .is_some_and(|(until, _)| *until > inputs.now);
    paused
        || inputs
            .backoff
            .get(&(o.site.clone(), o.flavor.clone()))
            .is_some_and(|&until| until > inputs.now)
}

/// The options no limit rules out yet, else all of them (step 4 then
/// says which limit holds the launches back).
pub(super) fn prefer_within_limits(
    inputs: &Inputs<'_>,
    existing: &Totals,
    usable: Vec<usize>,
) -> Vec<usize> {
    let within: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&o| within_limits(inputs, existing, o))
        .collect();
    if within.is_empty() {
        usable
    } else {
        within
    }
}

/// Whether a launch of option `o` breaks no limit.
pub(super) fn within_limits(inputs: &Inputs<'_>, existing: &Totals, o: usize) -> bool {
    blocked_by(inputs, existing, &inputs.options[o]).is_none()
}

/// Which limit, if any, a launch of `o` would break.
fn blocked_by(inputs: &Inputs<'_>, t: &Totals, o: &FlavorOption) -> Option<String> {
    let l = &inputs.config.limits;
    if t.nodes + 1 > l.max_nodes {
        return Some(format!("limits.max_nodes ({}) reached", l.max_nodes));
    }
    if t.cost + o.price_per_hour > l.max_cost_per_hour + 1e-9 {
        return Some(format!(
            "limits.max_cost_per_hour ({:.2}) would be exceeded",
            l.max_cost_per_hour
        ));
    }
    if inputs.month_spend + t.cost + o.price_per_hour > l.max_cost_per_month + 1e-9 {
        return Some(format!(
            "limits.max_cost_per_month ({:.2}) would be exceeded within the hour",
            l.max_cost_per_month
        ));
    }
    let site = inputs.config.site(&o.site)?;
    let (n, cpus, mem, gpus) = t.by_site.get(&o.site).copied().unwrap_or_default();
    let checks = [
        ("max_nodes", site.max_nodes.map(u64::from), u64::from(n) + 1),
        (
            "max_cores",
            site.max_cores.map(u64::from),
            cpus + o.capacity.cpus,
        ),
        ("max_memory_mb", site.max_memory_mb, mem + o.capacity.memory),
        (
            "max_gpus",
            site.max_gpus.map(u64::from),
            gpus + o.capacity.gpus,
        ),
    ];
    for (what, limit, would) in checks {
        if let Some(limit) = limit {
            if would > limit {
                return Some(format!("site {} {what} ({limit}) reached", o.site));
            }
        }
    }
    if let Some(g) = &o.group {
        let max = inputs.config.group(g).and_then(|g| g.max_nodes);
        let have = t.by_group.get(g).copied().unwrap_or(0);
        if let Some(max) = max {
            if have + 1 > max {
                return Some(format!("group {g} max_nodes ({max}) reached"));
            }
        }
    }
    None
}

/// Step 4: launches for the new nodes placement booked, in the order it
/// booked them, at a share of the shortfall per cycle (`limits.ramp`,
/// `limits.launches_per_cycle`) and within every limit.
pub(super) fn launches(
    inputs: &Inputs<'_>,
    per_option: &BTreeMap<usize, (u64, u64)>,
    new_rooms_order: &[usize],
    plan: &mut Plan,
) {
    let options = inputs.options;
    let wanted = new_rooms_order.len() as u64;
    let l = &inputs.config.limits;
    let allowed = ((wanted as f64 * l.ramp).ceil() as u64).min(l.launches_per_cycle as u64);
    let mut t = totals(inputs.nodes, options, inputs.foreign);
    let mut launched: BTreeMap<usize, u64> = BTreeMap::new();
    let mut blocked: Vec<String> = Vec::new();
    for &o in new_rooms_order {
        if launched.values().sum::<u64>() >= allowed {
            break;
        }
        let opt = &options[o];
        if let Some(why) = blocked_by(inputs, &t, opt) {
            if !blocked.contains(&why) {
                blocked.push(why);
            }
            continue;
        }
        add(
            &mut t,
            &opt.site,
            opt.group.as_deref(),
            &opt.capacity,
            opt.price_per_hour,
        );
        *launched.entry(o).or_default() += 1;
    }
    for (&o, &(jobs, count)) in per_option {
        let n = launched.get(&o).copied().unwrap_or(0);
        let opt = &options[o];
        plan.wants.push(Want {
            option: opt.label(),
            jobs,
            nodes: count,
            launching: n,
        });
        for _ in 0..n {
            plan.actions.push(Action::Launch {
                site: opt.site.clone(),
                flavor: opt.flavor.clone(),
                group: opt.group.clone(),
                spot: opt.spot,
                price_per_hour: opt.price_per_hour,
                reason: format!(
                    "{jobs} idle jobs or Mesos tasks need {count} x {}; launching {n} this cycle",
                    opt.label()
                ),
            });
        }
    }
    if wanted > allowed {
        plan.notes.push(format!(
            "ramp: {allowed} of {wanted} wanted nodes this cycle (limits.ramp {}, limits.launches_per_cycle {})",
            l.ramp, l.launches_per_cycle
        ));
    }
    for b in blocked {
        plan.notes.push(format!("launches held back: {b}"));
    }
}
