//! The Mesos master's state through its v1 operator API: `POST /api/v1`
//! with `{"type":"GET_STATE"}` (Mesos 1.11, `docs/operator-http-api.md`,
//! messages in `include/mesos/v1/master/master.proto`).
//!
//! Read: `get_state.get_agents.agents[]` (`agent_info.id.value`,
//! `hostname`, `attributes[]` {name, type, text|scalar},
//! `total_resources[]`, `allocated_resources[]`),
//! `active` and `deactivated` (whether the master offers it),
//! `get_agents.recovered_agents[]` (an `AgentInfo`: known from the
//! registry after a master fail-over, not registered again yet), and
//! `get_state.get_tasks.tasks[]` and `unreachable_tasks[]` (`agent_id.
//! value`, `state`). A task counts until its state is terminal. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{format_error, thousandths, whole, Agent, MesosError};
use crate::model::Resources;

const ENDPOINT: &str = "mesos master POST /api/v1 GET_STATE";

/// The request body.
pub const QUERY: &str = r#"{"type":"GET_STATE"}"#;

/// `DEACTIVATE_AGENT` (Mesos 1.9+): no more offers of the agent's
/// resources; its running tasks go on.
pub fn deactivate(agent: &str) -> String {
    serde_json::json!({
        "type": "DEACTIVATE_AGENT",
        "deactivate_agent": {"agent_id": {"value": agent}},
    })
    .to_string()
}

/// The attribute the pilot's agent carries (`pilot::mesos_unit_text`).
pub const NODE_ATTRIBUTE: &str = "cloudburst_node";

/// Task states after which a task uses nothing (`TaskState` in
/// `mesos.proto`).
const TERMINAL: [&str; 8] = [
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

pub fn parse(body: &[u8]) -> Result<Vec<Agent>, MesosError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format_error(ENDPOINT, e))?;
    if v.get("type").and_then(Value::as_str) != Some("GET_STATE") {
        return Err(format_error(ENDPOINT, "\"type\" is not \"GET_STATE\""));
    }
    let state = v
        .get("get_state")
        .ok_or_else(|| format_error(ENDPOINT, "no \"get_state\""))?;
    let mut tasks: BTreeMap<&str, u64> = BTreeMap::new();
    for list in ["tasks", "unreachable_tasks"] {
        for t in array(state.pointer(&format!("/get_tasks/{list}")), list)? {
            let Some(agent) = t.pointer("/agent_id/value").and_then(Value::as_str) else {
                continue; // not placed on an agent yet
            };
            let terminal = t
                .get("state")
                .and_then(Value::as_str)
                .is_some_and(|s| TERMINAL.contains(&s));
            if !terminal {
                *tasks.entry(agent).or_default() += 1;
            }
        }
    }
    let mut out = Vec::new();
    for a in array(state.pointer("/get_agents/agents"), "agents")? {
        let info = a
            .get("agent_info")
            .ok_or_else(|| format_error(ENDPOINT, "an agent without \"agent_info\""))?;
        let mut agent = agent_info(info)?;
        agent.tasks = tasks.get(agent.id.as_str()).copied().unwrap_or(0);
        let flag = |k: &str| a.get(k).and_then(Value::as_bool);
        agent.offered = flag("active").unwrap_or(true) && !flag("deactivated").unwrap_or(false);
        let total = resources(a.get("total_resources"));
        let used = resources(a.get("allocated_resources"));
        agent.free = total.minus(&used, 1);
        out.push(agent);
    }
    for info in array(
        state.pointer("/get_agents/recovered_agents"),
        "recovered_agents",
    )? {
        let mut agent = agent_info(info)?;
        agent.registered = false;
        agent.offered = false;
        out.push(agent);
    }
    Ok(out)
}

fn array<'a>(v: Option<&'a Value>, what: &str) -> Result<&'a [Value], MesosError> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format_error(
            ENDPOINT,
            format!("\"{what}\" is not an array"),
        )),
    }
}

fn agent_info(info: &Value) -> Result<Agent, MesosError> {
    let id = info
        .pointer("/id/value")
        .and_then(Value::as_str)
        .ok_or_else(|| format_error(ENDPOINT, "an agent without \"id.value\""))?;
    let node = info
        .get("attributes")
        .and_then(Value::as_array)
        .and_then(|attrs| {
            attrs
                .iter()
                .find(|a| a.get("name").and_then(Value::as_str) == Some(NODE_ATTRIBUTE))
        })
        .and_then(|a| {
            a.pointer("/text/value")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| a.pointer("/scalar/value").map(|v| v.to_string()))
        });
    Ok(Agent {
        id: id.to_string(),
        hostname: info
            .get("hostname")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        node,
        registered: true,
        tasks: 0,
        offered: true,
        free: resources(info.get("resources")),
    })
}

/// The scalar resources of a `Resource` list, summed over roles.
fn resources(v: Option<&Value>) -> Resources {
    let mut r = Resources::default();
    for res in v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let Some(x) = res.pointer("/scalar/value").and_then(Value::as_f64) else {
            continue;
        };
        match res.get("name").and_then(Value::as_str) {
            Some("cpus") => r.cpus += thousandths(x),
            Some("mem") => r.memory += whole(x),
            Some("disk") => r.disk += whole(x),
            Some("gpus") => r.gpus += whole(x),
            _ => {}
        }
    }
    r
}
