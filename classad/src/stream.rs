//! Streaming readers for the two ways HTCondor tools print many ads:
//! `-long` (old syntax, one `Name = expr` per line, a blank line between
//! ads) and `-json` (an array of objects) or `-jsonl` (one object a line).
//! Each yields one ad at a time, so a multi-gigabyte dump never sits in
//! memory; errors name the line and column, and the attribute.

use std::io::BufRead;

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::ast::{AdOrder, ClassAd, Expr, Name, Slot, SmallBytes};
use super::lexer::{line_col, Syntax};
use super::parser::{parse_expr_prefix, Parser};

/// A located problem in a stream of ads.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        attr: Option<String>,
        message: String,
    },
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
}

impl StreamError {
    fn at(
        line: usize,
        column: usize,
        attr: Option<&[u8]>,
        message: impl Into<String>,
    ) -> StreamError {
        StreamError::Syntax {
            line,
            column,
            attr: attr.map(|a| String::from_utf8_lossy(a).into_owned()),
            message: message.into(),
        }
    }
}

/// Parses one `Name = expr` line of old-syntax (`-long`) output. The name is
/// everything before the first `=`, as HTCondor reads it; text after a
/// complete expression is ignored, as HTCondor ignores it.
pub fn parse_long_line(line: &[u8]) -> Result<(Vec<u8>, Expr), (usize, String)> {
    let start = line.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let Some((name, value)) = split_long_line(line) else {
        let message = if memchr::memchr(b'=', line).is_none() {
            "expected 'Name = value'"
        } else {
            "missing attribute name before '='"
        };
        return Err((start, message.into()));
    };
    let value_at = line.len() - value.len();
    match parse_old_value(value) {
        Ok(e) => Ok((name.to_vec(), e)),
        Err((offset, message)) => Err((value_at + offset, message)),
    }
}

/// Parses an old-syntax value (the text after `Name = `, or after the
/// name in a `job_queue.log` line); an error is the offset and message.
pub fn parse_old_value(value: &[u8]) -> Result<Expr, (usize, String)> {
    if let Some(e) = simple_literal(value) {
        return Ok(e);
    }
    parse_expr_prefix(value, Syntax::Old).map_err(|err| (err.offset, err.message))
}

/// Splits `Name = value` as HTCondor does: the name is everything before
/// the first `=` (less surrounding blanks), the value starts after the
/// blanks that follow it.
fn split_long_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = line.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let rest = &line[start..];
    let eq = memchr::memchr(b'=', rest)?;
    let mut name_end = eq;
    while name_end > 0 && rest[name_end - 1] == b' ' {
        name_end -= 1;
    }
    if name_end == 0 {
        return None;
    }
    let mut v = eq + 1;
    while rest.get(v) == Some(&b' ') {
        v += 1;
    }
    Some((&rest[..name_end], &rest[v..]))
}

/// Most values in tool output are plain literals; these are recognised
/// without the general parser. Anything else, or anything after the
/// literal but blanks, returns `None` and takes the general path, so the
/// result is always what the parser would give.
fn simple_literal(v: &[u8]) -> Option<Expr> {
    let mut out = Slot::default();
    write_literal(v, &mut out).then(|| out.into_expr())
}

