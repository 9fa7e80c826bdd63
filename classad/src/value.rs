//! Values that evaluation produces, the conversions between them, and the
//! C number formatting (`%1.15E`, `%.16G`, `%g`) that their text depends on.

use std::borrow::Cow;

use super::ast::{AbsTime, ClassAd, Expr, SmallBytes};
use super::lexer::strtod_prefix;
use super::time::{abstime_to_string, reltime_to_string};
use super::unparse::{unparse_ad_into, unparse_list_into, Style};

/// Index of a scope frame inside one evaluation (see `eval`).
pub type FrameId = u32;

/// A list value: the list's expressions, unevaluated, and the scope they
/// were written in (subscripting evaluates an element there).
#[derive(Clone, Copy, Debug)]
pub struct ListRef<'e> {
    pub items: &'e [Expr],
    pub scope: Option<FrameId>,
    /// libclassad's `SLIST_VALUE`: a list a function built, as opposed to
    /// one written in an expression. `=?=` tells the two apart.
    pub shared: bool,
}

/// A ClassAd value: the record and the frame that stands for it (its scope
/// chain) in the evaluation that produced it.
#[derive(Clone, Copy, Debug)]
pub struct AdRef<'e> {
    pub ad: &'e ClassAd,
    pub frame: FrameId,
    /// libclassad's `SCLASSAD_VALUE` (see [`ListRef::shared`]).
    pub shared: bool,
}

#[derive(Clone, Debug)]
pub enum Value<'e> {
    Undefined,
    Error,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(Cow<'e, [u8]>),
    AbsTime(AbsTime),
    RelTime(f64),
    List(ListRef<'e>),
    Ad(AdRef<'e>),
}

/// The type of a value, by name, as the oracle reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Undefined,
    Error,
    Boolean,
    Integer,
    Real,
    String,
    AbsTime,
    RelTime,
    List,
    ClassAd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Undefined => "undefined",
            Kind::Error => "error",
            Kind::Boolean => "boolean",
            Kind::Integer => "integer",
            Kind::Real => "real",
            Kind::String => "string",
            Kind::AbsTime => "abstime",
            Kind::RelTime => "reltime",
            Kind::List => "list",
            Kind::ClassAd => "classad",
        }
    }
}

impl<'e> Value<'e> {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Undefined => Kind::Undefined,
            Value::Error => Kind::Error,
            Value::Bool(_) => Kind::Boolean,
            Value::Int(_) => Kind::Integer,
            Value::Real(_) => Kind::Real,
            Value::Str(_) => Kind::String,
            Value::AbsTime(_) => Kind::AbsTime,
            Value::RelTime(_) => Kind::RelTime,
            Value::List(_) => Kind::List,
            Value::Ad(_) => Kind::ClassAd,
        }
    }

    pub fn is_undefined(&self) -> bool {
        matches!(self, Value::Undefined)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error)
    }

    pub fn is_exceptional(&self) -> bool {
        matches!(self, Value::Undefined | Value::Error)
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Real(_) | Value::Bool(_))
    }

    pub fn str(s: &'e [u8]) -> Value<'e> {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn string(s: Vec<u8>) -> Value<'e> {
        Value::Str(Cow::Owned(s))
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// libclassad's `IsBooleanValueEquiv`: booleans, and numbers as non-zero.
    pub fn as_bool_equiv(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            Value::Int(i) => Some(i != 0),
            Value::Real(r) => Some(r != 0.0),
            _ => None,
        }
    }

    /// `IsIntegerValue(int&)`: an integer, truncated to 32 bits.
    pub fn as_i32(&self) -> Option<i32> {
        match *self {
            Value::Int(i) => Some(i as i32),
            _ => None,
        }
    }

    /// `IsNumber(long long&)`: numbers with reals truncated toward zero.
    pub fn number_as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Real(r) => Some(c_double_to_i64(r)),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// `IsNumber(double&)`.
    pub fn number_as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int(i) => Some(i as f64),
            Value::Real(r) => Some(r),
            Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }
}

