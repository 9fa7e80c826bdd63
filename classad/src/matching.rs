//! Matchmaking as the negotiator does it: an expression evaluated with `MY`
//! bound to one ad and `TARGET` to the other; `matches`, `symmetric_match`
//! and `rank`.

use super::ast::{ClassAd, Expr};
use super::eval::{Arena, Evaluator, Fail};
use super::unparse::{bytes_to_string, Style};
use super::value::{unparse_value_into, Kind, Value};

/// Evaluates `expr` with `my` as its scope and `target` as the other ad of
/// a match, and hands the value to `f` (values borrow the evaluation).
pub fn with_value<R>(
    expr: &Expr,
    my: Option<&ClassAd>,
    target: Option<&ClassAd>,
    now: i64,
    f: impl FnOnce(Result<&Value<'_>, Fail>) -> R,
) -> R {
    let arena = Arena::new();
    let mut ev = Evaluator::new(&arena, now);
    // As libclassad's bindings do: a target without a scope gets an empty
    // scope ad.
    let empty = ClassAd::new();
    let my = match (my, target) {
        (None, Some(_)) => Some(&empty),
        (m, _) => m,
    };
    let scope = match (my, target) {
        (Some(m), Some(t)) => Some(ev.match_scopes(m, t).0),
        (Some(m), None) => Some(ev.scope_of(m)),
        _ => None,
    };
    let r = ev.eval_in(expr, scope);
    f(r.as_ref().map_err(|e| *e))
}

/// The value's type and its canonical new-syntax text, as the official
/// library prints the simplified result.
pub fn eval_to_text(
    expr: &Expr,
    my: Option<&ClassAd>,
    target: Option<&ClassAd>,
    now: i64,
) -> Result<(Kind, String), Fail> {
    with_value(expr, my, target, now, |r| {
        r.map(|v| {
            let mut out = Vec::new();
            unparse_value_into(v, Style::New, &mut out);
            (v.kind(), bytes_to_string(out))
        })
    })
}

/// Truthiness as the Python bindings' `matches` reads a result: true, or a
/// non-zero number.
fn truthy(v: &Value<'_>) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Real(r) => *r != 0.0,
        _ => false,
    }
}

/// A reusable matcher: one arena-free evaluator per call, no allocation for
/// the common case of scalar results.
pub struct Matcher {
    pub now: i64,
}

impl Matcher {
    pub fn new(now: i64) -> Matcher {
        Matcher { now }
    }

    /// Does `owner`'s `Requirements`, evaluated with MY = `owner` and
    /// TARGET = `other`, come out true?
    pub fn requirements_accept(&self, owner: &ClassAd, other: &ClassAd) -> bool {
        self.eval_attr_in_match(owner, other, b"Requirements", truthy)
            .unwrap_or(false)
    }

    /// Both ads' `Requirements` accept the other.
    pub fn symmetric_match(&self, a: &ClassAd, b: &ClassAd) -> bool {
        self.requirements_accept(a, b) && self.requirements_accept(b, a)
    }

    /// `owner`'s `Rank` of `other`, as the negotiator reads it (a number,
    /// else 0).
    pub fn rank(&self, owner: &ClassAd, other: &ClassAd) -> f64 {
        self.eval_attr_in_match(owner, other, b"Rank", |v| v.number_as_f64().unwrap_or(0.0))
            .unwrap_or(0.0)
    }

    /// Evaluates `owner.attr` in a match with `other`; `None` if the
    /// attribute is missing or evaluation fails.
    pub fn eval_attr_in_match<R>(
        &self,
        owner: &ClassAd,
        other: &ClassAd,
        attr: &[u8],
        f: impl FnOnce(&Value<'_>) -> R,
    ) -> Option<R> {
        let expr = owner.get(attr)?;
        let arena = Arena::new();
        let mut ev = Evaluator::new(&arena, self.now);
        let (mine, _) = ev.match_scopes(owner, other);
        ev.eval_in(expr, Some(mine)).ok().map(|v| f(&v))
    }

    /// Evaluates an arbitrary expression with MY = `my`, TARGET = `target`.
    pub fn eval_with<R>(
        &self,
        expr: &Expr,
        my: &ClassAd,
        target: &ClassAd,
        f: impl FnOnce(&Value<'_>) -> R,
    ) -> Option<R> {
        let arena = Arena::new();
        let mut ev = Evaluator::new(&arena, self.now);
        let (mine, _) = ev.match_scopes(my, target);
        ev.eval_in(expr, Some(mine)).ok().map(|v| f(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_ad;

    #[test]
    fn job_and_machine_match_both_ways() {
        let job = parse_ad(
            b"[RequestMemory = 2048; Requirements = TARGET.Memory >= RequestMemory && TARGET.CloudNode =?= true]",
        )
        .unwrap();
        let big = parse_ad(
            b"[Memory = 4096; CloudNode = true; Requirements = TARGET.RequestMemory <= Memory]",
        )
        .unwrap();
        let small = parse_ad(b"[Memory = 1024; CloudNode = true; Requirements = true]").unwrap();
        let m = Matcher::new(0);
        assert!(m.symmetric_match(&job, &big));
        assert!(!m.symmetric_match(&job, &small));
        // Unscoped names fall back to the other ad (old ClassAd semantics).
        let e = crate::parser::parse_expr(b"Memory - RequestMemory").unwrap();
        assert_eq!(
            m.eval_with(&e, &job, &big, |v| v.number_as_f64()),
            Some(Some(2048.0))
        );
    }
}
