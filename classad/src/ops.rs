//! Operator semantics on values: libclassad's `_doOperation` and helpers.
//! These are pure functions; short-circuiting and subscripting, which need
//! to evaluate, live in `eval`.

use super::ast::{AbsTime, BinOp, UnOp};
use super::value::{c_double_to_i32, Value};

/// Which operand types take part in a comparison or arithmetic after
/// libclassad's `coerceToNumber`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Coerced {
    ClassAd,
    List,
    String,
    Undefined,
    Error,
    AbsTime,
    RelTime,
    Integer(i64, i64),
    Real(f64, f64),
}

fn coerce(v1: &Value<'_>, v2: &Value<'_>) -> Coerced {
    use Value as V;
    if matches!(v1, V::Ad(_)) || matches!(v2, V::Ad(_)) {
        return Coerced::ClassAd;
    }
    if matches!(v1, V::List(_)) || matches!(v2, V::List(_)) {
        return Coerced::List;
    }
    if matches!(v1, V::Str(_)) || matches!(v2, V::Str(_)) {
        return Coerced::String;
    }
    if v1.is_undefined() || v2.is_undefined() {
        return Coerced::Undefined;
    }
    if v1.is_error() || v2.is_error() {
        return Coerced::Error;
    }
    if matches!(v1, V::AbsTime(_)) || matches!(v2, V::AbsTime(_)) {
        return Coerced::AbsTime;
    }
    if matches!(v1, V::RelTime(_)) || matches!(v2, V::RelTime(_)) {
        return Coerced::RelTime;
    }
    let num = |v: &Value<'_>| -> (Option<i64>, Option<f64>) {
        match *v {
            V::Bool(b) => (Some(i64::from(b)), None),
            V::Int(i) => (Some(i), None),
            V::Real(r) => (None, Some(r)),
            _ => (None, None),
        }
    };
    match (num(v1), num(v2)) {
        ((Some(a), _), (Some(b), _)) => Coerced::Integer(a, b),
        ((Some(a), _), (_, Some(b))) => Coerced::Real(a as f64, b),
        ((_, Some(a)), (Some(b), _)) => Coerced::Real(a, b as f64),
        ((_, Some(a)), (_, Some(b))) => Coerced::Real(a, b),
        _ => Coerced::Error,
    }
}

/// Type identity for `=?=`: libclassad distinguishes lists and ads that
/// evaluation produced from those it owns (`SLIST` vs `LIST`).
fn same_type(v1: &Value<'_>, v2: &Value<'_>) -> bool {
    match (v1, v2) {
        (Value::List(a), Value::List(b)) => a.shared == b.shared,
        (Value::Ad(a), Value::Ad(b)) => a.shared == b.shared,
        _ => v1.kind() == v2.kind(),
    }
}

fn ord_result(op: BinOp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, ord) {
        (BinOp::Lt, Some(Less)) => true,
        (BinOp::Le, Some(Less | Equal)) => true,
        (BinOp::Eq | BinOp::Is, Some(Equal)) => true,
        (BinOp::Ne | BinOp::Isnt, Some(Less | Greater)) => true,
        (BinOp::Ge, Some(Greater | Equal)) => true,
        (BinOp::Gt, Some(Greater)) => true,
        // NaN: every comparison false except the inequalities
        (BinOp::Ne | BinOp::Isnt, None) => true,
        _ => false,
    }
}

fn strcasecmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
}

