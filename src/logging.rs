//! The agent's log: `tracing` events, one logfmt line each on stderr.
//!
//! A line is `level=warn msg="..."`, then the fields of the spans it
//! happened in (the cycle, the action: node, site, instance), then its own
//! fields; strings are quoted, numbers and booleans bare. Under systemd
//! (stderr is the journal stream named by `$JOURNAL_STREAM`) each line
//! starts with the `<N>` syslog priority journald reads off the stream,
//! so `journalctl -u cloudburst -p warning` filters, and carries no
//! timestamp (the journal has its own); on a terminal or a file it starts
//! with `ts=` in UTC instead. We chose the prefixes over `tracing-journald`:
//! nothing more to link or to fail, and the same stream works under any
//! supervisor that reads stderr.
//!
//! Levels: `agent.log_level` in the config (reloaded with it), unless
//! `RUST_LOG` is set (`info`, or `cloudburst_core=debug,warn`), which wins.
//! Other crates' events (the AWS SDK, hyper) show from warnings up.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{reload, Registry};

use crate::config::LogLevel;

static RELOAD: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();

/// Installs the log for this process (once; later calls only set the level).
pub fn init(level: LogLevel) {
    let env = std::env::var("RUST_LOG").ok();
    let from_env = env.as_deref().and_then(|s| s.parse::<Targets>().ok());
    let (filter, handle) = reload::Layer::new(from_env.clone().unwrap_or_else(|| targets(level)));
    let journald = under_journald();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .fmt_fields(Fields)
        .event_format(Line { journald });
    let subscriber = Registry::default().with(filter).with(layer);
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = RELOAD.set(handle);
        if let (Some(text), None) = (env, from_env) {
            tracing::warn!(
                rust_log = text,
                "RUST_LOG is not a level or target list; ignored"
            );
        }
    } else {
        set_level(level);
    }
}

/// A reloaded config's level (unless `RUST_LOG` says otherwise).
pub fn set_level(level: LogLevel) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    if let Some(h) = RELOAD.get() {
        let _ = h.reload(targets(level));
    }
}

fn targets(level: LogLevel) -> Targets {
    let ours = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    Targets::new()
        .with_target("cloudburst", ours)
        .with_target("cloudburst_core", ours)
        .with_target("cloudburst_classad", ours)
        .with_default(if level == LogLevel::Error {
            LevelFilter::ERROR
        } else {
            LevelFilter::WARN
        })
}

/// Whether stderr is the journal stream systemd named in `$JOURNAL_STREAM`
/// (`device:inode`): only then does journald read the `<N>` prefixes.
fn under_journald() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat on fd 2 writes only into the struct we pass.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// The syslog priority journald files a line under.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One event as a line.
struct Line {
    journald: bool,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        if self.journald {
            write!(w, "<{}>", priority(level))?;
        } else {
            write!(w, "ts={} ", utc_now())?;
        }
        let mut fields = Visitor::default();
        event.record(&mut fields);
        write!(
            w,
            "level={} msg={:?}",
            level.as_str().to_ascii_lowercase(),
            fields.message.as_deref().unwrap_or("")
        )?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        write!(w, " {f}")?;
                    }
                }
            }
        }
        writeln!(w, "{}", fields.rest)
    }
}

/// Span fields, stored with the span as `key=value` text.
struct Fields;

impl<'w> FormatFields<'w> for Fields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut v = Visitor::default();
        fields.record(&mut v);
        write!(w, "{}", v.rest.trim_start())
    }
}

/// Collects fields as ` key=value`, the message apart.
#[derive(Default)]
struct Visitor {
    message: Option<String>,
    rest: String,
}

impl Visitor {
    fn quoted(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn bare(&mut self, field: &Field, value: &dyn fmt::Display) {
        let _ = write!(self.rest, " {}={value}", field.name());
    }
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.quoted(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.quoted(field, &format!("{value:?}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.bare(field, &value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.bare(field, &value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.bare(field, &value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.bare(field, &value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.quoted(field, &value.to_string());
    }
}

/// Now, as `2026-12-04T21:05:09.123Z`.
fn utc_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = crate::registry::civil_from_days(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn levels_cover_our_crates_and_quiet_the_rest() {
        let t = targets(LogLevel::Debug);
        assert!(t.would_enable("cloudburst::agent", &Level::DEBUG));
        assert!(t.would_enable("cloudburst_core::cycle", &Level::DEBUG));
        assert!(!t.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(t.would_enable("aws_smithy_runtime", &Level::WARN));
        let t = targets(LogLevel::Error);
        assert!(!t.would_enable("cloudburst::agent", &Level::WARN));
        assert!(!t.would_enable("hyper", &Level::WARN));
    }
}
