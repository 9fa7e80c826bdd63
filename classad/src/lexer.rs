//! The ClassAd tokenizer, reproducing libclassad's lexer token for token.
//!
//! Its quirks are part of the language as HTCondor speaks it, so they are kept:
//! a `-` directly before a digit is part of a number literal unless the previous
//! token was a value; adjacent string literals are concatenated; integers with a
//! leading zero (octal, hex) are rejected, as daemons reject them; a NUL byte
//! ends the input. Each token carries its byte offset so that errors can be
//! reported by line and column.

use std::borrow::Cow;

use nom::bytes::complete::take_while;
use nom::IResult;

/// Which of the three ClassAd syntaxes is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `[a = 1; b = "x"]`, escapes as in C
    New,
    /// `a = 1` lines as `condor_q -long` prints them; backslash is literal
    /// except before a quote
    Old,
    /// `condor_q -json`: JSON values, `null`, escapes as in JSON
    Json,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok<'a> {
    End,
    /// A character sequence that is not a token (the parser fails on it).
    Bad,
    Int(i64),
    Real(f64),
    Bool(bool),
    /// A string literal; `quoted_expr` marks a JSON string written `"\/...\/"`.
    Str {
        bytes: Cow<'a, [u8]>,
        quoted_expr: bool,
    },
    Undefined,
    ErrorLit,
    Ident(Cow<'a, [u8]>),
    Selection,
    Mul,
    Div,
    Mod,
    Plus,
    Minus,
    BitAnd,
    BitOr,
    BitNot,
    BitXor,
    Shl,
    Shr,
    UShr,
    And,
    Or,
    Not,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    MetaEq,
    MetaNe,
    BoundTo,
    QMark,
    Elvis,
    Colon,
    Semicolon,
    Comma,
    OpenBox,
    CloseBox,
    OpenParen,
    CloseParen,
    OpenBrace,
    CloseBrace,
}

impl Tok<'_> {
    /// Tokens after which a `-` is subtraction rather than a sign.
    fn ends_value(&self) -> bool {
        matches!(
            self,
            Tok::Int(_)
                | Tok::Real(_)
                | Tok::Bool(_)
                | Tok::Str { .. }
                | Tok::Undefined
                | Tok::ErrorLit
                | Tok::Ident(_)
                | Tok::Selection
                | Tok::CloseBox
                | Tok::CloseParen
                | Tok::CloseBrace
        )
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::End => "end of input".into(),
            Tok::Bad => "an invalid token".into(),
            Tok::Int(i) => format!("integer {i}"),
            Tok::Real(r) => format!("real {r}"),
            Tok::Bool(b) => format!("{b}"),
            Tok::Str { .. } => "a string".into(),
            Tok::Undefined => "undefined".into(),
            Tok::ErrorLit => "error".into(),
            Tok::Ident(n) => format!("'{}'", String::from_utf8_lossy(n)),
            other => format!("{other:?}"),
        }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn is_odigit(c: u8) -> bool {
    (b'0'..=b'7').contains(&c)
}

fn word(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|c: u8| c.is_ascii_alphanumeric() || c == b'_')(input)
}

fn alpha_run(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|c: u8| c.is_ascii_alphabetic())(input)
}

fn digit_run(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|c: u8| c.is_ascii_digit())(input)
}

/// A tokenizer over one input buffer. Tokens are produced on demand, as the
/// parser peeks and consumes them, because the meaning of `-` depends on the
/// token before it.
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    syntax: Syntax,
    prev_ends_value: bool,
    peeked: Option<(Tok<'a>, usize)>,
}

impl<'a> Lexer<'a> {
    /// A NUL byte ends the input for libclassad; so it does here, because
    /// every scan stops at a 0 byte as it stops at the end.
    pub fn new(src: &'a [u8], syntax: Syntax) -> Lexer<'a> {
        Lexer {
            src,
            pos: 0,
            syntax,
            prev_ends_value: false,
            peeked: None,
        }
    }

    /// The byte offset just after the last consumed token's input.
    pub fn offset(&self) -> usize {
        match &self.peeked {
            Some((_, start)) => *start,
            None => self.pos,
        }
    }

    pub fn source(&self) -> &'a [u8] {
        self.src
    }

