//! Type tests, list functions, conversions, arithmetic helpers and control.

use std::collections::BTreeMap;

use super::super::ast::AttrRef;
use super::super::ast::{BinOp, Expr};
use super::super::eval::{Eval, Evaluator, Fail, Lookup};
use super::super::ops;
use super::super::parser::parse_expr;
use super::super::unparse::{to_text, unparse_pretty};
use super::super::value::{
    c_double_to_i64, reltime_secs, to_int_value, to_real_value, to_string_value, ListRef, Value,
};
use super::Builtin;

type Args<'e> = &'e [Expr];

impl<'e> Evaluator<'e> {
    pub(super) fn is_type(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        use Builtin as B;
        Ok(Value::Bool(match f {
            B::IsUndefined => v.is_undefined(),
            B::IsError => v.is_error(),
            B::IsInteger => matches!(v, Value::Int(_)),
            B::IsString => matches!(v, Value::Str(_)),
            B::IsReal => matches!(v, Value::Real(_)),
            B::IsBoolean => matches!(v, Value::Bool(_)),
            B::IsClassAd => matches!(v, Value::Ad(_)),
            B::IsList => matches!(v, Value::List(_)),
            B::IsAbsTime => matches!(v, Value::AbsTime(_)),
            B::IsRelTime => matches!(v, Value::RelTime(_)),
            _ => return Ok(Value::Error),
        }))
    }

