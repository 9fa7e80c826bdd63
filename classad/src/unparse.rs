//! Text forms of expressions and ads, byte for byte as libclassad writes
//! them: the new syntax (`ClassAdUnParser`), the old syntax that
//! `condor_q -long` prints, and the JSON of `condor_q -json`.

use super::ast::{BinOp, ClassAd, Expr, UnOp};
use super::time::{abstime_to_string, reltime_to_string};
use super::value::{fmt_e, fmt_g_upper};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    New,
    Old,
    Json,
}

const RESERVED: [&[u8]; 7] = [
    b"error",
    b"false",
    b"is",
    b"isnt",
    b"parent",
    b"true",
    b"undefined",
];

fn op_text(op: BinOp, style: Style) -> &'static str {
    match op {
        BinOp::Lt => " < ",
        BinOp::Le => " <= ",
        BinOp::Ne => " != ",
        BinOp::Eq => " == ",
        BinOp::Ge => " >= ",
        BinOp::Gt => " > ",
        BinOp::Is if style == Style::Old => " =?= ",
        BinOp::Isnt if style == Style::Old => " =!= ",
        BinOp::Is => " is ",
        BinOp::Isnt => " isnt ",
        BinOp::Add => " + ",
        BinOp::Sub => " - ",
        BinOp::Mul => " * ",
        BinOp::Div => " / ",
        BinOp::Mod => " % ",
        BinOp::Or => " || ",
        BinOp::And => " && ",
        BinOp::BitOr => " | ",
        BinOp::BitXor => " ^ ",
        BinOp::BitAnd => " & ",
        BinOp::Shl => " << ",
        BinOp::Shr => " >> ",
        BinOp::UShr => " >>> ",
        BinOp::Elvis => " ?: ",
        BinOp::Subscript => " [] ",
    }
}

/// A real as libclassad prints it: `%1.15E` in new syntax, `%.16G` (with
/// `.0` appended if it looks integral) in old syntax and JSON.
pub fn unparse_real(r: f64, style: Style, out: &mut Vec<u8>) {
    if r == 0.0 {
        out.extend_from_slice(if r.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
    } else if r.is_nan() {
        out.extend_from_slice(b"real(\"NaN\")");
    } else if r.is_infinite() {
        out.extend_from_slice(if r < 0.0 {
            b"real(\"-INF\")"
        } else {
            b"real(\"INF\")"
        });
    } else if style == Style::New {
        out.extend_from_slice(fmt_e(r, 15, true).as_bytes());
    } else {
        let mut s = fmt_g_upper(r, 16);
        if !s.contains(['.', 'E', 'e']) {
            s.push_str(".0");
        }
        out.extend_from_slice(s.as_bytes());
    }
}

/// A string literal, quoted with `"`.
pub fn unparse_string(s: &[u8], style: Style, out: &mut Vec<u8>) {
    out.push(b'"');
    escape_into(s, b'"', style, out);
    out.push(b'"');
}

fn escape_into(s: &[u8], delim: u8, style: Style, out: &mut Vec<u8>) {
    for &c in s {
        if c == delim {
            out.push(b'\\');
            out.push(c);
            continue;
        }
        if style != Style::Old {
            match c {
                0x07 => out.extend_from_slice(b"\\a"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x0b => out.extend_from_slice(b"\\v"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                c if !(0x20..0x7f).contains(&c) => {
                    out.extend_from_slice(format!("\\{c:03o}").as_bytes())
                }
                c => out.push(c),
            }
            continue;
        }
        out.push(c);
    }
}

/// An attribute name, quoted with `'` when it is not a plain identifier.
pub fn unparse_name(name: &[u8], style: Style, out: &mut Vec<u8>) {
    let plain = name
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !RESERVED.contains(&name);
    if plain {
        out.extend_from_slice(name);
    } else {
        // The name is escaped as a string with ' as the delimiter.
        out.push(b'\'');
        escape_into(name, b'\'', style, out);
        out.push(b'\'');
    }
}

pub fn unparse_list_into(items: &[Expr], style: Style, out: &mut Vec<u8>) {
    if style == Style::Json {
        return json::list(items, None, out);
    }
    out.extend_from_slice(b"{ ");
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        unparse_into(e, style, out);
    }
    out.extend_from_slice(b" }");
}

/// A nested ad (or an ad value) on one line: `[ a = 1; b = 2 ]`.
pub fn unparse_ad_into(ad: &ClassAd, style: Style, out: &mut Vec<u8>) {
    if style == Style::Json {
        return json::ad(ad.iter(), None, out);
    }
    out.extend_from_slice(b"[ ");
    for (i, (name, e)) in ad.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"; ");
        }
        unparse_name(name, style, out);
        out.extend_from_slice(b" = ");
        unparse_into(e, style, out);
    }
    out.extend_from_slice(b" ]");
}

