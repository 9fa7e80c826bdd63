//! Marathon's launch queue, `GET /v2/queue`: the apps and pods with
//! instances left to launch.
//!
//! Read as Marathon's REST API reference describes it (Marathon 1.x,
//! `docs/rest-api/public/api/v2/types/queue.raml` and `app.raml`,
//! `pod.raml`): `{"queue": [QueueItem]}`, each item an app (`app.cpus`,
//! `mem`, `disk`, `gpus`, `constraints`) or a pod (`pod.containers[].
//! resources`, `executorResources`, `scheduling.placement.constraints`),
//! with `count` (instances left) and `delay` (`timeLeftSeconds`,
//! `overdue`).
//!
//! An item whose delay has time left is in Marathon's back-off (its
//! tasks keep failing): more nodes would not help it, so it is reported
//! as delayed and not bought for. Once the delay is over (`timeLeftSeconds`
//! 0, `overdue`) its instances are waiting for offers: demand. Pure.

use serde_json::Value;

use super::constraint::{self, Constraint};
use super::{format_error, thousandths, whole, MesosError, Unit};
use crate::model::Resources;

const ENDPOINT: &str = "marathon GET /v2/queue";

pub fn parse(body: &[u8]) -> Result<Vec<Unit>, MesosError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format_error(ENDPOINT, e))?;
    let Some(obj) = v.as_object() else {
        return Err(format_error(ENDPOINT, "the body is not an object"));
    };
    // `queue` is optional in the reference: absent is an empty queue.
    let items = match obj.get("queue") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format_error(ENDPOINT, "\"queue\" is not an array")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| unit(i, item))
        .collect()
}

fn unit(i: usize, item: &Value) -> Result<Unit, MesosError> {
    let at = |what: &str| format_error(ENDPOINT, format!("queue[{i}]: {what}"));
    let count = item
        .get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| at("no \"count\""))?;
    let delayed = item
        .get("delay")
        .and_then(|d| d.get("timeLeftSeconds"))
        .and_then(Value::as_f64)
        .is_some_and(|left| left > 0.0);
    let (name, request, constraints) = if let Some(app) = item.get("app") {
        let name = app
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| at("app without \"id\""))?;
        let request = scalars(app);
        let constraints = constraint::list(app.get("constraints"), |c| {
            let part = |k: usize| c.get(k).and_then(Value::as_str);
            Some(Constraint::marathon(part(0)?, part(1)?, part(2)))
        });
        (name, request, constraints)
    } else if let Some(pod) = item.get("pod") {
        let name = pod
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| at("pod without \"id\""))?;
        let mut request = pod
            .get("executorResources")
            .map(scalars)
            .unwrap_or_default();
        let containers = pod
            .get("containers")
            .and_then(Value::as_array)
            .ok_or_else(|| at("pod without \"containers\""))?;
        for c in containers {
            let r = c.get("resources").map(scalars).unwrap_or_default();
            request.cpus += r.cpus;
            request.memory += r.memory;
            request.disk += r.disk;
            request.gpus += r.gpus;
        }
        let constraints = constraint::list(pod.pointer("/scheduling/placement/constraints"), |c| {
            let part = |k: &str| c.get(k).and_then(Value::as_str);
            Some(Constraint::marathon(
                part("fieldName")?,
                part("operator")?,
                part("value"),
            ))
        });
        (name, request, constraints)
    } else {
        return Err(at("neither \"app\" nor \"pod\""));
    };
    Ok(Unit {
        source: "marathon",
        name: name.to_string(),
        count,
        request,
        delayed,
        constraints,
    })
}

/// `cpus`, `mem`, `disk`, `gpus` of an app or a container's resources.
fn scalars(v: &Value) -> Resources {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    Resources {
        cpus: thousandths(f("cpus")),
        memory: whole(f("mem")),
        disk: whole(f("disk")),
        gpus: whole(f("gpus")),
    }
}