    pub(super) fn member(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        let identical = f == Builtin::IdenticalMember;
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let item = self.eval(&args[0])?;
        let list = self.eval(&args[1])?;
        if list.is_undefined() || (!identical && item.is_undefined()) {
            return Ok(Value::Undefined);
        }
        let Value::List(l) = list else {
            return Ok(Value::Error);
        };
        if matches!(item, Value::List(_) | Value::Ad(_)) {
            return Ok(Value::Error);
        }
        if !identical && item.is_error() {
            return Ok(Value::Error);
        }
        let op = if identical { BinOp::Is } else { BinOp::Eq };
        let mut item = item;
        for e in l.items {
            let mut v = self.eval_element(l.scope, e)?;
            if let Value::Bool(true) = ops::operate(op, &mut v, &mut item) {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    }

    pub(super) fn size(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        Ok(match self.eval(&args[0])? {
            Value::Undefined => Value::Undefined,
            Value::List(l) => Value::Int(l.items.len() as i64),
            Value::Ad(a) => Value::Int(a.ad.len() as i64),
            Value::Str(s) => Value::Int(i64::from(s.len() as i32)),
            _ => Value::Error,
        })
    }

    fn list_arg(&mut self, args: Args<'e>) -> Result<ListRef<'e>, Eval<'e>> {
        match self.eval(&args[0]) {
            Err(f) => Err(Err(f)),
            Ok(Value::Undefined) => Err(Ok(Value::Undefined)),
            Ok(Value::List(l)) => Ok(l),
            Ok(_) => Err(Ok(Value::Error)),
        }
    }

    pub(super) fn sum_avg(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let list = match self.list_arg(args) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let mut result = Value::Int(0);
        let mut len = 0i64;
        let mut first = true;
        for e in list.items {
            len += 1;
            let v = self.eval_element(list.scope, e)?;
            if v.is_undefined() {
                len -= 1;
                continue;
            }
            if !v.is_number() {
                return Ok(Value::Error);
            }
            if first {
                result = v;
                first = false;
            } else {
                let mut v = v;
                result = ops::operate(BinOp::Add, &mut result, &mut v);
            }
        }
        if f == Builtin::Avg && len > 0 {
            result = ops::operate(BinOp::Div, &mut result, &mut Value::Real(len as f64));
        }
        Ok(result)
    }

    pub(super) fn min_max(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let list = match self.list_arg(args) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let op = if f == Builtin::Min {
            BinOp::Lt
        } else {
            BinOp::Gt
        };
        let mut result = Value::Undefined;
        let mut first = true;
        for e in list.items {
            let v = self.eval_element(list.scope, e)?;
            if v.is_undefined() {
                continue;
            }
            if !v.is_number() {
                return Ok(Value::Error);
            }
            if first {
                result = v;
                first = false;
            } else {
                let mut v = v;
                if let Value::Bool(true) = ops::operate(op, &mut v, &mut result) {
                    result = v;
                }
            }
        }
        Ok(result)
    }

    pub(super) fn list_compare(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 3 {
            return Ok(Value::Error);
        }
        let op = match self.eval(&args[0])? {
            Value::Undefined => return Ok(Value::Undefined),
            Value::Str(s) => match &s[..] {
                b"<" => BinOp::Lt,
                b"<=" => BinOp::Le,
                b"!=" => BinOp::Ne,
                b"==" => BinOp::Eq,
                b">" => BinOp::Gt,
                b">=" => BinOp::Ge,
                b"is" => BinOp::Is,
                b"isnt" => BinOp::Isnt,
                _ => return Ok(Value::Error),
            },
            _ => return Ok(Value::Error),
        };
        let list = match self.list_arg(&args[1..]) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let mut target = self.eval(&args[2])?;
        let all = f == Builtin::AllCompare;
        for e in list.items {
            let mut v = self.eval_element(list.scope, e)?;
            match ops::operate(op, &mut v, &mut target) {
                Value::Bool(true) if !all => return Ok(Value::Bool(true)),
                Value::Bool(false) if all => return Ok(Value::Bool(false)),
                Value::Bool(_) => {}
                // An undefined comparison ends the scan with the initial
                // answer (false for anyCompare, false for allCompare).
                Value::Undefined => return Ok(Value::Bool(false)),
                _ => return Ok(Value::Error),
            }
        }
        Ok(Value::Bool(all))
    }

    pub(super) fn conv_int(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        Ok(to_int_value(&v))
    }

    pub(super) fn conv_real(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        Ok(to_real_value(&v))
    }

    pub(super) fn conv_string(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        Ok(match to_string_value(&v) {
            Ok(s) => Value::Str(s),
            Err(v) => v,
        })
    }

    pub(super) fn conv_bool(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        Ok(match self.eval(&args[0])? {
            Value::Undefined => Value::Undefined,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Bool(i != 0),
            Value::Real(r) => Value::Bool(r != 0.0),
            Value::Str(s) => {
                if s.eq_ignore_ascii_case(b"false") {
                    Value::Bool(false)
                } else if s.eq_ignore_ascii_case(b"true") {
                    Value::Bool(true)
                } else {
                    Value::Undefined
                }
            }
            Value::RelTime(r) => Value::Bool(reltime_secs(r) != 0),
            _ => Value::Error,
        })
    }

    pub(super) fn unparse_fn(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 || !matches!(args[0], Expr::Attr(_)) {
            return Ok(Value::Error);
        }
        let name = to_text(&args[0]);
        let mut out = Vec::new();
        if let Some(c) = self.cur {
            if let Some(e) = self.frame_ad(c).get(name.as_bytes()) {
                unparse_pretty(e, &mut out);
            }
        }
        Ok(Value::string(out))
    }

    pub(super) fn unresolved(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.is_empty() || args.len() > 2 {
            return Ok(Value::Error);
        }
        let Expr::Attr(a) = &args[0] else {
            return Ok(Value::Error);
        };
        // Like libclassad's Deref, this leaves the scope where the search
        // ended current, and references are resolved from there.
        let Some(expr) = self.deref(a) else {
            return Ok(Value::Undefined);
        };
        let pattern = if args.len() == 2 {
            match self.eval(&args[1])? {
                Value::Str(p) => match super::regex::Pattern::new(&p, super::regex::CASELESS) {
                    Some(re) => Some(re),
                    None => return Ok(Value::Error),
                },
                _ => return Err(Fail),
            }
        } else {
            None
        };
        let mut refs = BTreeMap::new();
        if self.cur.is_some() {
            // The expression belongs to the ad it was found in.
            let saved = self.set_lex(self.cur);
            if self.external_refs(expr, &mut refs).is_err() {
                refs.clear();
            }
            self.set_lex(saved);
        }
        let names = refs.into_values().map(|n: Vec<u8>| {
            if n.len() >= 7 && n[..7].eq_ignore_ascii_case(b"target.") {
                n[7..].to_vec()
            } else {
                n
            }
        });
        match pattern {
            Some(re) => {
                for n in names {
                    if re.is_match_notempty(&n) {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            None => Ok(Value::string(names.collect::<Vec<_>>().join(&b","[..]))),
        }
    }

    pub(super) fn do_round(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        if let Value::Int(i) = v {
            return Ok(Value::Int(i));
        }
        let Value::Real(r) = to_real_value(&v) else {
            return Ok(Value::Error);
        };
        Ok(Value::Int(c_double_to_i64(match f {
            Builtin::Floor => r.floor(),
            Builtin::Ceil | Builtin::Ceiling => r.ceil(),
            _ => r.round_ties_even(),
        })))
    }

    pub(super) fn do_math2(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let a = self.eval(&args[0])?;
        let mut b = self.eval(&args[1])?;
        if f == Builtin::Pow {
            if let (Value::Int(x), Value::Int(n)) = (&a, &b) {
                if *n >= 0 {
                    return Ok(Value::Int(c_double_to_i64(
                        (*x as f64).powf(*n as f64) + 0.5,
                    )));
                }
            }
            return Ok(match (to_real_value(&a), to_real_value(&b)) {
                (Value::Real(x), Value::Real(y)) => Value::Real(x.powf(y)),
                _ => Value::Error,
            });
        }
        // quantize
        let Value::Real(rval) = to_real_value(&a) else {
            return Ok(Value::Error);
        };
        let rbase;
        if let Value::List(l) = b {
            let mut base = Value::Real(0.0);
            let mut rb = 0.0;
            for e in l.items {
                base = self.eval_element(l.scope, e)?;
                match to_real_value(&base) {
                    Value::Real(x) => {
                        rb = x;
                        if rb >= rval {
                            return Ok(base);
                        }
                    }
                    _ => return Ok(Value::Error),
                }
            }
            b = base;
            rbase = rb;
        } else {
            match to_real_value(&b) {
                Value::Real(x) => rbase = x,
                _ => return Ok(Value::Error),
            }
        }
        if let Value::Int(ibase) = b {
            if ibase == 0 {
                return Ok(a);
            }
            if let Value::Int(ival) = a {
                return Ok(Value::Int(
                    (ival.wrapping_add(ibase).wrapping_sub(1) / ibase).wrapping_mul(ibase),
                ));
            }
            return Ok(Value::Real((rval / ibase as f64).ceil() * ibase as f64));
        }
        if (-1e-8..=1e-8).contains(&rbase) {
            return Ok(a);
        }
        Ok(Value::Real((rval / rbase).ceil() * rbase))
    }

    pub(super) fn random(&mut self, args: Args<'e>) -> Eval<'e> {
        let v = match args.len() {
            0 => Value::Real(1.0),
            1 => self.eval(&args[0])?,
            _ => return Ok(Value::Error),
        };
        match v {
            Value::Int(i) => {
                let max = i as i32;
                if max <= 0 {
                    return Err(Fail);
                }
                Ok(Value::Int(i64::from(self.next_random() % max)))
            }
            Value::Real(r) => {
                if r <= 0.0 {
                    return Err(Fail);
                }
                Ok(Value::Real(
                    r * (f64::from(self.next_random()) / f64::from(i32::MAX)),
                ))
            }
            _ => Ok(Value::Error),
        }
    }

    pub(super) fn if_then_else(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 3 {
            return Ok(Value::Error);
        }
        let c = match self.eval(&args[0])? {
            Value::Bool(b) => b,
            Value::Int(i) => i != 0,
            Value::Real(r) => r != 0.0,
            Value::Undefined => return Ok(Value::Undefined),
            _ => return Ok(Value::Error),
        };
        self.eval(&args[if c { 1 } else { 2 }])
    }

    pub(super) fn interval(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        let Value::Int(total) = to_int_value(&v) else {
            return Ok(Value::Error);
        };
        let mut t = total as i32;
        let days = t / 86400;
        t %= 86400;
        let hours = t / 3600;
        t %= 3600;
        let min = t / 60;
        let secs = t % 60;
        let s = if days != 0 {
            format!(
                "{days}+{:02}:{:02}:{:02}",
                hours.unsigned_abs(),
                min.unsigned_abs(),
                secs.unsigned_abs()
            )
        } else if hours != 0 {
            format!(
                "{hours}:{:02}:{:02}",
                min.unsigned_abs(),
                secs.unsigned_abs()
            )
        } else if min != 0 {
            format!("{min}:{:02}", secs.unsigned_abs())
        } else {
            format!("{secs}")
        };
        Ok(Value::string(s.into_bytes()))
    }

    pub(super) fn eval_fn(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0])?;
        let Ok(text) = to_string_value(&v) else {
            return Ok(Value::Error);
        };
        if self.depth <= 0 {
            return Err(Fail);
        }
        let Ok(parsed) = parse_expr(&text) else {
            return Ok(Value::Error);
        };
        let e = self.arena.alloc(parsed);
        self.depth -= 1;
        // The parsed expression belongs to the current ad.
        let r = self.eval_element(self.cur, e);
        self.depth += 1;
        r
    }

    pub(super) fn debug_fn(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        self.eval(&args[0])
    }

    pub(super) fn string_lists_intersect(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 2 && args.len() != 3 {
            return Ok(Value::Error);
        }
        // Evaluation failures here give ERROR rather than failing the call.
        let a0 = self.eval(&args[0]).unwrap_or(Value::Error);
        let a1 = self.eval(&args[1]).unwrap_or(Value::Error);
        let a2 = if args.len() == 3 {
            Some(self.eval(&args[2]).unwrap_or(Value::Error))
        } else {
            None
        };
        if a0.is_error() || a1.is_error() || a2.as_ref().is_some_and(Value::is_error) {
            return Ok(Value::Error);
        }
        if a0.is_undefined() || a1.is_undefined() || a2.as_ref().is_some_and(Value::is_undefined) {
            return Ok(Value::Undefined);
        }
        let delims: Vec<u8> = match &a2 {
            Some(Value::Str(d)) => d.to_vec(),
            Some(_) => return Ok(Value::Error),
            None => Vec::new(),
        };
        let (Value::Str(s0), Value::Str(s1)) = (&a0, &a1) else {
            return Ok(Value::Error);
        };
        let delims: &[u8] = if delims.is_empty() { b" ," } else { &delims };
        let split = |s: &[u8]| -> Vec<Vec<u8>> {
            s.split(|c| delims.contains(c))
                .filter(|t| !t.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        };
        let right = split(s1);
        Ok(Value::Bool(split(s0).iter().any(|t| right.contains(t))))
    }

    /// `AttributeReference::Deref`: the expression a reference names,
    /// unevaluated; the current scope moves as the lookup moved it.
    pub(super) fn deref(&mut self, a: &'e AttrRef) -> Option<&'e Expr> {
        match self.find_expr(a.base.as_ref(), &a.name, a.absolute).ok()? {
            Lookup::Expr(e) => Some(e),
            Lookup::Ad(f) => Some(
                self.arena
                    .alloc(Expr::Ad(Box::new(self.frame_ad(f).clone()))),
            ),
            Lookup::List(items) => Some(self.arena.alloc(Expr::List(items.to_vec()))),
            Lookup::Undef | Lookup::Error | Lookup::Fail => None,
        }
    }

    /// libclassad's `_GetExternalReferences` with full names: references
    /// that no enclosing ad binds, keyed case-insensitively.
    fn external_refs(
        &mut self,
        e: &'e Expr,
        refs: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), Fail> {
        let mut add = |name: Vec<u8>| {
            refs.entry(name.to_ascii_lowercase()).or_insert(name);
        };
        match e {
            Expr::Attr(a) => {
                let start = match &a.base {
                    None if a.absolute => self.root_frame().ok_or(Fail)?,
                    None => self.cur.ok_or(Fail)?,
                    Some(base) => match self.eval(base)? {
                        Value::Undefined => {
                            let mut full = to_text(base).into_bytes();
                            full.push(b'.');
                            full.extend_from_slice(&a.name);
                            add(full);
                            return Ok(());
                        }
                        Value::Ad(ad) => ad.frame,
                        _ => return Err(Fail),
                    },
                };
                let saved = self.cur;
                let (found, scope) = match self.lookup_in_scope(&a.name, start) {
                    Lookup::Undef => {
                        add(a.name.clone());
                        self.cur = saved;
                        return Ok(());
                    }
                    Lookup::Expr(found) => (found, self.cur),
                    Lookup::Ad(f) => {
                        // The scope itself: its attributes, in it.
                        if self.depth <= 0 {
                            self.cur = saved;
                            return Err(Fail);
                        }
                        self.depth -= 1;
                        let outer = self.set_lex(Some(f));
                        let ad = self.frame_ad(f);
                        let r = self.external_refs_all(ad.iter().map(|(_, v)| v), refs);
                        self.set_lex(outer);
                        self.depth += 1;
                        self.cur = saved;
                        return r;
                    }
                    _ => return Err(Fail),
                };
                if self.depth <= 0 {
                    self.cur = saved;
                    return Err(Fail);
                }
                self.depth -= 1;
                let outer = self.set_lex(scope);
                let r = self.external_refs(found, refs);
                self.set_lex(outer);
                self.depth += 1;
                self.cur = saved;
                r
            }
            Expr::Unary(_, x) | Expr::Paren(x) => self.external_refs(x, refs),
            Expr::Binary(_, p) => {
                self.external_refs(&p.0, refs)?;
                self.external_refs(&p.1, refs)
            }
            Expr::Cond(c) => {
                self.external_refs(&c.0, refs)?;
                self.external_refs(&c.1, refs)?;
                self.external_refs(&c.2, refs)
            }
            Expr::Call(c) => self.external_refs_all(c.args.iter(), refs),
            Expr::List(items) => self.external_refs_all(items.iter(), refs),
            Expr::Ad(ad) => {
                // Attributes of an ad literal are written in that ad.
                let f = self.new_ad_frame(ad, self.lex_scope());
                let outer = self.set_lex(Some(f));
                let r = self.external_refs_all(ad.iter().map(|(_, v)| v), refs);
                self.set_lex(outer);
                r
            }
            _ => Ok(()),
        }
    }

    fn external_refs_all(
        &mut self,
        items: impl Iterator<Item = &'e Expr>,
        refs: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), Fail> {
        for e in items {
            if self.depth <= 0 {
                return Err(Fail);
            }
            self.depth -= 1;
            let r = self.external_refs(e, refs);
            self.depth += 1;
            r?;
        }
        Ok(())
    }
}
