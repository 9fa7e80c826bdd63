//! String functions: concatenation, case, substrings, comparisons, version
//! comparison and the regular-expression functions.

use super::super::ast::{Expr, SmallBytes};
use super::super::eval::{Eval, Evaluator, Fail};
use super::super::value::{to_string_value, FrameId, Value};
use super::regex::{regexp_helper, Outcome};
use super::Builtin;

type Args<'e> = &'e [Expr];

/// The separator `join(list)` uses.
static EMPTY_STRING: Expr = Expr::Str(SmallBytes::Inline {
    len: 0,
    buf: [0; 22],
});

/// libclassad's `natural_cmp` (as `strverscmp`): digit runs compare by
/// value; the result is the C difference of the deciding bytes.
pub fn natural_cmp(s1: &[u8], s2: &[u8]) -> i32 {
    let at = |s: &[u8], i: usize| -> u8 { s.get(i).copied().unwrap_or(0) };
    let sc = |c: u8| -> i32 { i32::from(c as i8) };
    let mut i = 0;
    while at(s1, i) != 0 && at(s1, i) == at(s2, i) {
        i += 1;
    }
    if at(s1, i) == at(s2, i) {
        return 0;
    }
    let mut n_beg = i;
    while n_beg > 0 && at(s1, n_beg - 1).is_ascii_digit() {
        n_beg -= 1;
    }
    if n_beg == i && (!at(s1, i).is_ascii_digit() || !at(s2, i).is_ascii_digit()) {
        return sc(at(s1, i)) - sc(at(s2, i));
    }
    let mut z1 = n_beg;
    while at(s1, z1) == b'0' {
        z1 += 1;
    }
    let mut z2 = n_beg;
    while at(s2, z2) == b'0' {
        z2 += 1;
    }
    if z1 > n_beg && !at(s1, z1).is_ascii_digit() {
        z1 -= 1;
    }
    if z2 > n_beg && !at(s2, z2).is_ascii_digit() {
        z2 -= 1;
    }
    if z1 - n_beg != z2 - n_beg {
        return (z2 - n_beg) as i32 - (z1 - n_beg) as i32;
    }
    if z1 > n_beg {
        return sc(at(s1, i)) - sc(at(s2, i));
    }
    let mut e1 = z1;
    while at(s1, e1).is_ascii_digit() {
        e1 += 1;
    }
    let mut e2 = z2;
    while at(s2, e2).is_ascii_digit() {
        e2 += 1;
    }
    if e1 - n_beg != e2 - n_beg {
        (e1 - n_beg) as i32 - (e2 - n_beg) as i32
    } else {
        sc(at(s1, i)) - sc(at(s2, i))
    }
}

fn c_str(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
}