/// Stores the plain literal `v` is, if it is one ([`simple_literal`]),
/// straight into `slot`: a value built on the stack and then copied in
/// costs more than recognising it.
#[inline(always)]
fn write_literal(v: &[u8], slot: &mut Slot) -> bool {
    let Some(last) = v.iter().rposition(|c| !c.is_ascii_whitespace()) else {
        return false;
    };
    let t = &v[..=last];
    match t[0] {
        b'"' => {
            if t.len() < 2 || t[t.len() - 1] != b'"' {
                return false;
            }
            let body = &t[1..t.len() - 1];
            if memchr::memchr3(b'"', b'\\', 0, body).is_some() {
                return false;
            }
            *slot = Slot::Inline(Expr::Str(SmallBytes::new(body)));
            true
        }
        b'-' | b'0'..=b'9' => {
            let digits = t.strip_prefix(b"-").unwrap_or(t);
            let (int_part, frac) = match digits.iter().position(|&c| c == b'.') {
                Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
                None => (digits, None),
            };
            if int_part.is_empty() || !int_part.iter().all(u8::is_ascii_digit) {
                return false;
            }
            match frac {
                None => {
                    // Leading zeros, and values near the i64 limits, have
                    // quirks: leave them to the lexer.
                    if (int_part[0] == b'0' && int_part.len() > 1) || int_part.len() > 18 {
                        return false;
                    }
                    let mut n: i64 = 0;
                    for &d in int_part {
                        n = n * 10 + i64::from(d - b'0');
                    }
                    *slot = Slot::Inline(Expr::Int(if t[0] == b'-' { -n } else { n }));
                    true
                }
                Some(f) => {
                    if f.is_empty() || !f.iter().all(u8::is_ascii_digit) {
                        return false;
                    }
                    match std::str::from_utf8(t).ok().and_then(|t| t.parse().ok()) {
                        Some(r) => {
                            *slot = Slot::Inline(Expr::Real(r));
                            true
                        }
                        None => false,
                    }
                }
            }
        }
        _ => {
            if t.eq_ignore_ascii_case(b"true") {
                *slot = Slot::Inline(Expr::Bool(true));
            } else if t.eq_ignore_ascii_case(b"false") {
                *slot = Slot::Inline(Expr::Bool(false));
            } else if t.eq_ignore_ascii_case(b"undefined") {
                *slot = Slot::Inline(Expr::Undefined);
            } else {
                return false;
            }
            true
        }
    }
}

/// Reads `-long` output ad by ad.
pub struct LongReader<R> {
    input: R,
    state: LongState,
}

/// What a `-long` reader keeps between ads. Its methods take the input as
/// `&mut dyn BufRead`, so the parser is compiled once, here, with this
/// crate's inlining, whatever reader a caller instantiates `LongReader` with.
struct LongState {
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
    ad: AdBuilder,
    cache: LineCache,
    /// Orderings of recently seen name sequences (see `finish`).
    orders: FxHashMap<u64, KnownOrder>,
}

/// The names of an ad as read, and the order the ad keeps them in
/// (`None` if a name repeats).
type KnownOrder = (Vec<Name>, Option<Arc<AdOrder>>);

/// Parsed attribute lines by their text. Tool output repeats whole lines
/// from ad to ad (owners, commands, requirements), so each distinct line is
/// parsed once and its name and value shared, as HTCondor's own expression
/// cache does. Bounded: when full it starts over.
struct LineCache {
    lines: FxHashMap<Box<[u8]>, (Name, Slot)>,
    /// Interned names by a hash of a few of their bytes.
    recent: Vec<Option<&'static [u8]>>,
    bytes: usize,
}

impl Default for LineCache {
    fn default() -> LineCache {
        LineCache {
            lines: FxHashMap::default(),
            recent: vec![None; 4096],
            bytes: 0,
        }
    }
}

impl LineCache {
    const MAX_BYTES: usize = 16 << 20;
    const MAX_LINE: usize = 4096;

    /// Stores the process-wide copy of `name` in `out`.
    #[inline(always)]
    fn intern_into(&mut self, name: &[u8], out: &mut Name) {
        // A direct-mapped front: names differ in length or a few bytes.
        let byte = |i: usize| u32::from(name.get(i).copied().unwrap_or(0));
        let key = (name.len() as u32) << 24
            | byte(0) << 16
            | byte(name.len() / 2) << 8
            | byte(name.len().wrapping_sub(1));
        let slot = (key.wrapping_mul(0x9E37_79B1) >> 20) as usize % self.recent.len();
        match self.recent[slot] {
            Some(s) if s == name => *out = Name::from_interned(s),
            _ => self.intern_slow(name, slot, out),
        }
    }

    #[inline(never)]
    fn intern_slow(&mut self, name: &[u8], slot: usize, out: &mut Name) {
        let n = Name::interned(name);
        if let Some(s) = n.as_interned() {
            self.recent[slot] = Some(s);
        }
        *out = n;
    }

    fn intern(&mut self, name: &[u8]) -> Name {
        let mut n = Name::default();
        self.intern_into(name, &mut n);
        n
    }

