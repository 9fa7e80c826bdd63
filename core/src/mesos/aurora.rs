//! Aurora's pending tasks: `POST /apibeta/getTasksWithoutConfigs` with
//! `{"query": {"statuses": ["PENDING", "THROTTLED"]}}`.
//!
//! `/apibeta` is the scheduler's JSON form of its Thrift API (Aurora
//! 0.22.0, `api.thrift`; unions as `{"field": value}`, enums by name).
//! The answer is a `Response`: `responseCode`, `details[].message`, and
//! `result.scheduleStatusResult.tasks[]`, each a `ScheduledTask` with
//! `status` and `assignedTask.task` (a `TaskConfig`: `job` {role,
//! environment, name}, `resources` [{numCpus} | {ramMb} | {diskMb} |
//! {numGpus} | {namedPort}], `constraints`).
//!
//! PENDING tasks wait for an offer: demand. THROTTLED tasks are held by
//! Aurora's own back-off after failures: reported, not bought for. Tasks
//! of one job with one request are one unit. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use super::constraint::{Constraint, Rule};
use super::{format_error, thousandths, whole, MesosError, Unit};
use crate::model::Resources;

const ENDPOINT: &str = "aurora POST /apibeta/getTasksWithoutConfigs";

/// The request body.
pub const QUERY: &str = r#"{"query":{"statuses":["PENDING","THROTTLED"]}}"#;

pub fn parse(body: &[u8]) -> Result<Vec<Unit>, MesosError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format_error(ENDPOINT, e))?;
    let code = v.get("responseCode").and_then(Value::as_str);
    if code != Some("OK") {
        let details: Vec<&str> = v
            .get("details")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(|m| m.get("message")?.as_str())
                    .collect()
            })
            .unwrap_or_default();
        return match code {
            Some(code) => Err(MesosError::Refused {
                endpoint: ENDPOINT,
                detail: format!("{code}: {}", details.join("; ")),
            }),
            None => Err(format_error(ENDPOINT, "no \"responseCode\"")),
        };
    }
    let tasks = match v.pointer("/result/scheduleStatusResult/tasks") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err(format_error(ENDPOINT, "tasks is not an array")),
    };
    type Key = (String, bool, [u64; 4], Vec<Constraint>);
    let mut units: BTreeMap<Key, u64> = BTreeMap::new();
    for (i, t) in tasks.iter().enumerate() {
        let at = |what: &str| format_error(ENDPOINT, format!("tasks[{i}]: {what}"));
        let throttled = match t.get("status").and_then(Value::as_str) {
            Some("PENDING") => false,
            Some("THROTTLED") => true,
            // Asked for these two only; anything else is not waiting.
            Some(_) => continue,
            None => return Err(at("no \"status\"")),
        };
        let config = t
            .pointer("/assignedTask/task")
            .ok_or_else(|| at("no assignedTask.task"))?;
        let job = config.get("job").ok_or_else(|| at("no task.job"))?;
        let key = ["role", "environment", "name"]
            .map(|k| job.get(k).and_then(Value::as_str).unwrap_or("?"))
            .join("/");
        let r = resources(config);
        let constraints = super::constraint::list(config.get("constraints"), constraint);
        *units
            .entry((
                key,
                throttled,
                [r.cpus, r.memory, r.disk, r.gpus],
                constraints,
            ))
            .or_default() += 1;
    }
    Ok(units
        .into_iter()
        .map(
            |((name, delayed, [cpus, memory, disk, gpus], constraints), count)| Unit {
                source: "aurora",
                name,
                count,
                request: Resources {
                    cpus,
                    memory,
                    disk,
                    gpus,
                },
                delayed,
                constraints,
            },
        )
        .collect())
}

/// A `Constraint` {name, constraint: {value: {negated, values}} |
/// {limit: {limit}}}; `host` is the agent's hostname.
fn constraint(c: &Value) -> Option<Constraint> {
    let name = c.get("name")?.as_str()?;
    let field = if name == "host" { "hostname" } else { name };
    let rule = if let Some(v) = c.pointer("/constraint/value") {
        let values = v
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter_map(|x| Some(x.as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if v.get("negated").and_then(Value::as_bool).unwrap_or(false) {
            Rule::NoneOf(values)
        } else {
            Rule::OneOf(values)
        }
    } else if let Some(n) = c.pointer("/constraint/limit/limit") {
        Rule::PerValue(n.as_u64())
    } else {
        Rule::Unmodelled(c.get("constraint")?.to_string())
    };
    Some(Constraint::new(field, rule))
}

/// A `TaskConfig`'s request: the `resources` set, else the scalar fields
/// of releases before 0.20.
fn resources(config: &Value) -> Resources {
    let mut r = Resources::default();
    match config.get("resources").and_then(Value::as_array) {
        Some(set) => {
            for res in set {
                let n = |k: &str| res.get(k).and_then(Value::as_f64);
                if let Some(c) = n("numCpus") {
                    r.cpus += thousandths(c);
                } else if let Some(m) = n("ramMb") {
                    r.memory += whole(m);
                } else if let Some(d) = n("diskMb") {
                    r.disk += whole(d);
                } else if let Some(g) = n("numGpus") {
                    r.gpus += whole(g);
                }
            }
        }
        None => {
            let n = |k: &str| config.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            r.cpus = thousandths(n("numCpus"));
            r.memory = whole(n("ramMb"));
            r.disk = whole(n("diskMb"));
        }
    }
    r
}
