//! `envV1ToV2`, `mergeEnvironment`, `listToArgs`, `argsToList`: HTCondor's
//! environment and argument string syntaxes (its `Env` and `ArgList`), on
//! Unix.

use std::collections::BTreeMap;

use super::super::ast::Expr;
use super::super::eval::{Eval, Evaluator};
use super::super::value::{ListRef, Value};

type Args<'e> = &'e [Expr];

/// The marker HTCondor stores for an unexpanded `$$()` entry with no `=`.
const NO_VALUE: &[u8] = b"\x01\x02\x03\x04\x05\x06";

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// V2 argument syntax: whitespace separates, single quotes group, a doubled
/// quote inside quotes is a literal quote. `None` on an unbalanced quote.
pub fn split_args(s: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut token = false;
    let mut i = 0;
    while i < s.len() && s[i] != 0 {
        match s[i] {
            b'\'' => {
                i += 1;
                token = true;
                loop {
                    if i >= s.len() || s[i] == 0 {
                        return None;
                    }
                    if s[i] == b'\'' {
                        if s.get(i + 1) == Some(&b'\'') {
                            buf.push(b'\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    buf.push(s[i]);
                    i += 1;
                }
                i += 1;
            }
            c if is_ws(c) => {
                i += 1;
                if token {
                    token = false;
                    out.push(std::mem::take(&mut buf));
                }
            }
            c => {
                token = true;
                buf.push(c);
                i += 1;
            }
        }
    }
    if token {
        out.push(buf);
    }
    Some(out)
}

/// V1 (Unix) argument syntax: split on whitespace.
fn split_args_v1(s: &[u8]) -> Vec<Vec<u8>> {
    s.split(|c| is_ws(*c) || *c == 0)
        .filter(|t| !t.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// V2 argument text for a list of arguments.
pub fn join_args<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut r: Vec<u8> = Vec::new();
    for arg in args {
        if !r.is_empty() {
            r.push(b' ');
        }
        if arg.is_empty() {
            r.extend_from_slice(b"''");
        }
        for &c in arg {
            if is_ws(c) || c == b'\'' {
                if r.last() == Some(&b'\'') {
                    r.pop();
                } else {
                    r.push(b'\'');
                }
                if c == b'\'' {
                    r.push(b'\'');
                }
                r.push(c);
                r.push(b'\'');
            } else {
                r.push(c);
            }
        }
    }
    r
}

/// HTCondor's environment table: variables ordered by byte value.
#[derive(Default)]
struct Env {
    vars: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Env {
    fn set_entry(&mut self, entry: &[u8]) -> bool {
        if entry.is_empty() {
            return false;
        }
        match entry.iter().position(|&c| c == b'=') {
            None if entry.windows(2).any(|w| w == b"$$") => {
                self.vars.insert(entry.to_vec(), NO_VALUE.to_vec());
                true
            }
            None | Some(0) => false,
            Some(eq) => {
                self.vars
                    .insert(entry[..eq].to_vec(), entry[eq + 1..].to_vec());
                true
            }
        }
    }

    fn merge_v2(&mut self, s: &[u8]) -> bool {
        match split_args(s) {
            Some(entries) => entries.iter().all(|e| self.set_entry(e)),
            None => false,
        }
    }

    /// V1: entries separated by `;` (or a leading permitted delimiter) or
    /// newlines.
    fn merge_v1_auto(&mut self, s: &[u8]) -> bool {
        let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
        if s.is_empty() {
            return true;
        }
        let mut delim = b';';
        let mut rest = s;
        if s[0] == delim {
            rest = &s[1..];
        } else if b"!#$%&*+,-/:;<>?@^`|~\x1F".contains(&s[0]) {
            delim = s[0];
            rest = &s[1..];
        }
        let mut i = 0;
        while i < rest.len() {
            while i < rest.len() && is_ws(rest[i]) {
                i += 1;
            }
            let start = i;
            while i < rest.len() && rest[i] != b'\n' && rest[i] != delim {
                i += 1;
            }
            let entry = &rest[start..i];
            if i < rest.len() {
                i += 1;
            }
            if !entry.is_empty() && !self.set_entry(entry) {
                return false;
            }
        }
        true
    }

    fn to_v2(&self) -> Vec<u8> {
        let entries: Vec<Vec<u8>> = self
            .vars
            .iter()
            .map(|(k, v)| {
                if v == NO_VALUE {
                    k.clone()
                } else {
                    [k.as_slice(), b"=", v.as_slice()].concat()
                }
            })
            .collect();
        join_args(entries.iter().map(Vec::as_slice))
    }
}

impl<'e> Evaluator<'e> {
    /// The optional version argument of `argsToList`/`listToArgs`.
    fn args_version(&mut self, args: Args<'e>) -> Result<i32, Eval<'e>> {
        if args.len() < 2 {
            return Ok(2);
        }
        match self.eval(&args[1]).map_err(Err)? {
            Value::Int(v) if v as i32 == 1 || v as i32 == 2 => Ok(v as i32),
            _ => Err(Ok(Value::Error)),
        }
    }

    pub(super) fn args_to_list(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 && args.len() != 2 {
            return Ok(Value::Error);
        }
        let vers = match self.args_version(args) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let Value::Str(s) = self.eval(&args[0])? else {
            return Ok(Value::Error);
        };
        let list = if vers == 1 {
            split_args_v1(&s)
        } else {
            match split_args(&s) {
                Some(l) => l,
                None => return Ok(Value::Error),
            }
        };
        Ok(self.string_list(list))
    }

    /// A new list of strings, as the compat functions build them.
    pub(super) fn string_list(&mut self, items: Vec<Vec<u8>>) -> Value<'e> {
        let e = self.arena.alloc(Expr::List(
            items.into_iter().map(|s| Expr::Str(s.into())).collect(),
        ));
        let Expr::List(items) = e else {
            unreachable!("just allocated a list")
        };
        Value::List(ListRef {
            items,
            scope: None,
            shared: true,
        })
    }

    pub(super) fn list_to_args(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 && args.len() != 2 {
            return Ok(Value::Error);
        }
        let vers = match self.args_version(args) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let Value::List(l) = self.eval(&args[0])? else {
            return Ok(Value::Error);
        };
        let mut items = Vec::with_capacity(l.items.len());
        for e in l.items {
            match self.eval_element(l.scope, e)? {
                Value::Str(s) => items.push(s.into_owned()),
                _ => return Ok(Value::Error),
            }
        }
        if vers == 1 {
            if items.iter().any(|a| a.iter().any(|c| is_ws(*c))) {
                return Ok(Value::Error);
            }
            let mut out: Vec<u8> = Vec::new();
            for a in &items {
                if !out.is_empty() {
                    out.push(b' ');
                }
                out.extend_from_slice(a);
            }
            return Ok(Value::string(out));
        }
        Ok(Value::string(join_args(items.iter().map(Vec::as_slice))))
    }

    pub(super) fn env_v1_to_v2(&mut self, args: Args<'e>) -> Eval<'e> {
        if args.len() != 1 {
            return Ok(Value::Error);
        }
        let s = match self.eval(&args[0])? {
            Value::Undefined => return Ok(Value::Undefined),
            Value::Str(s) => s,
            _ => return Ok(Value::Error),
        };
        let mut env = Env::default();
        if !env.merge_v1_auto(&s) {
            return Ok(Value::Error);
        }
        Ok(Value::string(env.to_v2()))
    }

    pub(super) fn merge_environment(&mut self, args: Args<'e>) -> Eval<'e> {
        let mut env = Env::default();
        for a in args {
            match self.eval(a)? {
                Value::Undefined => continue,
                Value::Str(s) => {
                    if !env.merge_v2(&s) {
                        return Ok(Value::Error);
                    }
                }
                _ => return Ok(Value::Error),
            }
        }
        Ok(Value::string(env.to_v2()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_args_round_trip() {
        let parsed = split_args(b"a 'b c' 'it''s' ''").unwrap();
        assert_eq!(
            parsed,
            vec![b"a".to_vec(), b"b c".to_vec(), b"it's".to_vec(), vec![]]
        );
        // HTCondor quotes character by character, merging adjacent quotes.
        let joined = join_args(parsed.iter().map(Vec::as_slice));
        assert_eq!(joined, b"a b' 'c it''''s ''".to_vec());
        assert_eq!(split_args(&joined).unwrap(), parsed);
        assert!(split_args(b"'open").is_none());
    }
}
