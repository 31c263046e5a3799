//! Status conditions: set one keeping its transition time when its status did not change.

use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

/// `"True"` or `"False"`.
pub fn status_str(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The conditions `old` with `type_` set to (`ok`, `reason`, `message`): the transition time is
/// kept when the status is unchanged, else `now`.
pub fn set_condition(
    old: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let status = status_str(ok);
    let previous = old.iter().find(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let mut conditions: Vec<Condition> = old.iter().filter(|c| c.type_ != type_).cloned().collect();
    conditions.push(Condition {
        last_transition_time,
        message: message.to_owned(),
        observed_generation: generation,
        reason: reason.to_owned(),
        status: status.to_owned(),
        type_: type_.to_owned(),
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    conditions
}

/// Whether the condition `type_` in `conditions` is present and true.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}
