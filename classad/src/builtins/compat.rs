//! The HTCondor compat functions every daemon registers on top of
//! libclassad: string lists, `split*`, `userMap`/`userHome` as they behave
//! without a pool configuration, and `evalInEachContext`/`countMatches`.

use super::super::ast::Expr;
use super::super::eval::{Eval, Evaluator, Fail};
use super::super::lexer::strtod_prefix;
use super::super::value::{c_double_to_i64, value_to_expr, FrameId, ListRef, Value};
use super::regex::{Pattern, CASELESS, DOTALL, EXTENDED, MULTILINE};
use super::Builtin;

type Args<'e> = &'e [Expr];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// HTCondor's `StringTokenIterator` with trimming: tokens between delimiter
/// characters, surrounding whitespace removed, empty tokens skipped.
pub fn string_tokens<'a>(s: &'a [u8], delims: &[u8]) -> Vec<&'a [u8]> {
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && (delims.contains(&s[i]) || is_space(s[i])) {
            i += 1;
        }
        let start = i;
        let mut end = i;
        while i < s.len() && !delims.contains(&s[i]) {
            if !is_space(s[i]) {
                end = i;
            }
            i += 1;
        }
        if i <= start {
            return out;
        }
        out.push(&s[start..=end]);
    }
}

impl<'e> Evaluator<'e> {
    /// Evaluates every argument, failing as the first failure does.
    fn eval_all(&mut self, args: Args<'e>) -> Result<Vec<Value<'e>>, Fail> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    pub(super) fn string_list_size(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.is_empty() || args.len() > 2 {
            return Ok(Value::Error);
        }
        let v = self.eval_all(args)?;
        let (Some(list), delims) = (v[0].as_str(), v.get(1).map(Value::as_str)) else {
            return Ok(Value::Error);
        };
        let delims = match delims {
            None => b", ".as_slice(),
            Some(Some(d)) => d,
            Some(None) => return Ok(Value::Error),
        };
        Ok(Value::Int(string_tokens(list, delims).len() as i64))
    }

    pub(super) fn string_list_summarize(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.is_empty() || args.len() > 2 {
            return Ok(Value::Error);
        }
        let v = self.eval_all(args)?;
        let (Some(list), delims) = (v[0].as_str(), v.get(1).map(Value::as_str)) else {
            return Ok(Value::Error);
        };
        let delims = match delims {
            None => b", ".as_slice(),
            Some(Some(d)) => d,
            Some(None) => return Ok(Value::Error),
        };
        // HTCondor starts min at FLT_MAX and max at FLT_MIN (the smallest
        // positive float), which is what it returns for all-negative lists.
        let (mut acc, empty_ok) = match f {
            Builtin::StringListSum | Builtin::StringListAvg => (0.0, true),
            Builtin::StringListMin => (f64::from(f32::MAX), false),
            _ => (f64::from(f32::MIN_POSITIVE), false),
        };
        let mut is_real = false;
        let tokens = string_tokens(list, delims);
        for t in &tokens {
            let (x, used) = strtod_prefix(t);
            if used == 0 {
                return Ok(Value::Error);
            }
            if !t.iter().all(|c| b"+-0123456789".contains(c)) {
                is_real = true;
            }
            acc = match f {
                Builtin::StringListMin => {
                    if x < acc {
                        x
                    } else {
                        acc
                    }
                }
                Builtin::StringListMax => {
                    if x > acc {
                        x
                    } else {
                        acc
                    }
                }
                _ => x + acc,
            };
        }
        if tokens.is_empty() {
            return Ok(if empty_ok {
                Value::Real(0.0)
            } else {
                Value::Undefined
            });
        }
        if f == Builtin::StringListAvg {
            acc /= tokens.len() as f64;
        }
        Ok(if is_real {
            Value::Real(acc)
        } else {
            Value::Int(c_double_to_i64(acc))
        })
    }

    pub(super) fn string_list_member(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() < 2 || args.len() > 3 {
            return Ok(Value::Error);
        }
        let v = self.eval_all(args)?;
        let text = |v: &Value<'e>| -> Option<Option<Vec<u8>>> {
            match v {
                Value::Undefined => Some(None),
                Value::Str(s) => Some(Some(s.to_vec())),
                _ => None,
            }
        };
        let (Some(item), Some(list)) = (text(&v[0]), text(&v[1])) else {
            return Ok(Value::Error);
        };
        let delims = match v.get(2).map(text) {
            None => b", \t\r\n".to_vec(),
            Some(Some(Some(d))) => d,
            Some(Some(None)) => b", \t\r\n".to_vec(),
            Some(None) => return Ok(Value::Error),
        };
        if item.is_none() && list.is_none() {
            return Ok(Value::Undefined);
        }
        let (item, list) = (item.unwrap_or_default(), list.unwrap_or_default());
        let item = &item[..item.iter().position(|&c| c == 0).unwrap_or(item.len())];
        let insensitive = matches!(
            f,
            Builtin::StringListIMember | Builtin::StringListISubsetMatch
        );
        let eq = |a: &[u8], b: &[u8]| -> bool {
            if insensitive {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let members = string_tokens(&list, &delims);
        if matches!(f, Builtin::StringListMember | Builtin::StringListIMember) {
            return Ok(Value::Bool(members.iter().any(|m| eq(m, item))));
        }
        if item.is_empty() {
            return Ok(Value::Bool(true));
        }
        let mut rc = false;
        for it in string_tokens(item, &delims) {
            rc = members.iter().any(|m| eq(m, it));
            if !rc {
                break;
            }
        }
        Ok(Value::Bool(rc))
    }

    pub(super) fn string_list_regexp_member(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() < 2 || args.len() > 4 {
            return Ok(Value::Error);
        }
        let v = self.eval_all(args)?;
        let (Some(pattern), Some(list)) = (v[0].as_str(), v[1].as_str()) else {
            return Ok(Value::Error);
        };
        let delims = match v.get(2) {
            None => b", ".as_slice(),
            Some(Value::Str(d)) => d,
            Some(_) => return Ok(Value::Error),
        };
        let opts = match v.get(3) {
            None => b"".as_slice(),
            Some(Value::Str(o)) => o,
            Some(_) => return Ok(Value::Error),
        };
        let mut options = 0;
        for c in opts {
            options |= match c.to_ascii_lowercase() {
                b'i' => CASELESS,
                b'm' => MULTILINE,
                b's' => DOTALL,
                b'x' => EXTENDED,
                _ => 0,
            };
        }
        let Some(re) = Pattern::new(pattern, options) else {
            return Ok(Value::Error);
        };
        let tokens = string_tokens(list, delims);
        if tokens.is_empty() {
            return Ok(Value::Undefined);
        }
        Ok(Value::Bool(tokens.iter().any(|t| re.is_match(t))))
    }

    /// Without a pool configuration `CLASSAD_ENABLE_USER_HOME` is false, so
    /// `userHome` answers the default (or UNDEFINED) without a lookup.
    pub(super) fn user_home(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.is_empty() || args.len() > 2 {
            return Err(Fail);
        }
        let default = if args.len() == 2 {
            match self.eval(&args[1]) {
                Ok(Value::Str(s)) => s.into_owned(),
                _ => Vec::new(),
            }
        } else {
            Vec::new()
        };
        // A failed evaluation leaves ERROR in the value, which this function
        // does not treat as a failure.
        let owner = self.eval(&args[0]).unwrap_or(Value::Error);
        if owner.is_undefined() && default.is_empty() {
            return Ok(Value::Undefined);
        }
        let is_error = !matches!(owner, Value::Str(_));
        Ok(if !default.is_empty() {
            Value::string(default)
        } else if is_error {
            Value::Error
        } else {
            Value::Undefined
        })
    }

    /// Without a pool configuration no map is loaded: `userMap` gives its
    /// default (fourth argument) or UNDEFINED.
    pub(super) fn user_map(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() < 2 || args.len() > 4 {
            return Ok(Value::Error);
        }
        let v = self.eval_all(args)?;
        let default = if args.len() == 4 {
            v[3].clone()
        } else {
            Value::Undefined
        };
        if !(matches!(v[0], Value::Str(_)) && matches!(v[1], Value::Str(_)))
            && (v[0].is_error() || v[1].is_error())
        {
            return Ok(Value::Error);
        }
        Ok(default)
    }

    pub(super) fn split_at(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let Value::Str(s) = self.eval(&args[0])? else {
            return Ok(Value::Error);
        };
        let (a, b) = match s.iter().position(|&c| c == b'@') {
            Some(i) => (s[..i].to_vec(), s[i + 1..].to_vec()),
            None if f == Builtin::SplitSlotName => (Vec::new(), s.to_vec()),
            None => (s.to_vec(), Vec::new()),
        };
        Ok(self.string_list(vec![a, b]))
    }

    pub(super) fn split_arb(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 && args.len() != 2 {
            return Ok(Value::Error);
        }
        let s = self.eval(&args[0])?;
        let seps = if args.len() == 2 {
            Some(self.eval(&args[1])?)
        } else {
            None
        };
        let Value::Str(s) = s else {
            return Ok(Value::Error);
        };
        let seps: Vec<u8> = match seps {
            None => b", \t".to_vec(),
            Some(Value::Str(x)) => x.into_owned(),
            Some(_) => return Ok(Value::Error),
        };
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        let seps = &seps[..seps.iter().position(|&c| c == 0).unwrap_or(seps.len())];
        let mut out = Vec::new();
        let mut last = 0usize;
        if !seps.is_empty() {
            let mut prev_sep: Option<u8> = None;
            let mut ix = s.iter().position(|c| seps.contains(c));
            while let Some(i) = ix {
                if i > last {
                    out.push(s[last..i].to_vec());
                } else if prev_sep.is_some_and(|p| !is_space(p) && p == s[i]) {
                    out.push(Vec::new());
                }
                if !is_space(s[i]) {
                    prev_sep = Some(s[i]);
                }
                last = i + 1;
                ix = s[last..]
                    .iter()
                    .position(|c| seps.contains(c))
                    .map(|p| p + last);
            }
        }
        if s.len() > last {
            out.push(s[last..].to_vec());
        }
        Ok(self.string_list(out))
    }

    pub(super) fn eval_in_each_context(&mut self, f: Builtin, args: Args<'e>) -> Eval<'e> {
        let each = f == Builtin::EvalInEachContext;
        if args.len() != 2 {
            return Ok(Value::Error);
        }
        // The expression keeps the scope it was written in: the call's, or
        // the ad a referenced attribute was found in.
        let mut expr: &'e Expr = &args[0];
        let mut expr_scope = self.lex_scope();
        if let Expr::Attr(a) = expr {
            // Deref, as HTCondor does, also moves the current scope.
            if let Some(found) = self.deref(a) {
                expr = found;
                expr_scope = self.cur;
            }
        }
        let (items, scope): (&'e [Expr], _) = match &args[1] {
            Expr::List(items) => (items, self.lex_scope()),
            other => match self.eval(other) {
                Ok(Value::List(l)) => (l.items, l.scope),
                Ok(Value::Undefined) => {
                    return Ok(if each {
                        Value::Undefined
                    } else {
                        Value::Int(0)
                    });
                }
                _ => return Ok(Value::Error),
            },
        };
        let mut results = Vec::new();
        let mut count = 0i64;
        for item in items {
            let v = self.eval_in_context(expr, expr_scope, item, scope);
            if each {
                results.push(value_to_expr(&v));
            } else if v.as_bool_equiv() == Some(true) {
                count += 1;
            }
        }
        if !each {
            return Ok(Value::Int(count));
        }
        let Expr::List(items) = self.arena.alloc(Expr::List(results)) else {
            unreachable!("just allocated a list")
        };
        Ok(Value::List(ListRef {
            items,
            scope: None,
            shared: true,
        }))
    }

    /// HTCondor's `evaluateInContext`: `expr` evaluated with the ad `item`
    /// names as its scope; in a match, the nested ad sees the other side as
    /// its alternate scope.
    fn eval_in_context(
        &mut self,
        expr: &'e Expr,
        expr_scope: Option<FrameId>,
        item: &'e Expr,
        scope: Option<FrameId>,
    ) -> Value<'e> {
        let nested = match self.eval_element(scope, item) {
            Ok(Value::Ad(a)) => a.frame,
            Ok(Value::Undefined) => return Value::Undefined,
            _ => return Value::Error,
        };
        let saved_alt = self.alternate_of(nested);
        if let Some((left, right)) = self.match_sides() {
            let parent = self.parent_of(nested);
            if parent.is_some_and(|p| self.is_ancestor_or_self(p, left)) {
                let alt = self.alternate_of(left);
                self.set_alternate(nested, alt);
            } else if parent.is_some_and(|p| self.is_ancestor_or_self(p, right)) {
                let alt = self.alternate_of(right);
                self.set_alternate(nested, alt);
            }
        }
        let r = self
            .fresh(Some(nested), |ev| ev.eval_element(expr_scope, expr))
            .unwrap_or(Value::Error);
        self.set_alternate(nested, saved_alt);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::string_tokens;

    #[test]
    fn tokens_trim_and_skip_empties() {
        assert_eq!(
            string_tokens(b" a , b ,,c ", b","),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert_eq!(
            string_tokens(b"a,b;c d", b", "),
            vec![&b"a"[..], b"b;c", b"d"]
        );
    }
}