/// Comparison operators, including `=?=`/`=!=` (after strictness checks).
pub fn compare<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    let meta = matches!(op, BinOp::Is | BinOp::Isnt);
    if meta {
        let same = same_type(v1, v2);
        if !same {
            return Value::Bool(op == BinOp::Isnt);
        }
        if v1.is_exceptional() {
            return Value::Bool(op == BinOp::Is);
        }
        return match (v1, v2) {
            (Value::Str(a), Value::Str(b)) => Value::Bool(ord_result(op, Some(a[..].cmp(&b[..])))),
            (Value::Int(a), Value::Int(b)) => Value::Bool(ord_result(op, Some(a.cmp(b)))),
            (Value::Real(a), Value::Real(b)) => Value::Bool(ord_result(op, a.partial_cmp(b))),
            (Value::Bool(a), Value::Bool(b)) => Value::Bool(ord_result(op, Some(a.cmp(b)))),
            (Value::AbsTime(a), Value::AbsTime(b)) => {
                let eq = a.secs == b.secs && a.offset == b.offset;
                Value::Bool(if op == BinOp::Is { eq } else { !eq })
            }
            (Value::RelTime(a), Value::RelTime(b)) => Value::Bool(ord_result(op, a.partial_cmp(b))),
            _ => Value::Error,
        };
    }
    match coerce(v1, v2) {
        Coerced::String => match (v1, v2) {
            (Value::Str(a), Value::Str(b)) => Value::Bool(ord_result(op, Some(strcasecmp(a, b)))),
            _ => Value::Error,
        },
        Coerced::Integer(a, b) => Value::Bool(ord_result(op, Some(a.cmp(&b)))),
        Coerced::Real(a, b) => Value::Bool(ord_result(op, a.partial_cmp(&b))),
        Coerced::AbsTime => match (v1, v2) {
            (Value::AbsTime(a), Value::AbsTime(b)) => {
                Value::Bool(ord_result(op, Some(a.secs.cmp(&b.secs))))
            }
            _ => Value::Error,
        },
        Coerced::RelTime => match (v1, v2) {
            (Value::RelTime(a), Value::RelTime(b)) => Value::Bool(ord_result(op, a.partial_cmp(b))),
            _ => Value::Error,
        },
        Coerced::ClassAd | Coerced::List | Coerced::Undefined | Coerced::Error => Value::Error,
    }
}

fn is_arith_operand(v: &Value<'_>) -> bool {
    matches!(
        v,
        Value::Int(_) | Value::Real(_) | Value::AbsTime(_) | Value::RelTime(_) | Value::Bool(_)
    )
}

/// `+ - * / %` after strictness checks.
pub fn arithmetic<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    if !is_arith_operand(v1) || !is_arith_operand(v2) {
        return Value::Error;
    }
    match coerce(v1, v2) {
        Coerced::Integer(a, b) => match op {
            BinOp::Add => Value::Int(a.wrapping_add(b)),
            BinOp::Sub => Value::Int(a.wrapping_sub(b)),
            BinOp::Mul => Value::Int(a.wrapping_mul(b)),
            BinOp::Div => {
                if a == i64::MIN && b == -1 {
                    Value::Int(i64::MAX)
                } else if b == 0 {
                    Value::Error
                } else {
                    Value::Int(a / b)
                }
            }
            BinOp::Mod => {
                if a == i64::MIN && b == -1 {
                    Value::Int(0)
                } else if b == 0 {
                    Value::Error
                } else {
                    Value::Int(a % b)
                }
            }
            _ => Value::Error,
        },
        Coerced::Real(a, b) => {
            let r = match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                _ => return Value::Error,
            };
            // libclassad checks only `== HUGE_VAL`: -inf and NaN pass.
            if r == f64::INFINITY {
                Value::Error
            } else {
                Value::Real(r)
            }
        }
        Coerced::AbsTime | Coerced::RelTime => time_arithmetic(op, v1, v2),
        _ => Value::Error,
    }
}

