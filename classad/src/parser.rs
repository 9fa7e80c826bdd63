//! Recursive-descent parser for ClassAd expressions and ads, with
//! libclassad's grammar, precedence and (daemon-mode) acceptance rules.
//!
//! Precedence, loosest first: `?:` (right-assoc), `||`, `&&`, `|`, `^`, `&`,
//! `== != =?= =!= is isnt`, `< <= > >=`, `<< >> >>>`, `+ -`, `* / %`, unary
//! `- + ~ !`, then postfix selection `.x`, subscript `[e]` and Elvis `?:`.

use std::fmt;

use std::sync::Arc;

use super::ast::{AttrRef, BinOp, Call, ClassAd, Expr, Name, Slot, SmallBytes, UnOp};
use super::builtins::Builtin;
use super::lexer::{line_col, Lexer, Syntax, Tok};
use super::time;

/// A binary operator token and its precedence (higher binds tighter).
fn binary_op(t: &Tok<'_>) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::Or => (BinOp::Or, 1),
        Tok::And => (BinOp::And, 2),
        Tok::BitOr => (BinOp::BitOr, 3),
        Tok::BitXor => (BinOp::BitXor, 4),
        Tok::BitAnd => (BinOp::BitAnd, 5),
        Tok::Eq => (BinOp::Eq, 6),
        Tok::Ne => (BinOp::Ne, 6),
        Tok::MetaEq => (BinOp::Is, 6),
        Tok::MetaNe => (BinOp::Isnt, 6),
        Tok::Lt => (BinOp::Lt, 7),
        Tok::Le => (BinOp::Le, 7),
        Tok::Gt => (BinOp::Gt, 7),
        Tok::Ge => (BinOp::Ge, 7),
        Tok::Shl => (BinOp::Shl, 8),
        Tok::Shr => (BinOp::Shr, 8),
        Tok::UShr => (BinOp::UShr, 8),
        Tok::Plus => (BinOp::Add, 9),
        Tok::Minus => (BinOp::Sub, 9),
        Tok::Mul => (BinOp::Mul, 10),
        Tok::Div => (BinOp::Div, 10),
        Tok::Mod => (BinOp::Mod, 10),
        _ => return None,
    })
}

/// libclassad's bound on parser recursion.
const MAX_PARSER_DEPTH: u32 = 500;

/// A parse failure, located in the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

pub struct Parser<'a> {
    lex: Lexer<'a>,
    depth: u32,
}

type PResult<T> = Result<T, ParseError>;

/// Recursion as deep as libclassad allows needs more stack than a thread
/// may have; grow it on demand rather than overflow.
pub(crate) fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(256 * 1024, 2 * 1024 * 1024, f)
}