pub fn unparse_into(e: &Expr, style: Style, out: &mut Vec<u8>) {
    if style == Style::Json {
        return json::expr(e, None, out);
    }
    match e {
        Expr::Undefined => out.extend_from_slice(b"undefined"),
        Expr::Error => out.extend_from_slice(b"error"),
        Expr::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Expr::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Expr::Real(r) => unparse_real(*r, style, out),
        Expr::Str(s) => unparse_string(s, style, out),
        Expr::AbsTime(t) => {
            out.extend_from_slice(b"absTime(\"");
            abstime_to_string(*t, out);
            out.extend_from_slice(b"\")");
        }
        Expr::RelTime(r) => {
            out.extend_from_slice(b"relTime(\"");
            reltime_to_string(*r, out);
            out.extend_from_slice(b"\")");
        }
        Expr::Attr(a) => {
            if let Some(base) = &a.base {
                unparse_into(base, style, out);
                out.push(b'.');
                // libclassad writes the selected name raw after a base.
                out.extend_from_slice(&a.name);
            } else {
                if a.absolute {
                    out.push(b'.');
                }
                unparse_name(&a.name, style, out);
            }
        }
        Expr::Unary(op, inner) => {
            out.extend_from_slice(match op {
                UnOp::Plus => b" +",
                UnOp::Minus => b" -",
                UnOp::Not => b" !",
                UnOp::BitNot => b" ~",
            });
            unparse_into(inner, style, out);
        }
        Expr::Paren(inner) => {
            out.push(b'(');
            unparse_into(inner, style, out);
            out.push(b')');
        }
        Expr::Cond(c) => {
            unparse_into(&c.0, style, out);
            out.extend_from_slice(b" ? ");
            unparse_into(&c.1, style, out);
            out.extend_from_slice(b" : ");
            unparse_into(&c.2, style, out);
        }
        Expr::Binary(BinOp::Subscript, p) => {
            unparse_into(&p.0, style, out);
            out.push(b'[');
            unparse_into(&p.1, style, out);
            out.push(b']');
        }
        Expr::Binary(op, p) => {
            unparse_into(&p.0, style, out);
            out.extend_from_slice(op_text(*op, style).as_bytes());
            unparse_into(&p.1, style, out);
        }
        Expr::Call(c) => {
            out.extend_from_slice(&c.name);
            out.push(b'(');
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                unparse_into(a, style, out);
            }
            out.push(b')');
        }
        Expr::List(items) => unparse_list_into(items, style, out),
        Expr::Ad(ad) => unparse_ad_into(ad, style, out),
    }
}

/// libclassad's `PrettyPrint` (as `unparse()` uses it): new syntax, with
/// ads and lists laid out over indented lines.
pub fn unparse_pretty(e: &Expr, out: &mut Vec<u8>) {
    pretty(e, &mut 0, out)
}