impl<'e> Evaluator<'e> {
    pub(super) fn str_cat(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        let is_join = f == Builtin::Join;
        // Each item with the scope it was written in (list elements carry
        // their list's; arguments the call's, `None` here).
        let mut items: Vec<(&'e Expr, Option<Option<FrameId>>)> =
            args.iter().map(|a| (a, None)).collect();
        if is_join && !args.is_empty() && args.len() <= 2 {
            if self.depth <= 0 {
                return Err(Fail);
            }
            self.depth -= 1;
            let last = self.eval(&args[args.len() - 1]);
            self.depth += 1;
            if let Value::List(l) = last? {
                let head = if args.len() > 1 {
                    &args[0]
                } else {
                    &EMPTY_STRING
                };
                items = std::iter::once((head, None))
                    .chain(l.items.iter().map(|e| (e, Some(l.scope))))
                    .collect();
            }
        }
        let mut buf = Vec::new();
        let mut sep: Vec<u8> = Vec::new();
        let (mut undef, mut defined) = (false, false);
        for (i, (e, scope)) in items.into_iter().enumerate() {
            if self.depth <= 0 {
                return Err(Fail);
            }
            self.depth -= 1;
            let v = match scope {
                Some(scope) => self.eval_element(scope, e),
                None => self.eval(e),
            };
            self.depth += 1;
            let s = match to_string_value(&v?) {
                Ok(s) => s,
                Err(Value::Undefined) => {
                    undef = true;
                    if is_join {
                        continue;
                    }
                    defined = false;
                    break;
                }
                Err(_) => return Ok(Value::Error),
            };
            if is_join {
                if i == 0 {
                    sep = s.into_owned();
                    continue;
                }
                if !buf.is_empty() {
                    buf.extend_from_slice(&sep);
                }
            }
            defined = true;
            buf.extend_from_slice(&s);
        }
        if undef && !defined {
            return Ok(Value::Undefined);
        }
        Ok(Value::string(buf))
    }

    pub(super) fn change_case(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        let mut s = match to_string_value(&v) {
            Ok(s) => s.into_owned(),
            Err(v) => return Ok(v),
        };
        if f == Builtin::ToLower {
            s.make_ascii_lowercase();
        } else {
            s.make_ascii_uppercase();
        }
        Ok(Value::string(s))
    }

    pub(super) fn substr(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() < 2 || args.len() > 3 {
            return Ok(Value::Error);
        }
        let s = self.eval(&args[0])?;
        let off = self.eval(&args[1])?;
        let len = if args.len() > 2 {
            Some(self.eval(&args[2])?)
        } else {
            None
        };
        if s.is_undefined() || off.is_undefined() || len.as_ref().is_some_and(Value::is_undefined) {
            return Ok(Value::Undefined);
        }
        let (Value::Str(buf), Some(mut offset)) = (&s, off.as_i32()) else {
            return Ok(Value::Error);
        };
        let mut n = match &len {
            Some(l) => match l.as_i32() {
                Some(n) => n,
                None => return Ok(Value::Error),
            },
            None => 0,
        };
        let alen = buf.len() as i32;
        if offset < 0 {
            offset = (alen + offset).max(0);
        } else if offset >= alen {
            offset = alen;
        }
        if n <= 0 {
            n = (alen - offset + n).max(0);
        } else if n > alen - offset {
            n = alen - offset;
        }
        if len.as_ref().and_then(Value::as_i32) == Some(0) {
            n = 0;
        }
        let start = offset as usize;
        Ok(Value::string(buf[start..start + n as usize].to_vec()))
    }

    fn two_strings(&mut self, args: Args<'e>) -> Result<(Vec<u8>, Vec<u8>), Eval<'e>> {
        let a = self.eval(&args[0]).map_err(Err)?;
        let b = self.eval(&args[1]).map_err(Err)?;
        if a.is_undefined() || b.is_undefined() {
            return Err(Ok(Value::Undefined));
        }
        match (to_string_value(&a), to_string_value(&b)) {
            (Ok(a), Ok(b)) => Ok((a.into_owned(), b.into_owned())),
            _ => Err(Ok(Value::Error)),
        }
    }

    pub(super) fn compare_string(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let (a, b) = match self.two_strings(args) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let (a, b) = (c_str(&a), c_str(&b));
        let ord = if f == Builtin::StrCmp {
            a.cmp(b)
        } else {
            a.iter()
                .map(u8::to_ascii_lowercase)
                .cmp(b.iter().map(u8::to_ascii_lowercase))
        };
        Ok(Value::Int(ord as i64))
    }

    pub(super) fn compare_version(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let (a, b) = match self.two_strings(args) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let r = natural_cmp(&a, &b);
        use Builtin as B;
        Ok(match f {
            B::VersionCmp => Value::Int(i64::from(r)),
            B::VersionLE => Value::Bool(r <= 0),
            B::VersionLT => Value::Bool(r < 0),
            B::VersionGE => Value::Bool(r >= 0),
            B::VersionGT => Value::Bool(r > 0),
            B::VersionEQ => Value::Bool(r == 0),
            _ => Value::Error,
        })
    }

    pub(super) fn version_in_range(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 3 {
            return Ok(Value::Error);
        }
        let test = self.eval(&args[0])?;
        let min = self.eval(&args[1])?;
        let max = self.eval(&args[2])?;
        if min.is_undefined() || max.is_undefined() {
            return Ok(Value::Undefined);
        }
        match (
            to_string_value(&test),
            to_string_value(&min),
            to_string_value(&max),
        ) {
            (Ok(t), Ok(lo), Ok(hi)) => Ok(Value::Bool(
                natural_cmp(&lo, &t) <= 0 && natural_cmp(&t, &hi) <= 0,
            )),
            _ => Ok(Value::Error),
        }
    }

    /// Evaluates the arguments of the regexp family: the first `strings`
    /// must be strings, an optional last one is the option letters.
    fn regex_args(
        &mut self,
        args: Args<'e>,
        fixed: usize,
    ) -> Result<(Vec<Value<'e>>, Option<Vec<u8>>), Eval<'e>> {
        let mut vals = Vec::with_capacity(args.len());
        for a in &args[..fixed] {
            vals.push(self.eval(a).map_err(Err)?);
        }
        let opt = if args.len() > fixed {
            Some(self.eval(&args[fixed]).map_err(Err)?)
        } else {
            None
        };
        if vals.iter().any(Value::is_error) || opt.as_ref().is_some_and(Value::is_error) {
            return Err(Ok(Value::Error));
        }
        if vals.iter().any(Value::is_undefined) || opt.as_ref().is_some_and(Value::is_undefined) {
            return Err(Ok(Value::Undefined));
        }
        let opt = match opt {
            Some(Value::Str(s)) => Some(s.into_owned()),
            Some(_) => return Err(Ok(Value::Error)),
            None => None,
        };
        Ok((vals, opt))
    }

    pub(super) fn match_pattern(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 && args.len() != 3 {
            return Ok(Value::Error);
        }
        let (vals, opts) = match self.regex_args(args, 2) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let (Value::Str(p), Value::Str(t)) = (&vals[0], &vals[1]) else {
            return Ok(Value::Error);
        };
        Ok(match regexp_helper(p, t, None, opts.as_deref()) {
            Outcome::Matched(b) => Value::Bool(b),
            _ => Value::Error,
        })
    }

    pub(super) fn match_pattern_member(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 && args.len() != 3 {
            return Ok(Value::Error);
        }
        let (vals, opts) = match self.regex_args(args, 2) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let (Value::Str(p), Value::List(l)) = (&vals[0], &vals[1]) else {
            return Ok(Value::Error);
        };
        let mut maybe_undefined = false;
        for e in l.items {
            let v = match self.eval_element(l.scope, e) {
                Ok(v) => v,
                Err(_) => return Ok(Value::Error),
            };
            match v {
                // A pattern that does not compile matches nothing here:
                // libclassad drops the helper's ERROR.
                Value::Str(t) => {
                    if let Outcome::Matched(true) = regexp_helper(p, &t, None, opts.as_deref()) {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Undefined => maybe_undefined = true,
                _ => return Ok(Value::Error),
            }
        }
        Ok(if maybe_undefined {
            Value::Undefined
        } else {
            Value::Bool(false)
        })
    }

    pub(super) fn subst_pattern(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 3 && args.len() != 4 {
            return Ok(Value::Error);
        }
        let (vals, opts) = match self.regex_args(args, 3) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut opts = opts;
        match f {
            Builtin::Replace => opts.get_or_insert_with(Vec::new).push(b'f'),
            Builtin::ReplaceAll => opts.get_or_insert_with(Vec::new).extend_from_slice(b"fg"),
            _ => {}
        }
        let (Value::Str(p), Value::Str(t), Value::Str(r)) = (&vals[0], &vals[1], &vals[2]) else {
            return Ok(Value::Error);
        };
        Ok(match regexp_helper(p, t, Some(c_str(r)), opts.as_deref()) {
            Outcome::Replaced(s) => Value::string(s),
            _ => Value::Error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp(b"1.10", b"1.9"), 1);
        assert!(natural_cmp(b"25.12.0", b"25.9.1") > 0);
        assert_eq!(natural_cmp(b"abc", b"abc"), 0);
        assert!(natural_cmp(b"a", b"b") < 0);
    }
}