    /// Adds the attribute on `line` (a complete `Name = value` line). Plain
    /// literals are cheaper to read than to look up; only lines that need
    /// the expression parser go through the cache.
    fn parse_into(&mut self, line: &[u8], ad: &mut AdBuilder) -> Result<(), (usize, String)> {
        if let Some((name, value)) = split_long_line(line) {
            let (n, v) = ad.next();
            if write_literal(value, v) {
                self.intern_into(name, n);
                ad.commit();
                return Ok(());
            }
        }
        if let Some((name, e)) = self.lines.get(line) {
            let (n, v) = ad.next();
            *n = name.clone();
            *v = e.clone();
            ad.commit();
            return Ok(());
        }
        let (name, expr) = parse_long_line(line)?;
        let name = self.intern(&name);
        let expr = Slot::new(expr);
        if line.len() <= Self::MAX_LINE {
            if self.bytes > Self::MAX_BYTES {
                self.lines.clear();
                self.bytes = 0;
            }
            self.bytes += line.len() + 64;
            self.lines.insert(line.into(), (name.clone(), expr.clone()));
        }
        let (n, v) = ad.next();
        *n = name;
        *v = expr;
        ad.commit();
        Ok(())
    }
}

/// The ad being read: its first `len` names and values, bound pairwise,
/// in two columns kept from ad to ad (places past `len` hold defaults).
/// Each value is stored straight into its place: a pair built on the stack
/// and then copied in costs more than the rest of reading a literal.
#[derive(Default)]
struct AdBuilder {
    len: usize,
    names: Vec<Name>,
    slots: Vec<Slot>,
}

impl AdBuilder {
    fn start(&mut self) {
        self.len = 0;
    }

    /// Where the next attribute goes; [`AdBuilder::commit`] once stored.
    #[inline(always)]
    fn next(&mut self) -> (&mut Name, &mut Slot) {
        let i = self.len;
        if i == self.names.len() {
            self.names.push(Name::default());
        }
        if i == self.slots.len() {
            self.slots.push(Slot::default());
        }
        (&mut self.names[i], &mut self.slots[i])
    }

    /// The attribute [`AdBuilder::next`] placed is stored.
    #[inline(always)]
    fn commit(&mut self) {
        self.len += 1;
    }

    /// The ad read. Ads in one dump mostly carry one of a few sets of
    /// names, in the same order: the ordering found for an earlier ad with
    /// the same (interned) names is reused.
    fn finish(&mut self, orders: &mut FxHashMap<u64, KnownOrder>) -> ClassAd {
        use std::hash::{Hash, Hasher};
        let len = std::mem::take(&mut self.len);
        let mut h = rustc_hash::FxHasher::default();
        for n in &self.names[..len] {
            (n.as_ptr() as usize).hash(&mut h);
        }
        let key = h.finish();
        let names = &self.names[..len];
        let known = orders.get(&key).filter(|(seen, _)| {
            seen.len() == names.len() && seen.iter().zip(names).all(|(a, b)| a.same_copy(b))
        });
        let order = match known {
            Some((_, order)) => order.clone(),
            None => {
                let order = ClassAd::sort_order(names).map(Arc::new);
                if orders.len() >= 64 {
                    orders.clear();
                }
                orders.insert(key, (names.to_vec(), order.clone()));
                order
            }
        };
        let (names, slots) = (&mut self.names[..len], &mut self.slots[..len]);
        match order {
            Some(order) => ClassAd::from_columns(names, slots, &order),
            None => ClassAd::from_pairs(
                names
                    .iter_mut()
                    .zip(slots)
                    .map(|(n, s)| (std::mem::take(n), std::mem::take(s)))
                    .collect(),
            ),
        }
    }
}

/// Hands the next line (without its newline) to `f`, straight from the
/// reader's buffer when it lies within it.
fn read_line<T>(
    input: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    f: impl FnOnce(&[u8]) -> T,
) -> std::io::Result<Option<T>> {
    buf.clear();
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            return Ok(Some(f(buf)));
        }
        if let Some(i) = memchr::memchr(b'\n', chunk) {
            let r = if buf.is_empty() {
                f(&chunk[..i])
            } else {
                buf.extend_from_slice(&chunk[..i]);
                f(buf)
            };
            input.consume(i + 1);
            return Ok(Some(r));
        }
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        input.consume(n);
    }
}