/// `(long long) d` as x86-64 computes it: out-of-range and NaN give i64::MIN.
pub fn c_double_to_i64(d: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || !(-TWO_63..TWO_63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// A relative time read into a `time_t`, as libclassad reads it: through
/// an `int`, so it wraps beyond about 68 years.
pub fn reltime_secs(r: f64) -> i64 {
    i64::from(c_double_to_i32(r))
}

/// `(int) d` as x86-64 computes it: out-of-range and NaN give i32::MIN.
pub fn c_double_to_i32(d: f64) -> i32 {
    let in_range = d > -2_147_483_649.0 && d < 2_147_483_648.0;
    if in_range {
        d as i32
    } else {
        i32::MIN
    }
}

/// `convertValueToStringValue`: `None` means the result is the given
/// exceptional value (UNDEFINED stays UNDEFINED, everything unconvertible is
/// ERROR).
pub fn to_string_value<'e>(v: &Value<'e>) -> Result<Cow<'e, [u8]>, Value<'e>> {
    match v {
        Value::Undefined => Err(Value::Undefined),
        Value::Error => Err(Value::Error),
        Value::Str(s) => Ok(s.clone()),
        Value::AbsTime(t) => {
            let mut out = Vec::new();
            abstime_to_string(*t, &mut out);
            Ok(Cow::Owned(out))
        }
        Value::RelTime(r) => {
            let mut out = Vec::new();
            reltime_to_string(reltime_secs(*r) as f64, &mut out);
            Ok(Cow::Owned(out))
        }
        other => {
            let mut out = Vec::new();
            unparse_value_into(other, Style::New, &mut out);
            Ok(Cow::Owned(out))
        }
    }
}

/// `convertValueToIntegerValue`.
pub fn to_int_value<'e>(v: &Value<'e>) -> Value<'e> {
    match v {
        Value::Undefined => Value::Undefined,
        Value::Error | Value::List(_) | Value::Ad(_) => Value::Error,
        Value::Str(s) => {
            let (r, used) = strtod_prefix(s);
            if used == 0 && r == 0.0 {
                Value::Error
            } else {
                Value::Int(c_double_to_i64(r))
            }
        }
        Value::Bool(b) => Value::Int(i64::from(*b)),
        Value::Int(i) => Value::Int(*i),
        Value::Real(r) => Value::Int(c_double_to_i64(*r)),
        Value::AbsTime(t) => Value::Int(t.secs),
        Value::RelTime(r) => Value::Int(reltime_secs(*r)),
    }
}

/// `convertValueToRealValue`.
pub fn to_real_value<'e>(v: &Value<'e>) -> Value<'e> {
    match v {
        Value::Undefined => Value::Undefined,
        Value::Error | Value::List(_) | Value::Ad(_) => Value::Error,
        Value::Str(s) => {
            let (r, used) = strtod_prefix(s);
            if used == 0 && r == 0.0 {
                Value::Error
            } else {
                Value::Real(r)
            }
        }
        Value::Bool(b) => Value::Real(if *b { 1.0 } else { 0.0 }),
        Value::Int(i) => Value::Real(*i as f64),
        Value::Real(r) => Value::Real(*r),
        Value::AbsTime(t) => Value::Real(t.secs as f64),
        Value::RelTime(r) => Value::Real(reltime_secs(*r) as f64),
    }
}

