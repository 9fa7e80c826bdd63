//! `cloudburst classad ...`: the engine on the command line, and the
//! JSON-lines protocol of the differential oracle (`tests/oracle/classad_oracle.py`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value as Json;

use crate::classad::ast::{ClassAd, Expr};
use crate::classad::lexer::Syntax;
use crate::classad::matching::{with_value, Matcher};
use crate::classad::parser::{parse_ad, Parser};
use crate::classad::stream::{JsonReader, LongReader, StreamError};
use crate::classad::unparse::{bytes_to_string, unparse_ad_into, write_json, write_long, Style};
use crate::classad::value::{unparse_value_into, Value};

/// One answer, in the oracle's output shape.
#[derive(Serialize, Default)]
struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Json>,
    ok: bool,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<String>,
}

/// An ad given to the oracle: new syntax `[...]`, JSON `{...}`, or old
/// syntax lines, as the oracle script reads them.
fn parse_case_ad(v: &Json) -> Result<Option<ClassAd>, String> {
    let text = match v {
        Json::Null => return Ok(None),
        Json::String(s) => s.trim(),
        other => return Err(format!("unsupported ad value {other}")),
    };
    if text.starts_with('[') {
        return parse_ad(text.as_bytes())
            .map(Some)
            .map_err(|e| e.to_string());
    }
    let mut merged = ClassAd::new();
    if text.starts_with('{') {
        for ad in JsonReader::new(text.as_bytes()) {
            merged.update(&ad.map_err(|e| e.to_string())?);
        }
        return Ok(Some(merged));
    }
    for ad in LongReader::new(text.as_bytes()) {
        merged.update(&ad.map_err(|e| e.to_string())?);
    }
    if merged.is_empty() && !text.is_empty() {
        return Err("old-style ad parsed to nothing".into());
    }
    Ok(Some(merged))
}

/// The expression of a case, parsed exactly as the oracle parses it: as the
/// only attribute of a wrapper ad.
fn parse_case_expr(text: &str) -> Result<Expr, String> {
    const NAME: &str = "__oracle_expr__";
    let wrapped = format!("[{NAME} = {text}\n]");
    let mut ad = parse_ad(wrapped.as_bytes()).map_err(|e| e.to_string())?;
    if ad.len() != 1 {
        return Err("expression is not a single expression".into());
    }
    ad.remove(NAME.as_bytes())
        .ok_or_else(|| "expression is not a single expression".into())
}

fn answer_case(case: &Json, now: i64) -> Answer {
    let mut out = Answer {
        id: case.get("id").cloned(),
        ..Answer::default()
    };
    let op = case.get("op").and_then(Json::as_str).unwrap_or("eval");
    let my = match parse_case_ad(case.get("my").unwrap_or(&Json::Null)) {
        Ok(a) => a,
        Err(msg) => {
            out.parse_error = Some("my");
            out.msg = Some(msg);
            return out;
        }
    };
    let target = match parse_case_ad(case.get("target").unwrap_or(&Json::Null)) {
        Ok(a) => a,
        Err(msg) => {
            out.parse_error = Some("target");
            out.msg = Some(msg);
            return out;
        }
    };
    if op == "match" || op == "symmetric" {
        let my = my.unwrap_or_default();
        let target = target.unwrap_or_default();
        let m = Matcher::new(now);
        let r = if op == "match" {
            m.requirements_accept(&my, &target)
        } else {
            m.requirements_accept(&target, &my) && m.requirements_accept(&my, &target)
        };
        out.ok = true;
        out.kind = Some("boolean");
        out.value = Some(r.to_string());
        return out;
    }
    let text = case.get("expr").and_then(Json::as_str).unwrap_or("");
    let expr = match parse_case_expr(text) {
        Ok(e) => e,
        Err(msg) => {
            out.parse_error = Some("expr");
            out.msg = Some(msg);
            return out;
        }
    };
    let result = with_value(&expr, my.as_ref(), target.as_ref(), now, |r| {
        r.map(|v| {
            let mut text = Vec::new();
            unparse_value_into(v, Style::New, &mut text);
            (v.kind(), bytes_to_string(text), python_can_convert(v))
        })
    });
    match result {
        Ok((_, _, false)) => {
            out.eval_error = Some("ConversionError");
            out.msg = Some("the Python bindings cannot convert this value".into());
        }
        Ok((kind, value, true)) => {
            out.ok = true;
            out.kind = Some(kind.name());
            out.value = Some(value);
        }
        Err(_) => {
            out.eval_error = Some("ClassAdException");
            out.msg = Some("failed to evaluate expression".into());
        }
    }
    out
}

/// The protocol is defined by the official Python bindings, which convert
/// every result to a Python value: strings that are not UTF-8 and times
/// outside Python's datetime range fail there, and the oracle reports an
/// evaluation error. Lists are converted element by element (literals only).
fn python_can_convert(v: &Value<'_>) -> bool {
    fn time_ok(secs: i64) -> bool {
        (-62_135_596_800..=253_402_300_799).contains(&secs)
    }
    fn literal_ok(e: &Expr) -> bool {
        match e {
            Expr::Str(s) => std::str::from_utf8(s).is_ok(),
            Expr::AbsTime(t) => time_ok(t.secs),
            Expr::List(items) => items.iter().all(literal_ok),
            _ => true,
        }
    }
    match v {
        Value::Str(s) => std::str::from_utf8(s).is_ok(),
        Value::AbsTime(t) => time_ok(t.secs),
        Value::List(l) => l.items.iter().all(literal_ok),
        _ => true,
    }
}

