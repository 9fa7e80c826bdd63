//! Type tests, list functions, conversions, arithmetic helpers and control.

use std::collections::BTreeMap;

use super::super::ast::{BinOp, Expr};
use super::super::eval::{Eval, Evaluator, Fail};
use super::super::ops;
use super::super::parser::parse_expr;
use super::super::unparse::{to_text, unparse_pretty};
use super::super::value::{
    c_double_to_i64, to_int_value, to_real_value, to_string_value, FrameId, Value,
};
use super::Builtin;

type Args<'e> = &'e [Expr];

impl<'e> Evaluator<'e> {
    pub(super) fn is_type(&mut self, f: Builtin, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
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

    pub(super) fn member(&mut self, f: Builtin, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        let identical = f == Builtin::IdenticalMember;
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let item = self.eval(&args[0], cur)?;
        let list = self.eval(&args[1], cur)?;
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
        for e in l.items {
            let v = self.eval(e, cur)?;
            if let Value::Bool(true) = ops::binary(op, &v, &item) {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    }

    pub(super) fn size(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        Ok(match self.eval(&args[0], cur)? {
            Value::Undefined => Value::Undefined,
            Value::List(l) => Value::Int(l.items.len() as i64),
            Value::Ad(a) => Value::Int(a.ad.len() as i64),
            Value::Str(s) => Value::Int(i64::from(s.len() as i32)),
            _ => Value::Error,
        })
    }

    fn list_arg(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Result<&'e [Expr], Eval<'e>> {
        match self.eval(&args[0], cur) {
            Err(f) => Err(Err(f)),
            Ok(Value::Undefined) => Err(Ok(Value::Undefined)),
            Ok(Value::List(l)) => Ok(l.items),
            Ok(_) => Err(Ok(Value::Error)),
        }
    }

    pub(super) fn sum_avg(&mut self, f: Builtin, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let items = match self.list_arg(args, cur) {
            Ok(items) => items,
            Err(r) => return r,
        };
        let mut result = Value::Int(0);
        let mut len = 0i64;
        let mut first = true;
        for e in items {
            len += 1;
            let v = self.eval(e, cur)?;
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
                result = ops::binary(BinOp::Add, &result, &v);
            }
        }
        if f == Builtin::Avg && len > 0 {
            result = ops::binary(BinOp::Div, &result, &Value::Real(len as f64));
        }
        Ok(result)
    }

    pub(super) fn min_max(&mut self, f: Builtin, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let items = match self.list_arg(args, cur) {
            Ok(items) => items,
            Err(r) => return r,
        };
        let op = if f == Builtin::Min {
            BinOp::Lt
        } else {
            BinOp::Gt
        };
        let mut result = Value::Undefined;
        let mut first = true;
        for e in items {
            let v = self.eval(e, cur)?;
            if v.is_undefined() {
                continue;
            }
            if !v.is_number() {
                return Ok(Value::Error);
            }
            if first {
                result = v;
                first = false;
            } else if let Value::Bool(true) = ops::binary(op, &v, &result) {
                result = v;
            }
        }
        Ok(result)
    }

    pub(super) fn list_compare(
        &mut self,
        f: Builtin,
        args: Args<'e>,
        cur: Option<FrameId>,
    ) -> Eval<'e> {
        if args.len() != 3 {
            return Ok(Value::Error);
        }
        let op = match self.eval(&args[0], cur)? {
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
        let items = match self.list_arg(&args[1..], cur) {
            Ok(items) => items,
            Err(r) => return r,
        };
        let target = self.eval(&args[2], cur)?;
        let all = f == Builtin::AllCompare;
        for e in items {
            let v = self.eval(e, cur)?;
            match ops::binary(op, &v, &target) {
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

    pub(super) fn conv_int(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
        Ok(to_int_value(&v))
    }

    pub(super) fn conv_real(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
        Ok(to_real_value(&v))
    }

    pub(super) fn conv_string(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
        Ok(match to_string_value(&v) {
            Ok(s) => Value::Str(s),
            Err(v) => v,
        })
    }

    pub(super) fn conv_bool(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        Ok(match self.eval(&args[0], cur)? {
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
            Value::RelTime(r) => Value::Bool(c_double_to_i64(r) != 0),
            _ => Value::Error,
        })
    }

    pub(super) fn unparse_fn(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 || !matches!(args[0], Expr::Attr(_)) {
            return Ok(Value::Error);
        }
        let name = to_text(&args[0]);
        let mut out = Vec::new();
        if let Some(ad) = cur.and_then(|c| self.frame_ad(c)) {
            if let Some(e) = ad.get(name.as_bytes()) {
                unparse_pretty(e, &mut out);
            }
        }
        Ok(Value::string(out))
    }

    pub(super) fn unresolved(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.is_empty() || args.len() > 2 {
            return Ok(Value::Error);
        }
        let Expr::Attr(a) = &args[0] else {
            return Ok(Value::Error);
        };
        let expr = match self.deref(a, cur) {
            Some((e, _)) => e,
            None => return Ok(Value::Undefined),
        };
        let pattern = if args.len() == 2 {
            match self.eval(&args[1], cur)? {
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
        if cur.is_some() {
            let mut cur_ad = cur;
            if self.external_refs(expr, &mut cur_ad, &mut refs).is_err() {
                refs.clear();
            }
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

    pub(super) fn do_round(
        &mut self,
        f: Builtin,
        args: Args<'e>,
        cur: Option<FrameId>,
    ) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
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

    pub(super) fn do_math2(
        &mut self,
        f: Builtin,
        args: Args<'e>,
        cur: Option<FrameId>,
    ) -> Eval<'e> {
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        let a = self.eval(&args[0], cur)?;
        let mut b = self.eval(&args[1], cur)?;
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
                base = self.eval(e, cur)?;
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

    pub(super) fn random(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        let v = match args.len() {
            0 => Value::Real(1.0),
            1 => self.eval(&args[0], cur)?,
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

    pub(super) fn if_then_else(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 3 {
            return Ok(Value::Error);
        }
        let c = match self.eval(&args[0], cur)? {
            Value::Bool(b) => b,
            Value::Int(i) => i != 0,
            Value::Real(r) => r != 0.0,
            Value::Undefined => return Ok(Value::Undefined),
            _ => return Ok(Value::Error),
        };
        self.eval(&args[if c { 1 } else { 2 }], cur)
    }

    pub(super) fn interval(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
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

    pub(super) fn eval_fn(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let v = self.eval(&args[0], cur)?;
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
        let r = self.eval(e, cur);
        self.depth += 1;
        r
    }

    pub(super) fn debug_fn(&mut self, args: Args<'e>, cur: Option<FrameId>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        self.eval(&args[0], cur)
    }

    pub(super) fn string_lists_intersect(
        &mut self,
        args: Args<'e>,
        cur: Option<FrameId>,
    ) -> Eval<'e> {
        if args.len() != 2 && args.len() != 3 {
            return Ok(Value::Error);
        }
        // Evaluation failures here give ERROR rather than failing the call.
        let a0 = self.eval(&args[0], cur).unwrap_or(Value::Error);
        let a1 = self.eval(&args[1], cur).unwrap_or(Value::Error);
        let a2 = if args.len() == 3 {
            Some(self.eval(&args[2], cur).unwrap_or(Value::Error))
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

    /// `AttributeReference::Deref`: the expression a reference names and the
    /// scope it lives in, without evaluating it.
    pub(super) fn deref(
        &mut self,
        a: &'e super::super::ast::AttrRef,
        cur: Option<FrameId>,
    ) -> Option<(&'e Expr, FrameId)> {
        match &a.base {
            None => {
                let start = if a.absolute { self.root_frame()? } else { cur? };
                self.lookup_expr(&a.name, start).or_else(|| {
                    if a.absolute {
                        return None;
                    }
                    let alt = self.alternate_of(start)?;
                    self.lookup_expr(&a.name, alt)
                })
            }
            Some(base) => match self.eval(base, cur).ok()? {
                Value::Ad(ad) => self.lookup_expr(&a.name, ad.frame),
                _ => None,
            },
        }
    }

    /// libclassad's `_GetExternalReferences` with full names: references
    /// that no enclosing ad binds, keyed case-insensitively.
    fn external_refs(
        &mut self,
        e: &'e Expr,
        cur: &mut Option<FrameId>,
        refs: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), Fail> {
        let mut add = |name: Vec<u8>| {
            refs.entry(name.to_ascii_lowercase()).or_insert(name);
        };
        match e {
            Expr::Attr(a) => {
                let start = match &a.base {
                    None => {
                        if a.absolute {
                            self.root_frame().ok_or(Fail)?
                        } else {
                            match *cur {
                                Some(c) => c,
                                None => return Err(Fail),
                            }
                        }
                    }
                    Some(base) => match self.eval(base, *cur)? {
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
                match self.lookup_expr(&a.name, start) {
                    None => {
                        add(a.name.clone());
                        Ok(())
                    }
                    Some((found, frame)) => {
                        if self.depth <= 0 {
                            return Err(Fail);
                        }
                        self.depth -= 1;
                        let saved = *cur;
                        *cur = Some(frame);
                        let r = self.external_refs(found, cur, refs);
                        *cur = saved;
                        self.depth += 1;
                        r
                    }
                }
            }
            Expr::Unary(_, x) | Expr::Paren(x) => self.external_refs(x, cur, refs),
            Expr::Binary(_, p) => {
                self.external_refs(&p.0, cur, refs)?;
                self.external_refs(&p.1, cur, refs)
            }
            Expr::Cond(c) => {
                self.external_refs(&c.0, cur, refs)?;
                self.external_refs(&c.1, cur, refs)?;
                self.external_refs(&c.2, cur, refs)
            }
            Expr::Call(c) => self.external_refs_all(c.args.iter(), cur, refs),
            Expr::List(items) => self.external_refs_all(items.iter(), cur, refs),
            Expr::Ad(ad) => self.external_refs_all(ad.iter().map(|(_, v)| v), cur, refs),
            _ => Ok(()),
        }
    }

    fn external_refs_all(
        &mut self,
        items: impl Iterator<Item = &'e Expr>,
        cur: &mut Option<FrameId>,
        refs: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), Fail> {
        for e in items {
            if self.depth <= 0 {
                return Err(Fail);
            }
            self.depth -= 1;
            let r = self.external_refs(e, cur, refs);
            self.depth += 1;
            r?;
        }
        Ok(())
    }
}