/// Checking the stack costs a little; recursion is checked every few levels
/// (the red zone above covers the levels in between).
fn grow_every<R>(depth: u32, f: impl FnOnce() -> R) -> R {
    if depth % 8 == 0 {
        grow(f)
    } else {
        f()
    }
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a [u8], syntax: Syntax) -> Parser<'a> {
        Parser {
            lex: Lexer::new(src, syntax),
            depth: 0,
        }
    }

    /// Bytes of input consumed so far (the start of the next token).
    pub fn offset(&mut self) -> usize {
        self.lex.peek_offset()
    }

    pub fn peek(&mut self) -> &Tok<'a> {
        self.lex.peek()
    }

    pub fn consume(&mut self) -> Tok<'a> {
        self.lex.consume()
    }

    pub fn error_here(&mut self, message: impl Into<String>) -> ParseError {
        let offset = self.lex.peek_offset();
        self.error_at(offset, message)
    }

    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = line_col(self.lex.source(), offset);
        ParseError {
            offset,
            line,
            column,
            message: message.into(),
        }
    }

    fn unexpected(&mut self, wanted: &str) -> ParseError {
        let got = self.lex.peek().describe();
        self.error_here(format!("expected {wanted}, found {got}"))
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSER_DEPTH {
            return Err(self.error_here("expression nested too deeply"));
        }
        Ok(())
    }

    /// An expression; with `full`, nothing may follow it.
    pub fn expression(&mut self, full: bool) -> PResult<Expr> {
        self.enter()?;
        let r = grow_every(self.depth, || self.expression_inner(full));
        self.depth -= 1;
        r
    }

    fn expression_inner(&mut self, full: bool) -> PResult<Expr> {
        let cond = self.logical_or()?;
        if *self.lex.peek() == Tok::QMark {
            self.lex.consume();
            let then = self.expression(false)?;
            if *self.lex.peek() != Tok::Colon {
                return Err(self.unexpected("':'"));
            }
            self.lex.consume();
            let other = self.expression(false)?;
            // libclassad does not check for trailing input after a ternary.
            return Ok(Expr::Cond(Box::new((cond, then, other))));
        }
        if full && *self.lex.peek() != Tok::End {
            return Err(self.unexpected("end of input"));
        }
        Ok(cond)
    }

    /// The binary operators by precedence climbing: the same left-associative
    /// trees as one grammar rule per level, in one loop.
    fn logical_or(&mut self) -> PResult<Expr> {
        self.binary(1)
    }

    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut left = self.unary()?;
        loop {
            let Some((op, prec)) = binary_op(self.lex.peek()) else {
                return Ok(left);
            };
            if prec < min_prec {
                return Ok(left);
            }
            self.lex.consume();
            let right = self.binary(prec + 1)?;
            left = Expr::binary(op, left, right);
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = grow_every(self.depth, || self.unary_inner());
        self.depth -= 1;
        r
    }

    fn unary_inner(&mut self) -> PResult<Expr> {
        let op = match self.lex.peek() {
            Tok::Minus => UnOp::Minus,
            Tok::Plus => UnOp::Plus,
            Tok::BitNot => UnOp::BitNot,
            Tok::Not => UnOp::Not,
            _ => return self.postfix(),
        };
        self.lex.consume();
        let operand = self.unary()?;
        Ok(Expr::Unary(op, Box::new(operand)))
    }

    fn postfix(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = grow_every(self.depth, || self.postfix_inner());
        self.depth -= 1;
        r
    }

    fn postfix_inner(&mut self) -> PResult<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.lex.peek() {
                Tok::OpenBox => {
                    self.lex.consume();
                    let index = self.expression(false)?;
                    if *self.lex.peek() != Tok::CloseBox {
                        return Err(self.unexpected("']'"));
                    }
                    self.lex.consume();
                    e = Expr::binary(BinOp::Subscript, e, index);
                }
                Tok::Elvis => {
                    self.lex.consume();
                    let alt = self.postfix()?;
                    e = Expr::binary(BinOp::Elvis, e, alt);
                }
                Tok::Selection => {
                    self.lex.consume();
                    match self.lex.peek() {
                        Tok::Ident(_) => {
                            let Tok::Ident(name) = self.lex.consume() else {
                                unreachable!("peeked an identifier")
                            };
                            e = Expr::Attr(Box::new(AttrRef {
                                base: Some(e),
                                name: name.into_owned(),
                                absolute: false,
                            }));
                        }
                        _ => return Err(self.unexpected("an attribute name after '.'")),
                    }
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let start = self.lex.peek_offset();
        match self.lex.peek() {
            Tok::Ident(_) => {
                let Tok::Ident(name) = self.lex.consume() else {
                    unreachable!("peeked an identifier")
                };
                if *self.lex.peek() == Tok::OpenParen {
                    let args = self.arguments()?;
                    return self.call(name.into_owned(), args, start);
                }
                Ok(Expr::Attr(Box::new(AttrRef {
                    base: None,
                    name: name.into_owned(),
                    absolute: false,
                })))
            }
            Tok::Selection => {
                self.lex.consume();
                match self.lex.peek() {
                    Tok::Ident(_) => {
                        let Tok::Ident(name) = self.lex.consume() else {
                            unreachable!("peeked an identifier")
                        };
                        Ok(Expr::Attr(Box::new(AttrRef {
                            base: None,
                            name: name.into_owned(),
                            absolute: true,
                        })))
                    }
                    _ => Err(self.unexpected("an attribute name after '.'")),
                }
            }
            Tok::OpenParen => {
                self.lex.consume();
                let inner = self.expression(false)?;
                if *self.lex.peek() != Tok::CloseParen {
                    return Err(self.unexpected("')'"));
                }
                self.lex.consume();
                Ok(Expr::Paren(Box::new(inner)))
            }
            Tok::OpenBox => Ok(Expr::Ad(Box::new(self.classad_body(false)?))),
            Tok::OpenBrace => Ok(Expr::List(self.list()?)),
            Tok::Undefined => {
                self.lex.consume();
                Ok(Expr::Undefined)
            }
            Tok::ErrorLit => {
                self.lex.consume();
                Ok(Expr::Error)
            }
            Tok::Bool(b) => {
                let b = *b;
                self.lex.consume();
                Ok(Expr::Bool(b))
            }
            Tok::Int(i) => {
                let i = *i;
                self.lex.consume();
                Ok(Expr::Int(i))
            }
            Tok::Real(r) => {
                let r = *r;
                self.lex.consume();
                Ok(Expr::Real(r))
            }
            Tok::Str { .. } => {
                let Tok::Str { bytes, .. } = self.lex.consume() else {
                    unreachable!("peeked a string")
                };
                Ok(Expr::Str(SmallBytes::new(&bytes)))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn call(&mut self, name: Vec<u8>, args: Vec<Expr>, start: usize) -> PResult<Expr> {
        // absTime("...") and relTime("...") become literals at parse time;
        // a string they cannot read makes the whole parse fail.
        let is_abs = name.eq_ignore_ascii_case(b"absTime");
        let is_rel = name.eq_ignore_ascii_case(b"relTime");
        if (is_abs || is_rel) && args.len() == 1 {
            if let Expr::Str(s) = &args[0] {
                return if is_abs {
                    time::parse_abstime(s)
                        .map(Expr::AbsTime)
                        .ok_or_else(|| self.error_at(start, "invalid absTime string"))
                } else {
                    time::parse_reltime(s)
                        .map(Expr::RelTime)
                        .ok_or_else(|| self.error_at(start, "invalid relTime string"))
                };
            }
        }
        let func = Builtin::lookup(&name);
        Ok(Expr::Call(Box::new(Call { name, func, args })))
    }

    fn arguments(&mut self) -> PResult<Vec<Expr>> {
        self.lex.consume(); // '('
        let mut args = Vec::new();
        // As in libclassad, the token after a separator is not re-examined
        // before the next argument is parsed, so "f(1,)" fails.
        let mut tt_is_close = *self.lex.peek() == Tok::CloseParen;
        while !tt_is_close {
            args.push(self.expression(false)?);
            match self.lex.peek() {
                // ';' separates arguments under old ClassAd semantics.
                Tok::Comma | Tok::Semicolon => {
                    self.lex.consume();
                }
                Tok::CloseParen => tt_is_close = true,
                _ => return Err(self.unexpected("',' or ')'")),
            }
        }
        self.lex.consume(); // ')'
        Ok(args)
    }

    fn list(&mut self) -> PResult<Vec<Expr>> {
        self.lex.consume(); // '{'
        let mut items = Vec::new();
        let mut tt_is_close = *self.lex.peek() == Tok::CloseBrace;
        while !tt_is_close {
            items.push(self.expression(false)?);
            match self.lex.peek() {
                Tok::Comma => {
                    self.lex.consume();
                }
                Tok::CloseBrace => tt_is_close = true,
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
        self.lex.consume(); // '}'
        Ok(items)
    }

    /// `[ name = expr; ... ]`.
    pub fn classad_body(&mut self, full: bool) -> PResult<ClassAd> {
        if *self.lex.peek() != Tok::OpenBox {
            return Err(self.unexpected("'['"));
        }
        self.lex.consume();
        let mut ad = ClassAd::new();
        let mut tt_is_close = *self.lex.peek() == Tok::CloseBox;
        while !tt_is_close {
            let name_at = self.lex.peek_offset();
            let tok = self.lex.consume();
            let name = match tok {
                // Stray semicolons are tolerated, but the token after one is
                // consumed unconditionally, so "[;]" fails as it does upstream.
                Tok::Semicolon => continue,
                Tok::Ident(n) => n.into_owned(),
                other => {
                    return Err(self.error_at(
                        name_at,
                        format!("expected an attribute name, found {}", other.describe()),
                    ))
                }
            };
            if *self.lex.peek() != Tok::BoundTo {
                return Err(self.unexpected("'='"));
            }
            self.lex.consume();
            let value = self.expression(false)?;
            if name.is_empty() {
                return Err(self.error_at(name_at, "empty attribute name"));
            }
            ad.insert(name, value);
            match self.lex.peek() {
                Tok::Semicolon => {
                    while *self.lex.peek() == Tok::Semicolon {
                        self.lex.consume();
                    }
                    tt_is_close = *self.lex.peek() == Tok::CloseBox;
                }
                Tok::CloseBox => tt_is_close = true,
                _ => return Err(self.unexpected("';' or ']'")),
            }
        }
        self.lex.consume(); // ']'
        if full && *self.lex.peek() != Tok::End {
            return Err(self.unexpected("end of input"));
        }
        Ok(ad)
    }
}

/// Parses one complete new-syntax expression (nothing may follow it).
pub fn parse_expr(src: &[u8]) -> Result<Expr, ParseError> {
    Parser::new(src, Syntax::New).expression(true)
}

/// Parses a new-syntax expression and ignores whatever follows it, as
/// libclassad's `ParseExpression(text)` does.
pub fn parse_expr_prefix(src: &[u8], syntax: Syntax) -> Result<Expr, ParseError> {
    Parser::new(src, syntax).expression(false)
}

/// Parses a new-syntax ad `[ ... ]`; text after the closing bracket is
/// ignored, as by libclassad's `ParseClassAd(text)`.
pub fn parse_ad(src: &[u8]) -> Result<ClassAd, ParseError> {
    Parser::new(src, Syntax::New).classad_body(false)
}

/// Parsed embedded expressions by their JSON text (bounded: it starts
/// over when full).
#[derive(Default)]
pub struct ExprCache {
    map: rustc_hash::FxHashMap<Box<[u8]>, Arc<Expr>>,
    bytes: usize,
}

impl ExprCache {
    const MAX_BYTES: usize = 8 << 20;

    fn lookup(&self, text: &[u8]) -> Option<Arc<Expr>> {
        self.map.get(text).cloned()
    }

    fn remember(&mut self, text: Vec<u8>, e: Arc<Expr>) {
        if self.bytes + text.len() > Self::MAX_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += text.len();
        self.map.insert(text.into_boxed_slice(), e);
    }
}

impl<'a> Parser<'a> {
    /// A JSON value in `condor_q -json` form: objects are ads, arrays are
    /// lists, `null` is UNDEFINED and `"\/Expr(...)\/"` holds an expression.
    pub fn json_value(&mut self) -> PResult<Expr> {
        let at = self.lex.peek_offset();
        match self.lex.peek() {
            Tok::OpenBrace => Ok(Expr::Ad(Box::new(self.json_object()?))),
            Tok::OpenBox => {
                self.lex.consume();
                let mut items = Vec::new();
                let mut tt_is_close = *self.lex.peek() == Tok::CloseBox;
                while !tt_is_close {
                    items.push(self.json_value()?);
                    match self.lex.peek() {
                        Tok::Comma => {
                            self.lex.consume();
                        }
                        Tok::CloseBox => tt_is_close = true,
                        _ => return Err(self.unexpected("',' or ']'")),
                    }
                }
                self.lex.consume();
                Ok(Expr::List(items))
            }
            Tok::Undefined => {
                self.lex.consume();
                Ok(Expr::Undefined)
            }
            Tok::Bool(b) => {
                let b = *b;
                self.lex.consume();
                Ok(Expr::Bool(b))
            }
            Tok::Int(i) => {
                let i = *i;
                self.lex.consume();
                Ok(Expr::Int(i))
            }
            Tok::Real(r) => {
                let r = *r;
                self.lex.consume();
                Ok(Expr::Real(r))
            }
            Tok::Str { .. } => {
                let Tok::Str { bytes, quoted_expr } = self.lex.consume() else {
                    unreachable!("peeked a string")
                };
                if quoted_expr
                    && bytes.len() >= 8
                    && bytes[..6].eq_ignore_ascii_case(b"/Expr(")
                    && bytes.ends_with(b")/")
                {
                    let inner = &bytes[6..bytes.len() - 2];
                    return parse_expr(inner).map_err(|e| {
                        self.error_at(at, format!("in embedded expression: {}", e.message))
                    });
                }
                Ok(Expr::Str(SmallBytes::new(&bytes)))
            }
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    /// `{ "Name": value, ... }` as an ad.
    pub fn json_object(&mut self) -> PResult<ClassAd> {
        self.json_object_with(None)
    }

    /// As `json_object`, sharing the top-level expressions (`"\/Expr(...)\/"`)
    /// through `cache`: a queue repeats the same Requirements in every
    /// job, and each distinct text is then parsed and stored once.
    pub fn json_object_with(&mut self, mut cache: Option<&mut ExprCache>) -> PResult<ClassAd> {
        if *self.lex.peek() != Tok::OpenBrace {
            return Err(self.unexpected("'{'"));
        }
        self.lex.consume();
        let mut ad = ClassAd::new();
        let mut tt_is_close = *self.lex.peek() == Tok::CloseBrace;
        while !tt_is_close {
            let name_at = self.lex.peek_offset();
            let name = match self.lex.consume() {
                Tok::Comma => continue,
                Tok::Str { bytes, .. } => bytes.into_owned(),
                other => {
                    return Err(self.error_at(
                        name_at,
                        format!("expected an attribute name, found {}", other.describe()),
                    ))
                }
            };
            if *self.lex.peek() != Tok::Colon {
                return Err(self.unexpected("':'"));
            }
            self.lex.consume();
            let cached = match (&mut cache, self.lex.peek()) {
                (
                    Some(c),
                    Tok::Str {
                        bytes,
                        quoted_expr: true,
                    },
                ) => c.lookup(bytes),
                _ => None,
            };
            let slot = match cached {
                Some(shared) => {
                    self.lex.consume();
                    Slot::Shared(shared)
                }
                None => {
                    let key = match (&cache, self.lex.peek()) {
                        (
                            Some(_),
                            Tok::Str {
                                bytes,
                                quoted_expr: true,
                            },
                        ) => Some(bytes.to_vec()),
                        _ => None,
                    };
                    let slot = Slot::new(self.json_value()?);
                    if let (Some(c), Some(k), Slot::Shared(e)) = (&mut cache, key, &slot) {
                        c.remember(k, Arc::clone(e));
                    }
                    slot
                }
            };
            if name.is_empty() {
                return Err(self.error_at(name_at, "empty attribute name"));
            }
            ad.insert_slot(Name::from(name), slot);
            match self.lex.peek() {
                Tok::Comma => {
                    while *self.lex.peek() == Tok::Comma {
                        self.lex.consume();
                    }
                    tt_is_close = *self.lex.peek() == Tok::CloseBrace;
                }
                Tok::CloseBrace => tt_is_close = true,
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
        self.lex.consume();
        Ok(ad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_follows_libclassad() {
        let e = parse_expr(b"a || b && c == d + e * f").unwrap();
        let Expr::Binary(BinOp::Or, _) = e else {
            panic!("|| must be loosest: {e:?}")
        };
        // Elvis is postfix: it binds tighter than '+'.
        let e = parse_expr(b"a + b ?: c").unwrap();
        let Expr::Binary(BinOp::Add, pair) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(pair.1, Expr::Binary(BinOp::Elvis, _)));
    }

    #[test]
    fn trailing_separators_fail_like_upstream() {
        assert!(parse_expr(b"{1,}").is_err());
        assert!(parse_expr(b"f(1,)").is_err());
        assert!(parse_expr(b"[;]").is_err());
        assert!(parse_expr(b"[;a=1]").is_ok());
        assert!(parse_expr(b"[a=1;;]").is_ok());
    }

    #[test]
    fn errors_are_located() {
        let err = parse_expr(b"a +\n  (1").unwrap_err();
        assert_eq!((err.line, err.column), (2, 5));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "(".repeat(5000) + "1" + &")".repeat(5000);
        assert!(parse_expr(deep.as_bytes()).is_err());
        let bangs = "!".repeat(100_000) + "x";
        assert!(parse_expr(bangs.as_bytes()).is_err());
    }
}