/// `classad eval`: the oracle's protocol, one JSON case a line.
pub fn eval_cases(input: impl BufRead, mut output: impl Write, now: i64) -> Result<()> {
    for line in input.lines() {
        let line = line.context("reading cases")?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let answer = match serde_json::from_str::<Json>(line) {
            Ok(case) => answer_case(&case, now),
            Err(e) => Answer {
                input_error: Some(e.to_string()),
                ..Answer::default()
            },
        };
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdFormat {
    /// `Name = value` lines, a blank line between ads (`condor_q -long`)
    Long,
    /// an array of objects, or one object a line (`condor_q -json/-jsonl`)
    Json,
    /// new syntax `[ a = 1; b = 2 ]`
    New,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdOutput {
    Long,
    Json,
    New,
    /// only the number of ads
    Count,
}

/// Reads ads of one format, one at a time.
pub fn read_ads<'r>(
    input: impl BufRead + 'r,
    from: AdFormat,
) -> Box<dyn Iterator<Item = Result<ClassAd, StreamError>> + 'r> {
    match from {
        AdFormat::Long => Box::new(LongReader::new(input)),
        AdFormat::Json => Box::new(JsonReader::new(input)),
        AdFormat::New => Box::new(NewReader::new(input)),
    }
}

/// New-syntax ads, one after another (read whole: this form is not used for
/// bulk output by HTCondor tools).
struct NewReader {
    text: Vec<u8>,
    pos: usize,
    err: Option<StreamError>,
}

impl NewReader {
    fn new(mut input: impl BufRead) -> NewReader {
        let mut text = Vec::new();
        let err = input.read_to_end(&mut text).err().map(StreamError::from);
        NewReader { text, pos: 0, err }
    }
}

impl Iterator for NewReader {
    type Item = Result<ClassAd, StreamError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.err.take() {
            self.pos = self.text.len();
            return Some(Err(e));
        }
        let rest = &self.text[self.pos..];
        let skip = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
        if skip == rest.len() {
            return None;
        }
        let mut p = Parser::new(rest, Syntax::New);
        let r = p.classad_body(false);
        let used = p.offset();
        match r {
            Ok(ad) => {
                self.pos += used.max(skip + 1);
                Some(Ok(ad))
            }
            Err(e) => {
                let (line, column) =
                    crate::classad::lexer::line_col(&self.text, self.pos + e.offset);
                self.pos = self.text.len();
                Some(Err(StreamError::Syntax {
                    line,
                    column,
                    attr: None,
                    message: e.message,
                }))
            }
        }
    }
}

fn open_input(path: &Path) -> Result<Box<dyn BufRead>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufReader::new(io::stdin())));
    }
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, f)))
}

/// `classad parse`: converts or counts ads, stopping at the first error.
pub fn parse_command(path: &Path, from: AdFormat, to: AdOutput, out: impl Write) -> Result<u64> {
    let input = open_input(path)?;
    let mut out = BufWriter::new(out);
    let mut n = 0u64;
    let mut buf = Vec::with_capacity(4096);
    if to == AdOutput::Json {
        out.write_all(b"[\n")?;
    }
    for ad in read_ads(input, from) {
        let ad = ad.map_err(|e| located(path, e))?;
        buf.clear();
        match to {
            AdOutput::Long => {
                write_long(&ad, &mut buf);
                buf.push(b'\n');
            }
            AdOutput::Json => {
                // condor_q -json puts the separating comma on a line of its own.
                if n > 0 {
                    buf.extend_from_slice(b"\n,\n");
                }
                write_json(&ad, &mut buf);
            }
            AdOutput::New => {
                unparse_ad_into(&ad, Style::New, &mut buf);
                buf.push(b'\n');
            }
            AdOutput::Count => {}
        }
        out.write_all(&buf)?;
        n += 1;
    }
    match to {
        AdOutput::Json => out.write_all(b"\n]\n")?,
        AdOutput::Count => writeln!(out, "{n}")?,
        _ => {}
    }
    out.flush()?;
    Ok(n)
}

fn located(path: &Path, e: StreamError) -> anyhow::Error {
    match e {
        StreamError::Syntax {
            line,
            column,
            attr,
            message,
        } => match attr {
            Some(a) => anyhow::anyhow!(
                "{}:{line}:{column}: attribute {a}: {message}",
                path.display()
            ),
            None => anyhow::anyhow!("{}:{line}:{column}: {message}", path.display()),
        },
        StreamError::Io(e) => anyhow::Error::new(e).context(format!("reading {}", path.display())),
    }
}

/// Reads every ad of a small file (for commands that need them all).
pub fn read_all_ads(path: &Path, from: AdFormat) -> Result<Vec<ClassAd>> {
    let input = open_input(path)?;
    let ads: Result<Vec<_>, _> = read_ads(input, from).collect();
    let ads = ads.map_err(|e| located(path, e))?;
    if ads.is_empty() {
        bail!("{}: no ads", path.display());
    }
    Ok(ads)
}

/// Guesses the format of an ad file from its first non-blank byte.
pub fn sniff_format(path: &Path) -> Result<AdFormat> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 4096];
    let n = f.read(&mut head)?;
    let mut it = head[..n].iter().filter(|c| !c.is_ascii_whitespace());
    Ok(match (it.next(), it.next()) {
        (Some(b'{'), _) => AdFormat::Json,
        (Some(b'['), Some(b'{' | b']')) => AdFormat::Json,
        (Some(b'['), _) => AdFormat::New,
        _ => AdFormat::Long,
    })
}