/// Writes a value as libclassad's unparser would write the literal.
pub fn unparse_value_into(v: &Value<'_>, style: Style, out: &mut Vec<u8>) {
    use super::unparse::{unparse_real, unparse_string};
    match v {
        Value::Undefined => out.extend_from_slice(b"undefined"),
        Value::Error => out.extend_from_slice(b"error"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Real(r) => unparse_real(*r, style, out),
        Value::Str(s) => unparse_string(s, style, out),
        Value::AbsTime(t) => {
            out.extend_from_slice(b"absTime(\"");
            abstime_to_string(*t, out);
            out.extend_from_slice(b"\")");
        }
        Value::RelTime(r) => {
            out.extend_from_slice(b"relTime(\"");
            reltime_to_string(reltime_secs(*r) as f64, out);
            out.extend_from_slice(b"\")");
        }
        Value::List(l) => unparse_list_into(l.items, style, out),
        Value::Ad(a) => unparse_ad_into(a.ad, style, out),
    }
}

/// A literal expression holding a value (libclassad's `MakeLiteral`); lists
/// and ads are copied.
pub fn value_to_expr(v: &Value<'_>) -> Expr {
    match v {
        Value::Undefined => Expr::Undefined,
        Value::Error => Expr::Error,
        Value::Bool(b) => Expr::Bool(*b),
        Value::Int(i) => Expr::Int(*i),
        Value::Real(r) => Expr::Real(*r),
        Value::Str(s) => Expr::Str(SmallBytes::new(s)),
        Value::AbsTime(t) => Expr::AbsTime(*t),
        Value::RelTime(r) => Expr::RelTime(reltime_secs(*r) as f64),
        Value::List(l) => Expr::List(l.items.to_vec()),
        Value::Ad(a) => Expr::Ad(Box::new(a.ad.clone())),
    }
}

/// C's `%.{prec}E` (`upper`) or `%.{prec}e`.
pub fn fmt_e(v: f64, prec: usize, upper: bool) -> String {
    if !v.is_finite() {
        return fmt_nonfinite(v, upper);
    }
    let s = format!("{:.*e}", prec, v);
    let (mant, exp) = s.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mant}{e}{sign}{:02}", exp.abs())
}

fn fmt_nonfinite(v: f64, upper: bool) -> String {
    let s = if v.is_nan() {
        if v.is_sign_negative() {
            "-nan"
        } else {
            "nan"
        }
    } else if v < 0.0 {
        "-inf"
    } else {
        "inf"
    };
    if upper {
        s.to_uppercase()
    } else {
        s.to_string()
    }
}

/// C's `%{width}.{prec}g` with the `0` flag when `width` > 0 (as in `%02g`);
/// `%.16G` is `fmt_g_upper`.
pub fn fmt_g(v: f64, prec: usize, width: usize) -> String {
    let s = fmt_g_impl(v, prec, false);
    if s.len() >= width {
        return s;
    }
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    format!("{sign}{}{digits}", "0".repeat(width - s.len()))
}

pub fn fmt_g_upper(v: f64, prec: usize) -> String {
    fmt_g_impl(v, prec, true)
}

fn fmt_g_impl(v: f64, prec: usize, upper: bool) -> String {
    if !v.is_finite() {
        return fmt_nonfinite(v, upper);
    }
    let p = prec.max(1);
    let e_form = format!("{:.*e}", p - 1, v);
    let (_, exp) = e_form.split_once('e').expect("exponent form");
    let x: i32 = exp.parse().expect("exponent");
    if x >= -4 && (x as i64) < p as i64 {
        let f = format!("{:.*}", (p as i32 - 1 - x) as usize, v);
        strip_zeros(&f)
    } else {
        let s = fmt_e(v, p - 1, upper);
        let e = if upper { 'E' } else { 'e' };
        let (mant, exp) = s.split_once(e).expect("exponent form");
        format!("{}{e}{exp}", strip_zeros(mant))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_formats() {
        assert_eq!(fmt_e(3.5, 15, true), "3.500000000000000E+00");
        assert_eq!(fmt_e(1e-320, 15, true), "9.999888671826830E-321");
        assert_eq!(fmt_g_upper(0.1 + 0.2, 16), "0.3");
        assert_eq!(fmt_g_upper(2.0 / 3.0, 16), "0.6666666666666666");
        assert_eq!(fmt_g_upper(1e20, 16), "1E+20");
        assert_eq!(fmt_g_upper(123456.0, 16), "123456");
        assert_eq!(fmt_g(1.5, 6, 2), "1.5");
        assert_eq!(fmt_g(0.25, 6, 2), "0.25");
    }

    #[test]
    fn c_casts_saturate_like_x86() {
        assert_eq!(c_double_to_i64(1e300), i64::MIN);
        assert_eq!(c_double_to_i64(f64::NAN), i64::MIN);
        assert_eq!(c_double_to_i64(-3.9), -3);
        assert_eq!(c_double_to_i32(3e9), i32::MIN);
    }
}