fn time_arithmetic<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    use Value as V;
    let shift = |t: &AbsTime, by: f64, sign: i64| -> Value<'e> {
        V::AbsTime(AbsTime {
            secs: t.secs.wrapping_add(sign * i64::from(c_double_to_i32(by))),
            offset: t.offset,
        })
    };
    match (op, v1, v2) {
        (BinOp::Add, V::AbsTime(a), V::RelTime(r)) => shift(a, *r, 1),
        (BinOp::Add, V::RelTime(r), V::AbsTime(a)) => shift(a, *r, 1),
        (BinOp::Add, V::RelTime(a), V::RelTime(b)) => V::RelTime(a + b),
        (BinOp::Sub, V::AbsTime(a), V::AbsTime(b)) => {
            V::RelTime(a.secs.wrapping_sub(b.secs) as f64)
        }
        (BinOp::Sub, V::AbsTime(a), V::RelTime(r)) => shift(a, *r, -1),
        (BinOp::Sub, V::RelTime(a), V::RelTime(b)) => V::RelTime(a - b),
        (BinOp::Mul, V::RelTime(r), V::Int(n)) => V::RelTime(r * *n as f64),
        (BinOp::Div, V::RelTime(r), V::Int(n)) => V::RelTime(r / *n as f64),
        (BinOp::Mul, V::RelTime(r), V::Real(n)) => V::RelTime(r * n),
        (BinOp::Div, V::RelTime(r), V::Real(n)) => V::RelTime(r / n),
        (BinOp::Mul, V::Int(n), V::RelTime(r)) => V::RelTime(*n as f64 * r),
        // libclassad reads the operands of real * relTime the wrong way
        // round and multiplies zero by an uninitialised number.
        (BinOp::Mul, V::Real(_), V::RelTime(_)) => V::RelTime(0.0),
        _ => V::Error,
    }
}

/// `!`, `||`, `&&` once both needed operands are known.
pub fn logical<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    let norm = |v: &Value<'e>| -> Option<Value<'e>> {
        match v {
            Value::Bool(_) | Value::Undefined | Value::Error => Some(v.clone()),
            Value::Int(_) | Value::Real(_) => Some(Value::Bool(v.as_bool_equiv().expect("number"))),
            _ => None,
        }
    };
    let (Some(a), Some(b)) = (norm(v1), norm(v2)) else {
        return Value::Error;
    };
    match op {
        BinOp::Or => match (a, b) {
            (Value::Bool(true), _) => Value::Bool(true),
            (Value::Error, _) => Value::Error,
            (Value::Bool(false), b) => b,
            (_, b @ (Value::Undefined | Value::Error)) => b,
            (_, Value::Bool(true)) => Value::Bool(true),
            _ => Value::Undefined,
        },
        BinOp::And => match (a, b) {
            (Value::Bool(false), _) => Value::Bool(false),
            (Value::Error, _) => Value::Error,
            (Value::Bool(true), b) => b,
            (_, b @ (Value::Undefined | Value::Error)) => b,
            (_, Value::Bool(false)) => Value::Bool(false),
            _ => Value::Undefined,
        },
        _ => Value::Error,
    }
}

/// Bitwise and shift operators on integers.
pub fn bitwise<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    let (Value::Int(a), Value::Int(b)) = (v1, v2) else {
        return Value::Error;
    };
    let (a, b) = (*a, *b);
    // Shift counts are used as x86-64 uses them: modulo 64.
    Value::Int(match op {
        BinOp::BitOr => a | b,
        BinOp::BitAnd => a & b,
        BinOp::BitXor => a ^ b,
        BinOp::Shl => a.wrapping_shl(b as u32),
        BinOp::Shr => {
            if a >= 0 {
                a.wrapping_shr(b as u32)
            } else if b <= 0 {
                a
            } else {
                a >> b.min(63)
            }
        }
        BinOp::UShr => {
            if a >= 0 {
                a.wrapping_shr(b as u32)
            } else {
                ((a >> 1) & i64::MAX).wrapping_shr(b.wrapping_sub(1) as u32)
            }
        }
        _ => return Value::Error,
    })
}