    pub fn peek(&mut self) -> &Tok<'a> {
        if self.peeked.is_none() {
            let t = self.next_token();
            self.peeked = Some(t);
        }
        &self.peeked.as_ref().expect("just filled").0
    }

    /// The start offset of the token `peek` returns.
    pub fn peek_offset(&mut self) -> usize {
        self.peek();
        self.peeked.as_ref().expect("just filled").1
    }

    pub fn consume(&mut self) -> Tok<'a> {
        match self.peeked.take() {
            Some((t, _)) => t,
            None => self.next_token().0,
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn ch(&self) -> u8 {
        self.at(self.pos)
    }

    fn next_token(&mut self) -> (Tok<'a>, usize) {
        let tok_start;
        let tok = loop {
            let c = self.ch();
            if is_space(c) {
                self.pos += 1;
                continue;
            }
            if c == b'/' {
                let n = self.at(self.pos + 1);
                if n == b'/' {
                    while self.ch() != 0 && self.ch() != b'\n' {
                        self.pos += 1;
                    }
                    continue;
                }
                if n == b'*' {
                    // The comment's own '*' may not close it: "/*/" is open.
                    let mut i = self.pos + 2;
                    let mut prev = b'\n';
                    loop {
                        let c = self.at(i);
                        if c == 0 {
                            tok_start = self.pos;
                            self.pos = self.src.len();
                            return (Tok::Bad, tok_start);
                        }
                        i += 1;
                        if prev == b'*' && c == b'/' {
                            break;
                        }
                        prev = c;
                    }
                    self.pos = i;
                    continue;
                }
                tok_start = self.pos;
                self.pos += 1;
                break Tok::Div;
            }
            tok_start = self.pos;
            if c == 0 {
                break Tok::End;
            }
            break if c == b'-' {
                if self.prev_ends_value {
                    self.punct()
                } else {
                    self.number()
                }
            } else if c.is_ascii_digit() || c == b'.' {
                self.number()
            } else if c.is_ascii_alphabetic() || c == b'_' {
                self.alpha()
            } else if c == b'"' {
                self.string(b'"')
            } else if c == b'\'' {
                self.string(b'\'')
            } else {
                self.punct()
            };
        };
        self.prev_ends_value = tok.ends_value();
        (tok, tok_start)
    }

    fn number(&mut self) -> Tok<'a> {
        #[derive(PartialEq)]
        enum Kind {
            None,
            Integer,
            Real,
        }
        let start = self.pos;
        let mut och = self.ch();
        self.pos += 1;
        if och == b'-' {
            let c = self.ch();
            if c.is_ascii_digit() {
                och = c;
                self.pos += 1;
            } else if c == b'.' {
                if !self.at(self.pos + 1).is_ascii_digit() {
                    return Tok::Minus;
                }
            } else {
                return Tok::Minus;
            }
        }
        let mut kind = Kind::None;
        if och == b'0' {
            if self.ch().eq_ignore_ascii_case(&b'x') {
                kind = Kind::Integer;
                self.pos += 1;
                if !self.ch().is_ascii_hexdigit() {
                    return Tok::Bad;
                }
                while self.ch().is_ascii_hexdigit() {
                    self.pos += 1;
                }
            } else {
                kind = Kind::Integer;
                while self.ch().is_ascii_digit() {
                    if kind == Kind::Integer && !is_odigit(self.ch()) {
                        kind = Kind::Real;
                    }
                    self.pos += 1;
                }
                if self.ch() == b'.' || self.ch().eq_ignore_ascii_case(&b'e') {
                    kind = Kind::Real;
                } else if kind == Kind::Real {
                    // non-octal digits after a leading zero
                    return Tok::Bad;
                }
            }
        } else if och.is_ascii_digit() {
            let (_, digits) = digit_run(&self.src[self.pos..]).expect("take_while cannot fail");
            self.pos += digits.len();
            kind = if self.ch() == b'.' || self.ch().eq_ignore_ascii_case(&b'e') {
                Kind::Real
            } else {
                Kind::Integer
            };
        }
        if och == b'.' || self.ch() == b'.' {
            if self.ch() == b'.' {
                self.pos += 1;
            }
            if self.ch().is_ascii_digit() {
                kind = Kind::Real;
                while self.ch().is_ascii_digit() {
                    self.pos += 1;
                }
            } else {
                if kind != Kind::None {
                    return Tok::Bad;
                }
                return Tok::Selection;
            }
        }
        if kind == Kind::Real && self.ch().eq_ignore_ascii_case(&b'e') {
            self.pos += 1;
            if self.ch() == b'+' || self.ch() == b'-' {
                self.pos += 1;
            }
            if !self.ch().is_ascii_digit() {
                return Tok::Bad;
            }
            while self.ch().is_ascii_digit() {
                self.pos += 1;
            }
        }
        let text = &self.src[start..self.pos];
        if kind == Kind::Integer {
            // Daemons (old ClassAd semantics) and JSON reject octal and hex.
            if text[0] == b'0' && text.len() > 1 {
                return Tok::Bad;
            }
            Tok::Int(from_chars_i64(text))
        } else {
            Tok::Real(strtod_prefix(text).0)
        }
    }

    fn alpha(&mut self) -> Tok<'a> {
        let start = self.pos;
        let (_, head) = alpha_run(&self.src[start..]).expect("take_while cannot fail");
        let c = self.at(start + head.len());
        if c.is_ascii_digit() || c == b'_' {
            let (_, w) = word(&self.src[start..]).expect("take_while cannot fail");
            self.pos = start + w.len();
            return Tok::Ident(Cow::Borrowed(w));
        }
        self.pos = start + head.len();
        let w = head;
        let is = |s: &str| w.eq_ignore_ascii_case(s.as_bytes());
        match w.len() {
            2 if is("is") => Tok::MetaEq,
            4 if is("true") => Tok::Bool(true),
            4 if is("isnt") => Tok::MetaNe,
            4 if self.syntax == Syntax::Json && is("null") => Tok::Undefined,
            5 if is("false") => Tok::Bool(false),
            5 if is("error") => Tok::ErrorLit,
            9 if self.syntax != Syntax::Json && is("undefined") => Tok::Undefined,
            _ => Tok::Ident(Cow::Borrowed(w)),
        }
    }

    fn string(&mut self, delim: u8) -> Tok<'a> {
        if self.syntax == Syntax::Old {
            return self.string_old(delim);
        }
        self.pos += 1; // the opening quote
        let mut raw: Cow<'a, [u8]> = Cow::Borrowed(&[]);
        let mut seg_start = self.pos;
        loop {
            let mut odd = false;
            let mut old = 0u8;
            loop {
                let c = self.ch();
                if c == 0 || (c == delim && !(old == b'\\' && odd)) {
                    break;
                }
                odd = !odd && c == b'\\';
                old = c;
                self.pos += 1;
            }
            if self.ch() != delim {
                return Tok::Bad;
            }
            let seg = &self.src[seg_start..self.pos];
            raw = if raw.is_empty() && matches!(raw, Cow::Borrowed(_)) {
                Cow::Borrowed(seg)
            } else {
                let mut v = raw.into_owned();
                v.extend_from_slice(seg);
                Cow::Owned(v)
            };
            // Whitespace and then the same quote again continue the literal.
            let mut j = self.pos + 1;
            while is_space(self.at(j)) {
                j += 1;
            }
            if self.at(j) == delim {
                self.pos = j + 1;
                seg_start = self.pos;
                if let Cow::Borrowed(b) = raw {
                    raw = Cow::Owned(b.to_vec());
                }
                continue;
            }
            self.pos = j;
            break;
        }
        let quoted_expr = self.syntax == Syntax::Json
            && raw.len() >= 4
            && raw.starts_with(b"\\/")
            && raw.ends_with(b"\\/");
        let converted = if self.syntax == Syntax::Json {
            convert_escapes_json(raw)
        } else {
            convert_escapes(raw)
        };
        let Some(bytes) = converted else {
            return Tok::Bad;
        };
        if delim == b'"' {
            Tok::Str { bytes, quoted_expr }
        } else {
            Tok::Ident(bytes)
        }
    }

    /// Old syntax: backslash is literal unless it precedes a quote that is
    /// followed by more text on the line.
    fn string_old(&mut self, delim: u8) -> Tok<'a> {
        self.pos += 1;
        let start = self.pos;
        let mut buf: Option<Vec<u8>> = None;
        let mut seg_start = start;
        loop {
            let mut old = 0u8;
            while self.ch() != 0 && self.ch() != delim {
                old = self.ch();
                self.pos += 1;
            }
            if self.ch() != delim {
                return Tok::Bad;
            }
            if old != b'\\' {
                break;
            }
            let after = self.at(self.pos + 1);
            if after != 0 && after != b'\n' {
                // `\"` inside the text: the quote is literal, the backslash goes.
                let b = buf.get_or_insert_with(Vec::new);
                b.extend_from_slice(&self.src[seg_start..self.pos - 1]);
                b.push(delim);
                self.pos += 1;
                seg_start = self.pos;
            } else {
                break;
            }
        }
        let bytes: Cow<'a, [u8]> = match buf {
            None => Cow::Borrowed(&self.src[start..self.pos]),
            Some(mut b) => {
                b.extend_from_slice(&self.src[seg_start..self.pos]);
                Cow::Owned(b)
            }
        };
        self.pos += 1; // the closing quote
        if delim == b'"' {
            Tok::Str {
                bytes,
                quoted_expr: false,
            }
        } else {
            Tok::Ident(bytes)
        }
    }

    fn punct(&mut self) -> Tok<'a> {
        let c = self.ch();
        self.pos += 1;
        let n = self.ch();
        let n2 = self.at(self.pos + 1);
        let (tok, extra) = match c {
            b'.' => (Tok::Selection, 0),
            b'*' => (Tok::Mul, 0),
            b'/' => (Tok::Div, 0),
            b'%' => (Tok::Mod, 0),
            b'+' => (Tok::Plus, 0),
            b'-' => (Tok::Minus, 0),
            b'~' => (Tok::BitNot, 0),
            b'^' => (Tok::BitXor, 0),
            b'?' => {
                let mut j = self.pos;
                while is_space(self.at(j)) {
                    j += 1;
                }
                if self.at(j) == b':' {
                    self.pos = j + 1;
                    return Tok::Elvis;
                }
                self.pos = j;
                return Tok::QMark;
            }
            b':' => (Tok::Colon, 0),
            b';' => (Tok::Semicolon, 0),
            b',' => (Tok::Comma, 0),
            b'[' => (Tok::OpenBox, 0),
            b']' => (Tok::CloseBox, 0),
            b'(' => (Tok::OpenParen, 0),
            b')' => (Tok::CloseParen, 0),
            b'{' => (Tok::OpenBrace, 0),
            b'}' => (Tok::CloseBrace, 0),
            b'&' if n == b'&' => (Tok::And, 1),
            b'&' => (Tok::BitAnd, 0),
            b'|' if n == b'|' => (Tok::Or, 1),
            b'|' => (Tok::BitOr, 0),
            b'<' if n == b'=' => (Tok::Le, 1),
            b'<' if n == b'<' => (Tok::Shl, 1),
            b'<' => (Tok::Lt, 0),
            b'>' if n == b'=' => (Tok::Ge, 1),
            b'>' if n == b'>' && n2 == b'>' => (Tok::UShr, 2),
            b'>' if n == b'>' => (Tok::Shr, 1),
            b'>' => (Tok::Gt, 0),
            b'=' if n == b'=' => (Tok::Eq, 1),
            b'=' if n == b'?' && n2 == b'=' => (Tok::MetaEq, 2),
            b'=' if n == b'?' => (Tok::Bad, 1),
            b'=' if n == b'!' && n2 == b'=' => (Tok::MetaNe, 2),
            b'=' => (Tok::BoundTo, 0),
            b'!' if n == b'=' => (Tok::Ne, 1),
            b'!' => (Tok::Not, 0),
            _ => (Tok::Bad, 0),
        };
        self.pos += extra;
        tok
    }
}