fn pretty(e: &Expr, indent: &mut usize, out: &mut Vec<u8>) {
    let newline = |n: usize, out: &mut Vec<u8>| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', n));
    };
    match e {
        Expr::Ad(ad) => {
            *indent += 4;
            newline(*indent, out);
            out.push(b'[');
            *indent += 4;
            for (i, (name, v)) in ad.iter().enumerate() {
                newline(*indent, out);
                unparse_name(name, Style::New, out);
                out.extend_from_slice(b" = ");
                pretty(v, indent, out);
                if i + 1 < ad.len() {
                    out.extend_from_slice(b"; ");
                }
            }
            *indent -= 4;
            newline(*indent, out);
            out.push(b']');
            *indent -= 4;
        }
        Expr::List(items) => {
            *indent += 3;
            newline(*indent, out);
            out.push(b'{');
            *indent += 3;
            for (i, v) in items.iter().enumerate() {
                newline(*indent, out);
                pretty(v, indent, out);
                if i + 1 < items.len() {
                    out.push(b',');
                }
            }
            *indent -= 3;
            newline(*indent, out);
            out.push(b'}');
            *indent -= 3;
        }
        // Operators and calls print as usual, but nested ads and lists
        // inside them are laid out too.
        Expr::Unary(op, inner) => {
            out.extend_from_slice(match op {
                UnOp::Plus => b" +",
                UnOp::Minus => b" -",
                UnOp::Not => b" !",
                UnOp::BitNot => b" ~",
            });
            pretty(inner, indent, out);
        }
        Expr::Paren(inner) => {
            out.push(b'(');
            pretty(inner, indent, out);
            out.push(b')');
        }
        Expr::Cond(c) => {
            pretty(&c.0, indent, out);
            out.extend_from_slice(b" ? ");
            pretty(&c.1, indent, out);
            out.extend_from_slice(b" : ");
            pretty(&c.2, indent, out);
        }
        Expr::Binary(BinOp::Subscript, p) => {
            pretty(&p.0, indent, out);
            out.push(b'[');
            pretty(&p.1, indent, out);
            out.push(b']');
        }
        Expr::Binary(op, p) => {
            pretty(&p.0, indent, out);
            out.extend_from_slice(op_text(*op, Style::New).as_bytes());
            pretty(&p.1, indent, out);
        }
        Expr::Call(c) => {
            out.extend_from_slice(&c.name);
            out.push(b'(');
            for (i, a) in c.args.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                pretty(a, indent, out);
            }
            out.push(b')');
        }
        Expr::Attr(a) if a.base.is_some() => {
            pretty(a.base.as_ref().expect("checked"), indent, out);
            out.push(b'.');
            out.extend_from_slice(&a.name);
        }
        other => unparse_into(other, Style::New, out),
    }
}

/// New-syntax text of an expression.
pub fn to_text(e: &Expr) -> String {
    let mut out = Vec::new();
    unparse_into(e, Style::New, &mut out);
    bytes_to_string(out)
}

/// Old-syntax text of an expression (as in `condor_q -long`).
pub fn to_old_text(e: &Expr) -> String {
    let mut out = Vec::new();
    unparse_into(e, Style::Old, &mut out);
    bytes_to_string(out)
}

pub fn bytes_to_string(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Attribute names in the order `condor_q -long` and `-json` print them:
/// alphabetical, ignoring case.
pub fn print_order(ad: &ClassAd) -> Vec<(&[u8], &Expr)> {
    let mut v: Vec<_> = ad.iter().collect();
    v.sort_by(|a, b| {
        a.0.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.0.iter().map(u8::to_ascii_lowercase))
    });
    v
}

/// One ad as `condor_q -long` prints it: `Name = value` lines.
pub fn write_long(ad: &ClassAd, out: &mut Vec<u8>) {
    for (name, e) in print_order(ad) {
        out.extend_from_slice(name);
        out.extend_from_slice(b" = ");
        unparse_into(e, Style::Old, out);
        out.push(b'\n');
    }
}