/// Unary operators (`+` is not strict about exceptional values; the others
/// are, and the caller has already handled them).
pub fn unary<'e>(op: UnOp, v: Value<'e>) -> Value<'e> {
    match op {
        UnOp::Plus => match v {
            Value::Bool(_) | Value::Str(_) | Value::List(_) | Value::Ad(_) | Value::AbsTime(_) => {
                Value::Error
            }
            other => other,
        },
        _ if v.is_error() => Value::Error,
        _ if v.is_undefined() => Value::Undefined,
        UnOp::Minus => match v {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Real(r) => Value::Real(-r),
            Value::RelTime(r) => Value::RelTime(-r),
            _ => Value::Error,
        },
        UnOp::Not => match v {
            Value::Bool(b) => Value::Bool(!b),
            Value::Int(_) | Value::Real(_) => Value::Bool(!v.as_bool_equiv().expect("number")),
            _ => Value::Error,
        },
        UnOp::BitNot => match v {
            Value::Int(i) => Value::Int(!i),
            _ => Value::Error,
        },
    }
}

/// Strict binary operators: ERROR beats UNDEFINED, the left operand first.
pub fn strict_guard<'e>(v1: &Value<'e>, v2: &Value<'e>) -> Option<Value<'e>> {
    if v1.is_error() || v2.is_error() {
        Some(Value::Error)
    } else if v1.is_undefined() || v2.is_undefined() {
        Some(Value::Undefined)
    } else {
        None
    }
}

/// The operators that need no evaluation beyond their two operand values.
pub fn binary<'e>(op: BinOp, v1: &Value<'e>, v2: &Value<'e>) -> Value<'e> {
    if op.is_strict() {
        if let Some(v) = strict_guard(v1, v2) {
            return v;
        }
    }
    match op {
        BinOp::Lt
        | BinOp::Le
        | BinOp::Ne
        | BinOp::Eq
        | BinOp::Ge
        | BinOp::Gt
        | BinOp::Is
        | BinOp::Isnt => compare(op, v1, v2),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => arithmetic(op, v1, v2),
        BinOp::Or | BinOp::And => logical(op, v1, v2),
        BinOp::BitOr | BinOp::BitXor | BinOp::BitAnd | BinOp::Shl | BinOp::Shr | BinOp::UShr => {
            bitwise(op, v1, v2)
        }
        BinOp::Elvis => {
            if v1.is_undefined() {
                v2.clone()
            } else {
                v1.clone()
            }
        }
        BinOp::Subscript => Value::Error,
    }
}

/// libclassad's `coerceToNumber` side effect: booleans become integers and
/// an integer beside a real becomes a real, in place.
fn coerce_in_place<'a>(v1: &mut Value<'a>, v2: &mut Value<'a>) {
    let numeric = |v: &Value<'_>| matches!(v, Value::Bool(_) | Value::Int(_) | Value::Real(_));
    if !numeric(v1) || !numeric(v2) {
        return;
    }
    for v in [&mut *v1, &mut *v2] {
        if let Value::Bool(b) = *v {
            *v = Value::Int(i64::from(b));
        }
    }
    match (&*v1, &*v2) {
        (Value::Int(i), Value::Real(_)) => *v1 = Value::Real(*i as f64),
        (Value::Real(_), Value::Int(i)) => *v2 = Value::Real(*i as f64),
        _ => {}
    }
}

/// libclassad's `Operation::Operate`, which built-ins such as `member`,
/// `min` and `anyCompare` call: its coercions change the operands in place,
/// and those changed values are what later iterations see.
pub fn operate<'e>(op: BinOp, v1: &mut Value<'e>, v2: &mut Value<'e>) -> Value<'e> {
    if op.is_strict() && strict_guard(v1, v2).is_some() {
        return binary(op, v1, v2);
    }
    let coerces = match op {
        BinOp::Lt | BinOp::Le | BinOp::Ne | BinOp::Eq | BinOp::Ge | BinOp::Gt => true,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            is_arith_operand(v1) && is_arith_operand(v2)
        }
        _ => false,
    };
    if coerces {
        coerce_in_place(v1, v2);
    }
    binary(op, v1, v2)
}