impl<R: BufRead> LongReader<R> {
    pub fn new(input: R) -> LongReader<R> {
        LongReader {
            input,
            state: LongState {
                line_no: 0,
                buf: Vec::with_capacity(256),
                done: false,
                ad: AdBuilder::default(),
                cache: LineCache::default(),
                orders: FxHashMap::default(),
            },
        }
    }

    /// Reads the next ad from a new input, keeping what this reader has
    /// learnt (names, repeated lines): for callers that hold ads one text
    /// at a time.
    pub fn next_from(&mut self, input: R) -> Option<Result<ClassAd, StreamError>> {
        self.input = input;
        self.state.buf.clear();
        self.state.done = false;
        self.next_ad()
    }

    /// The next ad, `None` at the end of the input. Blank lines and lines
    /// starting with `#` separate or are skipped, as in HTCondor's reader.
    pub fn next_ad(&mut self) -> Option<Result<ClassAd, StreamError>> {
        self.state.next_ad(&mut self.input)
    }
}

impl LongState {
    fn finish(&mut self) -> ClassAd {
        self.ad.finish(&mut self.orders)
    }

    fn next_ad(&mut self, input: &mut dyn BufRead) -> Option<Result<ClassAd, StreamError>> {
        if self.done {
            return None;
        }
        // Collected first and sorted once: -long output is in name order,
        // which is not the order ads keep.
        self.ad.start();
        loop {
            // Whole lines already in the reader's buffer are read in one
            // pass over it; a line the buffer cuts, and the end of the
            // input, take the line-at-a-time path below.
            let chunk = match input.fill_buf() {
                Ok(c) => c,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            let mut used = 0;
            let mut ended = None;
            for nl in memchr::memchr_iter(b'\n', chunk) {
                let line = &chunk[used..nl];
                used = nl + 1;
                self.line_no += 1;
                match classify(line, &mut self.cache, &mut self.ad) {
                    Line::Comment | Line::Attr => {}
                    Line::Blank if self.ad.len == 0 => {}
                    other => {
                        ended = Some(other);
                        break;
                    }
                }
            }
            input.consume(used);
            if let Some(line) = ended {
                return Some(self.end_ad(line));
            }
            let (cache, ad) = (&mut self.cache, &mut self.ad);
            let line = match read_line(input, &mut self.buf, |line| classify(line, cache, ad)) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    self.done = true;
                    return (self.ad.len > 0).then(|| Ok(self.finish()));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            };
            self.line_no += 1;
            match line {
                Line::Comment | Line::Attr => {}
                Line::Blank if self.ad.len == 0 => {}
                other => return Some(self.end_ad(other)),
            }
        }
    }

    /// The ad that a blank line ends, or the error on a bad line.
    fn end_ad(&mut self, line: Line) -> Result<ClassAd, StreamError> {
        match line {
            Line::Bad(bad) => {
                let (col, message, name) = *bad;
                Err(StreamError::at(
                    self.line_no,
                    col + 1,
                    name.as_deref(),
                    message,
                ))
            }
            _ => Ok(self.finish()),
        }
    }
}

/// What a line of `-long` output was; an attribute goes straight into the ad.
enum Line {
    Blank,
    Comment,
    Attr,
    Bad(Box<(usize, String, Option<Vec<u8>>)>),
}

/// Reads one line (without its newline). Blank lines and lines starting
/// with `#` separate or are skipped, as in HTCondor's reader.
fn classify(mut line: &[u8], cache: &mut LineCache, ad: &mut AdBuilder) -> Line {
    if let Some((b'\r', rest)) = line.split_last() {
        line = rest;
    }
    let first = match line.first() {
        Some(c) if c.is_ascii_alphabetic() => 0,
        _ => match line.iter().position(|&c| c != b' ' && c != b'\t') {
            Some(f) => f,
            None => return Line::Blank,
        },
    };
    if line[first] == b'#' {
        return Line::Comment;
    }
    if line[first].is_ascii_whitespace() && line[first..].iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match cache.parse_into(line, ad) {
        Ok(()) => Line::Attr,
        Err((col, message)) => {
            let name = memchr::memchr(b'=', line).map(|eq| line[..eq].trim_ascii().to_vec());
            Line::Bad(Box::new((col, message, name)))
        }
    }
}

