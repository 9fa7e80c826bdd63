//! Step 3b: Mesos tasks waiting in the frameworks' queues, placed after
//! the condor demand on what each node offers Mesos: the free share of
//! registered agents, the whole share of nodes booting or planned, then
//! new nodes of the cheapest flavour.

use std::collections::BTreeMap;

use crate::mesos::constraint::{Admission, PilotAttributes};
use crate::mesos::MesosView;
use crate::model::Resources;
use crate::observed::Observed;

use super::limits::{in_backoff, prefer_within_limits};
use super::placement::{fill, life_end, new_life_end, Placement, Room};
use super::Inputs;

/// Places the queued tasks of `view` in `p`; a framework that could not
/// be read buys nothing.
pub(super) fn place_mesos(
    inputs: &Inputs<'_>,
    view: &MesosView,
    p: &mut Placement,
    notes: &mut Vec<String>,
) {
    let options = inputs.options;
    let queue = match &view.queue {
        Observed::Known(q) => q,
        Observed::Unknown(why) => {
            notes.push(format!(
                "the Mesos frameworks could not be read ({why}): nothing is launched for Mesos this cycle"
            ));
            return;
        }
    };
    // What each pilot's agent carries, for the frameworks' constraints.
    let agents = view.by_node().unwrap_or_default();
    let no_extra = BTreeMap::new();
    let extra = inputs
        .config
        .pilot
        .mesos
        .as_ref()
        .map_or(&no_extra, |m| &m.attributes);
    let attributes = |o: usize, node: Option<usize>| {
        let node = node.map(|i| &inputs.nodes[i]);
        PilotAttributes {
            site: &options[o].site,
            flavor: &options[o].flavor,
            node: node.map(|n| n.id.as_str()),
            hostname: node
                .and_then(|n| agents.get(n.id.as_str()))
                .filter(|a| a.registered)
                .map(|a| a.hostname.as_str()),
            extra,
        }
    };
    for unit in queue.iter().filter(|u| !u.delayed) {
        let req = unit.request;
        let admission = Admission::new(&unit.constraints);
        // How many of its tasks a node offering `free` takes.
        let cap = |n: u64| unit.per_host().map_or(n, |k| n.min(k));
        let per_node = |free: &Resources| cap(free.fits(&req));
        let mut left = fill(
            p.rooms
                .iter_mut()
                .filter(|r| admission.admits(&attributes(r.option, r.node))),
            unit.count,
            &req,
            |r| &mut r.mesos_free,
            cap,
            false,
        );
        while left > 0 {
            let wanted = |i: usize, o: usize| {
                per_node(&options[o].mesos_share) > 0 && admission.admits(&attributes(o, Some(i)))
            };
            let mut took = 0;
            let room = |i: usize, o: usize| {
                took = per_node(&options[o].mesos_share).min(left);
                Room {
                    option: o,
                    free: options[o].capacity,
                    node: Some(i),
                    life_end: life_end(&inputs.nodes[i], &inputs.config.timers),
                    used: true,
                    empty: true,
                    mesos_free: options[o].mesos_share.minus(&req, took),
                }
            };
            if !p.bring_back(wanted, room) {
                break;
            }
            left -= took;
        }
        if left == 0 {
            continue;
        }
        // New nodes: general-pool flavours whose share fits a task, the
        // cheapest node first (every flavour offers Mesos the same share).
        let fitting: Vec<usize> = (0..options.len())
            .filter(|&o| options[o].group.is_none())
            .filter(|&o| !in_backoff(inputs, o))
            .filter(|&o| per_node(&options[o].mesos_share) > 0)
            .collect();
        let usable: Vec<usize> = fitting
            .iter()
            .copied()
            .filter(|&o| admission.admits(&attributes(o, None)))
            .collect();
        if let (Some(&o), true) = (fitting.first(), usable.is_empty()) {
            let why = admission
                .refusal(&attributes(o, None))
                .map_or_else(String::new, ToString::to_string);
            notes.push(format!(
                "{left} Mesos tasks of {} {} wait: no pilot we could boot meets their constraint {why}",
                unit.source, unit.name
            ));
            continue;
        }
        let best = prefer_within_limits(inputs, &p.existing, usable)
            .into_iter()
            .min_by(|&a, &b| {
                let (oa, ob) = (&options[a], &options[b]);
                oa.price_per_hour
                    .total_cmp(&ob.price_per_hour)
                    .then(ob.priority.cmp(&oa.priority))
                    .then(oa.label().cmp(&ob.label()))
            });
        let Some(o) = best else {
            notes.push(format!(
                "{left} Mesos tasks of {} {} wait: no flavour out of back-off offers one task's {} cpu, {} MB, {} MB disk in its [pilot.mesos] share",
                unit.source,
                unit.name,
                req.cpus as f64 / 1000.0,
                req.memory,
                req.disk
            ));
            continue;
        };
        let fit = per_node(&options[o].mesos_share);
        p.book_new_nodes(o, left, fit, |take| Room {
            option: o,
            free: options[o].capacity,
            node: None,
            life_end: new_life_end(inputs),
            used: true,
            empty: true,
            mesos_free: options[o].mesos_share.minus(&req, take),
        });
    }
}
