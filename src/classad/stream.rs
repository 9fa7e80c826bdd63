//! Streaming readers for the two ways HTCondor tools print many ads:
//! `-long` (old syntax, one `Name = expr` per line, a blank line between
//! ads) and `-json` (an array of objects) or `-jsonl` (one object a line).
//! Each yields one ad at a time, so a multi-gigabyte dump never sits in
//! memory; errors name the line and column, and the attribute.

use std::io::BufRead;

use super::ast::ClassAd;
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
pub fn parse_long_line(line: &[u8]) -> Result<(Vec<u8>, super::ast::Expr), (usize, String)> {
    let start = line.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let rest = &line[start..];
    let Some(eq) = rest.iter().position(|&c| c == b'=') else {
        return Err((start, "expected 'Name = value'".into()));
    };
    let mut name_end = eq;
    while name_end > 0 && rest[name_end - 1] == b' ' {
        name_end -= 1;
    }
    if name_end == 0 {
        return Err((start, "missing attribute name before '='".into()));
    }
    let mut v = eq + 1;
    while rest.get(v) == Some(&b' ') {
        v += 1;
    }
    match parse_expr_prefix(&rest[v..], Syntax::Old) {
        Ok(e) => Ok((rest[..name_end].to_vec(), e)),
        Err(err) => Err((start + v + err.offset, err.message)),
    }
}

/// Reads `-long` output ad by ad.
pub struct LongReader<R> {
    input: R,
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> LongReader<R> {
    pub fn new(input: R) -> LongReader<R> {
        LongReader {
            input,
            line_no: 0,
            buf: Vec::with_capacity(256),
            done: false,
        }
    }

    /// The next ad, `None` at the end of the input. Blank lines and lines
    /// starting with `#` separate or are skipped, as in HTCondor's reader.
    pub fn next_ad(&mut self) -> Option<Result<ClassAd, StreamError>> {
        if self.done {
            return None;
        }
        let mut ad = ClassAd::with_capacity(64);
        loop {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return (!ad.is_empty()).then_some(Ok(ad));
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
            }
            self.line_no += 1;
            let mut line = &self.buf[..];
            while let Some((b'\n' | b'\r', rest)) = line.split_last() {
                line = rest;
            }
            let first = line.iter().position(|&c| c != b' ' && c != b'\t');
            if line.iter().all(u8::is_ascii_whitespace) {
                if ad.is_empty() {
                    continue;
                }
                return Some(Ok(ad));
            }
            if first.is_some_and(|i| line[i] == b'#') {
                continue;
            }
            match parse_long_line(line) {
                Ok((name, e)) => ad.insert(name, e),
                Err((col, message)) => {
                    let name = line
                        .iter()
                        .position(|&c| c == b'=')
                        .map(|eq| line[..eq].trim_ascii());
                    return Some(Err(StreamError::at(self.line_no, col + 1, name, message)));
                }
            }
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
}

impl<R: BufRead> JsonReader<R> {
    pub fn new(input: R) -> JsonReader<R> {
        JsonReader {
            input,
            line_no: 1,
            obj: Vec::with_capacity(4096),
            obj_line: 1,
            done: false,
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
                        b'[' | b']' | b',' | b' ' | b'\t' | b'\r' => {}
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
                return Some(match p.json_object() {
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
            ads[1]
                .lookup("c")
                .map(crate::classad::unparse::to_text)
                .as_deref(),
            Some("A + 1")
        );
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
        assert_eq!(crate::classad::unparse::to_text(r), "TARGET.Memory >= 10");
        let lines = b"{\"A\": 1}\n{\"A\": 2}\n";
        assert_eq!(JsonReader::new(&lines[..]).count(), 2);
        assert_eq!(JsonReader::new(&b""[..]).count(), 0);
        assert!(JsonReader::new(&b"All queues are empty\n"[..])
            .next()
            .unwrap()
            .is_err());
    }
}