impl<R: BufRead> Iterator for LongReader<R> {
    type Item = Result<ClassAd, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ad()
    }
}

/// Reads `-json` (one array) or `-jsonl` (one object a line) output ad by
/// ad, finding each top-level object by its braces before parsing it.
pub struct JsonReader<R> {
    input: R,
    line_no: usize,
    obj: Vec<u8>,
    obj_line: usize,
    done: bool,
    /// Inside `-json`'s `[ ... ]`: input that ends before the `]` was cut
    /// short, and is an error rather than a shorter list.
    in_array: bool,
    cache: super::parser::ExprCache,
}

impl<R: BufRead> JsonReader<R> {
    pub fn new(input: R) -> JsonReader<R> {
        JsonReader {
            input,
            line_no: 1,
            obj: Vec::with_capacity(4096),
            obj_line: 1,
            done: false,
            in_array: false,
            cache: Default::default(),
        }
    }

    fn fail(&mut self, err: StreamError) -> Option<Result<ClassAd, StreamError>> {
        self.done = true;
        Some(Err(err))
    }

    pub fn next_ad(&mut self) -> Option<Result<ClassAd, StreamError>> {
        if self.done {
            return None;
        }
        self.obj.clear();
        let mut depth = 0usize;
        let mut in_str = false;
        let mut escaped = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) => return self.fail(e.into()),
            };
            if chunk.is_empty() {
                self.done = true;
                if depth == 0 && self.in_array {
                    return Some(Err(StreamError::at(
                        self.line_no,
                        1,
                        None,
                        "input ended before the closing ']'",
                    )));
                }
                if depth > 0 {
                    return Some(Err(StreamError::at(
                        self.obj_line,
                        1,
                        None,
                        "input ended inside a JSON object",
                    )));
                }
                return None;
            }
            let mut used = 0;
            let mut complete = false;
            let mut stray = None;
            for (i, &c) in chunk.iter().enumerate() {
                used = i + 1;
                if depth == 0 {
                    match c {
                        b'{' => {
                            depth = 1;
                            self.obj_line = self.line_no;
                            self.obj.push(c);
                        }
                        b'\n' => self.line_no += 1,
                        b'[' => self.in_array = true,
                        b']' => self.in_array = false,
                        b',' | b' ' | b'\t' | b'\r' => {}
                        other => {
                            stray = Some(other);
                            break;
                        }
                    }
                    continue;
                }
                self.obj.push(c);
                if c == b'\n' {
                    self.line_no += 1;
                }
                if in_str {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == b'"' {
                        in_str = false;
                    }
                } else if c == b'"' {
                    in_str = true;
                } else if c == b'{' || c == b'[' {
                    depth += 1;
                } else if c == b'}' || c == b']' {
                    depth -= 1;
                    if depth == 0 {
                        complete = true;
                        break;
                    }
                }
            }
            self.input.consume(used);
            if let Some(c) = stray {
                let line = self.line_no;
                return self.fail(StreamError::at(
                    line,
                    1,
                    None,
                    format!(
                        "expected a JSON object, found '{}'",
                        char::from(c).escape_default()
                    ),
                ));
            }
            if complete {
                let mut p = Parser::new(&self.obj, Syntax::Json);
                return Some(match p.json_object_with(Some(&mut self.cache)) {
                    Ok(ad) => Ok(ad),
                    Err(e) => {
                        let (l, c) = line_col(&self.obj, e.offset);
                        let attr = attr_before(&self.obj, e.offset);
                        Err(StreamError::at(
                            self.obj_line + l - 1,
                            c,
                            attr.as_deref(),
                            e.message,
                        ))
                    }
                });
            }
        }
    }
}