/// One ad as `condor_q -json` prints it (inside the array framing):
/// attributes sorted, nested values laid out over indented lines.
pub fn write_json(ad: &ClassAd, out: &mut Vec<u8>) {
    json::ad(print_order(ad).into_iter(), Some(0), out);
}

mod json {
    //! `ClassAdJsonUnParser`: literals as JSON values, every other expression
    //! as a string `"\/Expr(<new syntax>)\/"`. With an indent, nested ads
    //! and lists are laid out over lines as `condor_q -json` prints them.

    use super::*;

    pub fn escape(s: &[u8], out: &mut Vec<u8>) {
        for &c in s {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                1..=31 => out.extend_from_slice(format!("\\u00{c:02X}").as_bytes()),
                c => out.push(c),
            }
        }
    }

    fn quoted_expr_text(text: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"\\/Expr(");
        escape(text, out);
        out.extend_from_slice(b")\\/\"");
    }

    fn quoted_expr(e: &Expr, out: &mut Vec<u8>) {
        let mut text = Vec::new();
        unparse_into(e, Style::New, &mut text);
        quoted_expr_text(&text, out);
    }

    fn newline(indent: Option<usize>, out: &mut Vec<u8>) {
        if let Some(n) = indent {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', n));
        }
    }

    fn deeper(indent: Option<usize>) -> Option<usize> {
        indent.map(|n| n + 2)
    }

    pub fn expr(e: &Expr, indent: Option<usize>, out: &mut Vec<u8>) {
        match e {
            Expr::Undefined => out.extend_from_slice(b"null"),
            Expr::Error => quoted_expr_text(b"error", out),
            Expr::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Expr::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Expr::Real(r) if r.is_finite() => unparse_real(*r, Style::Json, out),
            Expr::Real(r) => {
                let mut t = Vec::new();
                unparse_real(*r, Style::New, &mut t);
                quoted_expr_text(&t, out);
            }
            Expr::Str(s) => {
                out.push(b'"');
                escape(s, out);
                out.push(b'"');
            }
            Expr::AbsTime(_) | Expr::RelTime(_) => quoted_expr(e, out),
            Expr::List(items) => list(items, indent, out),
            Expr::Ad(a) => ad(a.iter(), indent, out),
            _ => quoted_expr(e, out),
        }
    }

    pub fn list(items: &[Expr], indent: Option<usize>, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            newline(deeper(indent), out);
            expr(e, deeper(indent), out);
        }
        newline(indent, out);
        out.push(b']');
    }

    pub fn ad<'a>(
        attrs: impl Iterator<Item = (&'a [u8], &'a Expr)>,
        indent: Option<usize>,
        out: &mut Vec<u8>,
    ) {
        out.push(b'{');
        for (i, (name, e)) in attrs.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            newline(deeper(indent), out);
            out.push(b'"');
            escape(name, out);
            out.extend_from_slice(b"\": ");
            expr(e, deeper(indent), out);
        }
        newline(indent, out);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_expr;

    fn new(s: &str) -> String {
        to_text(&parse_expr(s.as_bytes()).unwrap())
    }

    #[test]
    fn canonical_new_syntax() {
        assert_eq!(new("a =?= b"), "a is b");
        assert_eq!(new("-x"), " -x");
        assert_eq!(new("{1, 2+3}"), "{ 1,2 + 3 }");
        assert_eq!(new("1.5"), "1.500000000000000E+00");
        assert_eq!(new("parent.a"), "'parent'.a");
        assert_eq!(
            new("[b=1;a=2;C=3;aa=4;B=5]"),
            "[ a = 2; b = 5; C = 3; aa = 4 ]"
        );
        assert_eq!(new("\"\\303\\251\""), "\"\\303\\251\"");
    }

    #[test]
    fn old_syntax_reals_and_meta_ops() {
        let e = parse_expr(b"a =?= 2.5 * 1.0").unwrap();
        assert_eq!(to_old_text(&e), "a =?= 2.5 * 1.0");
    }
}