/// `std::from_chars(.., 10)` as libclassad calls it: an optional `-`, then
/// the longest run of digits; on overflow the result is left at 0.
pub fn from_chars_i64(text: &[u8]) -> i64 {
    let (neg, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return 0;
    }
    let mut v: i128 = 0;
    for &d in &digits[..n] {
        v = v * 10 + i128::from(d - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return 0;
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).unwrap_or(0)
}

/// C's `strtod` on a byte string: skips leading whitespace, parses the longest
/// valid prefix (decimal, hex floats aside, `inf`, `nan`), and returns the
/// value with the number of bytes consumed (0 when nothing parsed).
pub fn strtod_prefix(text: &[u8]) -> (f64, usize) {
    let mut i = 0;
    while i < text.len() && is_space(text[i]) {
        i += 1;
    }
    let start = i;
    if i < text.len() && (text[i] == b'+' || text[i] == b'-') {
        i += 1;
    }
    let rest = &text[i..];
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let sign = if text.get(start) == Some(&b'-') {
        -1.0
    } else {
        1.0
    };
    if lower.starts_with(b"infinity") {
        return (sign * f64::INFINITY, i + 8);
    }
    if lower.starts_with(b"inf") {
        return (sign * f64::INFINITY, i + 3);
    }
    if lower.starts_with(b"nan") {
        let mut j = i + 3;
        // nan(chars)
        if text.get(j) == Some(&b'(') {
            let mut k = j + 1;
            while k < text.len() && (text[k].is_ascii_alphanumeric() || text[k] == b'_') {
                k += 1;
            }
            if text.get(k) == Some(&b')') {
                j = k + 1;
            }
        }
        let nan = if sign < 0.0 { -f64::NAN } else { f64::NAN };
        return (nan, j);
    }
    if lower.starts_with(b"0x") {
        return strtod_hex(text, i + 2, sign);
    }
    let mut j = i;
    let mut mant_digits = 0;
    while j < text.len() && text[j].is_ascii_digit() {
        j += 1;
        mant_digits += 1;
    }
    if j < text.len() && text[j] == b'.' {
        j += 1;
        while j < text.len() && text[j].is_ascii_digit() {
            j += 1;
            mant_digits += 1;
        }
    }
    if mant_digits == 0 {
        return (0.0, 0);
    }
    if j < text.len() && (text[j] == b'e' || text[j] == b'E') {
        let mut k = j + 1;
        if k < text.len() && (text[k] == b'+' || text[k] == b'-') {
            k += 1;
        }
        if k < text.len() && text[k].is_ascii_digit() {
            while k < text.len() && text[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let s = std::str::from_utf8(&text[start..j]).expect("ascii");
    let v = s.parse::<f64>().unwrap_or(0.0);
    (v, j)
}

fn strtod_hex(text: &[u8], digits_at: usize, sign: f64) -> (f64, usize) {
    let mut j = digits_at;
    let mut mant: f64 = 0.0;
    let mut any = false;
    let mut exp: i32 = 0;
    while j < text.len() && text[j].is_ascii_hexdigit() {
        mant = mant * 16.0 + f64::from((text[j] as char).to_digit(16).expect("hex"));
        j += 1;
        any = true;
    }
    if j < text.len() && text[j] == b'.' {
        j += 1;
        while j < text.len() && text[j].is_ascii_hexdigit() {
            mant = mant * 16.0 + f64::from((text[j] as char).to_digit(16).expect("hex"));
            exp -= 4;
            j += 1;
            any = true;
        }
    }
    if !any {
        // "0x" alone parses as 0 with the 'x' left over
        return (0.0, digits_at - 1);
    }
    if j < text.len() && (text[j] == b'p' || text[j] == b'P') {
        let mut k = j + 1;
        let mut esign = 1;
        if k < text.len() && (text[k] == b'+' || text[k] == b'-') {
            if text[k] == b'-' {
                esign = -1;
            }
            k += 1;
        }
        if k < text.len() && text[k].is_ascii_digit() {
            let mut e: i32 = 0;
            while k < text.len() && text[k].is_ascii_digit() {
                e = e
                    .saturating_mul(10)
                    .saturating_add(i32::from(text[k] - b'0'));
                k += 1;
            }
            exp = exp.saturating_add(esign * e);
            j = k;
        }
    }
    (sign * mant * 2f64.powi(exp), j)
}

/// C-style escapes of new-syntax strings; `None` if the result would hold NUL.
pub fn convert_escapes(raw: Cow<'_, [u8]>) -> Option<Cow<'_, [u8]>> {
    if !raw.contains(&b'\\') {
        return Some(raw);
    }
    let t = &raw[..];
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let mut c = t[i];
        if c == b'\\' && i + 1 < t.len() {
            i += 1;
            c = t[i];
            c = match c {
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 0x0b,
                b'"' | b'\'' | b'?' | b'\\' => c,
                d if is_odigit(d) => {
                    let mut n = u32::from(d - b'0');
                    if i + 1 < t.len() && is_odigit(t[i + 1]) {
                        i += 1;
                        n = (n << 3) + u32::from(t[i] - b'0');
                        if n < 0x20 && i + 1 < t.len() && is_odigit(t[i + 1]) {
                            i += 1;
                            n = (n << 3) + u32::from(t[i] - b'0');
                        }
                    }
                    let b = n as u8;
                    if b == 0 {
                        return None;
                    }
                    b
                }
                other => other,
            };
        }
        out.push(c);
        i += 1;
    }
    Some(Cow::Owned(out))
}

/// JSON escapes, with libclassad's (lossy) handling of `\u` escapes.
pub fn convert_escapes_json(raw: Cow<'_, [u8]>) -> Option<Cow<'_, [u8]>> {
    if !raw.contains(&b'\\') {
        return Some(raw);
    }
    let t = &raw[..];
    let mut out = Vec::with_capacity(t.len());
    let mut i = 0;
    while i < t.len() {
        let mut c = t[i];
        if c == b'\\' && i + 1 < t.len() {
            i += 1;
            c = t[i];
            match c {
                b'"' | b'\\' => {}
                b'b' => c = 0x08,
                b'f' => c = 0x0c,
                b'n' => c = b'\n',
                b'r' => c = b'\r',
                b't' => c = b'\t',
                b'u' => {
                    if i + 4 >= t.len() {
                        return None;
                    }
                    let mut n: u32 = 0;
                    for k in 1..=4 {
                        let d = (t[i + k] as char).to_digit(16)?;
                        n = (n << 4) + d;
                    }
                    i += 4;
                    if n == 0 {
                        return None;
                    }
                    // libclassad writes these bytes; they are not UTF-8 for
                    // most code points, but they are what it stores.
                    if n >= 0x0800 {
                        out.push((n >> 12) as u8);
                        out.push((((n >> 6) | 0x0011_1111) & 0xff) as u8);
                        out.push(((n | 0x0011_1111) & 0xff) as u8);
                        i += 1;
                        continue;
                    } else if n >= 0x0080 {
                        out.push(((n >> 6) & 0xff) as u8);
                        out.push((n & 0x0011_1111 & 0xff) as u8);
                        i += 1;
                        continue;
                    }
                    c = n as u8;
                }
                _ => {}
            }
        }
        out.push(c);
        i += 1;
    }
    Some(Cow::Owned(out))
}

/// The 1-based line and column of a byte offset, for error messages.
pub fn line_col(src: &[u8], offset: usize) -> (usize, usize) {
    let upto = &src[..offset.min(src.len())];
    let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = upto.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        let mut l = Lexer::new(s.as_bytes(), Syntax::New);
        let mut v = Vec::new();
        loop {
            let t = l.consume();
            if t == Tok::End {
                return v;
            }
            v.push(t);
        }
    }

    #[test]
    fn minus_binds_to_numbers_only_after_operators() {
        assert_eq!(toks("-7"), vec![Tok::Int(-7)]);
        assert_eq!(toks("1 -1"), vec![Tok::Int(1), Tok::Minus, Tok::Int(1)]);
        assert_eq!(toks("- 2"), vec![Tok::Minus, Tok::Int(2)]);
        assert_eq!(toks("-010"), vec![Tok::Int(-10)]);
    }

    #[test]
    fn leading_zero_integers_and_bare_dots_are_bad() {
        assert_eq!(toks("010"), vec![Tok::Bad]);
        assert_eq!(toks("1."), vec![Tok::Bad]);
        assert_eq!(toks("0.5"), vec![Tok::Real(0.5)]);
        assert_eq!(toks("99999999999999999999"), vec![Tok::Int(0)]);
    }

    #[test]
    fn adjacent_strings_concatenate() {
        assert_eq!(
            toks(r#""a" "b""#),
            vec![Tok::Str {
                bytes: Cow::Owned(b"ab".to_vec()),
                quoted_expr: false
            }]
        );
    }

    #[test]
    fn elvis_allows_space() {
        assert_eq!(toks("a ? : b")[1], Tok::Elvis);
    }

    #[test]
    fn strtod_takes_the_longest_prefix() {
        assert_eq!(strtod_prefix(b"4x"), (4.0, 1));
        assert_eq!(strtod_prefix(b" 1e2z"), (100.0, 4));
        assert_eq!(strtod_prefix(b"x"), (0.0, 0));
        assert_eq!(strtod_prefix(b"1.").0, 1.0);
    }
}