/// The JSON key nearest before `offset`, to name the attribute in errors.
fn attr_before(obj: &[u8], offset: usize) -> Option<Vec<u8>> {
    let upto = &obj[..offset.min(obj.len())];
    let colon = upto.iter().rposition(|&c| c == b':')?;
    let end = upto[..colon].iter().rposition(|&c| c == b'"')?;
    let start = upto[..end].iter().rposition(|&c| c == b'"')?;
    Some(upto[start + 1..end].to_vec())
}

impl<R: BufRead> Iterator for JsonReader<R> {
    type Item = Result<ClassAd, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ad()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ads_split_on_blank_lines() {
        let text = b"A = 1\nB = \"x\"\n\n# comment\nC = A + 1\n";
        let ads: Vec<_> = LongReader::new(&text[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ads.len(), 2);
        assert_eq!(
            ads[1].lookup("c").map(crate::unparse::to_text).as_deref(),
            Some("A + 1")
        );
    }

    /// What a reader gives, ad by ad: the text of each ad, or the error.
    fn read_all(input: impl BufRead) -> Vec<Result<String, String>> {
        LongReader::new(input)
            .map(|r| {
                r.map(|ad| {
                    let mut out = Vec::new();
                    crate::unparse::write_long(&ad, &mut out);
                    String::from_utf8_lossy(&out).into_owned()
                })
                .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn every_buffer_size_reads_the_same_ads_and_errors() {
        // Lines the reader's buffer cuts take the line-at-a-time path;
        // whole lines in the buffer, the one-pass path. Both must agree,
        // on ads that repeat names (the known-order path), ads that do
        // not, CRLF, comments, blank lines of blanks, a repeated name, a
        // bad line and a last line with no newline.
        let text = b"B = 2\nA = \"x\"\nReq = (A == \"x\") && (B > 1)\n\n\
                     B = 3\nA = \"y\"\nReq = (A == \"x\") && (B > 1)\n   \n\
                     # a comment\r\nZ = 1\r\nz = 2\r\n\t\n\
                     C = 1.5\nBad = (1 +\nD = true\n\nE = UNDEFINED";
        let whole = read_all(&text[..]);
        // After a bad line, reading goes on with the next line.
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert!(whole[0]
            .as_ref()
            .unwrap()
            .contains("Req = (A == \"x\") && (B > 1)"));
        // The first spelling, the last value, as libclassad keeps them.
        assert_eq!(whole[2].as_deref(), Ok("Z = 2\n"));
        let bad = whole[3].as_ref().unwrap_err();
        assert!(bad.starts_with("line 14,"), "{bad}");
        for cap in 1..=text.len() + 1 {
            let r = std::io::BufReader::with_capacity(cap, &text[..]);
            assert_eq!(read_all(r), whole, "buffer of {cap} bytes");
        }
    }

    #[test]
    fn long_errors_name_line_and_attribute() {
        let text = b"A = 1\nBad = (1 +\n";
        let err = LongReader::new(&text[..]).next().unwrap().unwrap_err();
        let StreamError::Syntax { line, attr, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(line, 2);
        assert_eq!(attr.as_deref(), Some("Bad"));
    }

    #[test]
    fn json_array_and_lines() {
        let text = br#"[
{ "A": 1, "R": "\/Expr(TARGET.Memory >= 10)\/", "N": null },
{ "A": 2 }
]
"#;
        let ads: Vec<_> = JsonReader::new(&text[..])
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ads.len(), 2);
        let r = ads[0].lookup("R").unwrap();
        assert_eq!(crate::unparse::to_text(r), "TARGET.Memory >= 10");
        let cut = b"[\n{ \"A\": 1 }\n,\n";
        let mut r = JsonReader::new(&cut[..]);
        assert!(r.next().unwrap().is_ok());
        let err = r.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("before the closing ']'"), "{err}");
        let lines = b"{\"A\": 1}\n{\"A\": 2}\n";
        assert_eq!(JsonReader::new(&lines[..]).count(), 2);
        assert_eq!(JsonReader::new(&b""[..]).count(), 0);
        assert!(JsonReader::new(&b"All queues are empty\n"[..])
            .next()
            .unwrap()
            .is_err());
    }
}
