//! The registry: what cloudburst has launched, in an embedded SQLite
//! database (WAL, synchronous writes, mode 0600), so that limits are
//! counted from disk rather than memory and a crash loses nothing.
//!
//! Tables: `nodes` (current state of every node), `events` (append-only:
//! every transition with its time and reason), `intents` (the journal: an
//! intent is committed before a cloud or condor call and its result after;
//! an intent without a result is what a crash interrupted, and is resolved
//! by reconciliation, which finds a launch by its token), `backoff` (per
//! site and flavour). Migrations are numbered by `PRAGMA user_version`.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use thiserror::Error;

use crate::lifecycle::{DrainCause, Node, State, Transition};

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("registry {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("registry {path}: {message}")]
    Other { path: String, message: String },
    /// The file is not a registry SQLite can read, or fails its integrity
    /// check: nothing in it can be trusted.
    #[error("registry {path} is damaged: {message}")]
    Damaged { path: String, message: String },
}

type Result<T> = std::result::Result<T, RegistryError>;

mod store;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        flavor TEXT NOT NULL,
        grp TEXT,
        token TEXT NOT NULL UNIQUE,
        instance_id TEXT,
        state TEXT NOT NULL,
        since INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_busy INTEGER,
        startd TEXT,
        drain_cause TEXT,
        price_per_hour REAL NOT NULL,
        spot INTEGER NOT NULL,
        ended_at INTEGER
     );
     CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        at INTEGER NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL
     );
     CREATE INDEX events_node ON events(node);
     CREATE TABLE intents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        node TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT
     );
     CREATE TABLE backoff (
        site TEXT NOT NULL,
        flavor TEXT NOT NULL,
        failures INTEGER NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (site, flavor)
     );
     CREATE TABLE sequence (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    // 2: cycles read live nodes and the month's spend without scanning
    // every node that ever existed.
    "CREATE INDEX nodes_live ON nodes(created_at, id) WHERE state <> 'gone';
     CREATE TABLE spend_closed (month INTEGER PRIMARY KEY, total REAL NOT NULL);
     INSERT INTO spend_closed (month, total)
        SELECT m, SUM(price_per_hour * MAX(0, ended_at - MAX(created_at, m)) / 3600.0)
        FROM (SELECT *, CAST(strftime('%s', ended_at, 'unixepoch', 'start of month') AS INTEGER) AS m
              FROM nodes WHERE state = 'gone' AND ended_at IS NOT NULL)
        GROUP BY m;",
    // 3: whether this registry has been checked against the clouds (a
    // registry that never was may be a replacement for a lost one).
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 4: an admin's drain request in its own column (no transition clears
    // it), terminate re-sends, and sites paused for a refused credential.
    "ALTER TABLE nodes ADD COLUMN admin_drain INTEGER;
     ALTER TABLE nodes ADD COLUMN terminate_attempts INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE nodes ADD COLUMN terminate_last INTEGER;
     UPDATE nodes SET admin_drain = since WHERE drain_cause = 'admin';
     UPDATE nodes SET terminate_attempts = 1, terminate_last = since WHERE state = 'terminating';
     CREATE TABLE site_pause (
        site TEXT PRIMARY KEY,
        until INTEGER NOT NULL,
        reason TEXT NOT NULL
     );",
];

/// SQLite's "not a database" and "malformed" mean the file is damaged.
fn classify(path: &str, source: rusqlite::Error) -> RegistryError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match source.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => RegistryError::Damaged {
            path: path.to_string(),
            message: source.to_string(),
        },
        _ => RegistryError::Sql {
            path: path.to_string(),
            source,
        },
    }
}

/// A journaled intent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intent {
    pub id: i64,
    pub node: String,
    pub kind: String,
    pub detail: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: Option<String>,
}

/// One recorded transition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub node: String,
    pub at: i64,
    pub from: Option<String>,
    pub to: String,
    pub reason: String,
}

pub struct Registry {
    conn: Connection,
    path: String,
}

fn cause_name(c: DrainCause) -> &'static str {
    match c {
        DrainCause::Idle => "idle",
        DrainCause::Lifetime => "lifetime",
        DrainCause::Admin => "admin",
    }
}

fn cause_parse(s: &str) -> Option<DrainCause> {
    match s {
        "idle" => Some(DrainCause::Idle),
        "lifetime" => Some(DrainCause::Lifetime),
        "admin" => Some(DrainCause::Admin),
        _ => None,
    }
}

/// The columns of `nodes`, in the order `node_from_row` reads them.
const NODE_COLUMNS: &str = "id, site, flavor, grp, token, instance_id, state, since, created_at, \
    last_busy, startd, drain_cause, price_per_hour, spot, ended_at, admin_drain, \
    terminate_attempts, terminate_last";

fn node_from_row(r: &Row<'_>) -> rusqlite::Result<Node> {
    let state: String = r.get(6)?;
    let cause: Option<String> = r.get(11)?;
    Ok(Node {
        id: r.get(0)?,
        site: r.get(1)?,
        flavor: r.get(2)?,
        group: r.get(3)?,
        token: r.get(4)?,
        instance_id: r.get(5)?,
        state: State::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                format!("unknown node state {state:?}").into(),
            )
        })?,
        since: r.get(7)?,
        created_at: r.get(8)?,
        last_busy: r.get(9)?,
        startd: r.get(10)?,
        drain_cause: cause.as_deref().and_then(cause_parse),
        admin_drain: r.get(15)?,
        terminate_attempts: r.get(16)?,
        terminate_last: r.get(17)?,
        price_per_hour: r.get(12)?,
        spot: r.get::<_, i64>(13)? != 0,
        ended_at: r.get(14)?,
    })
}

/// Puts the file in WAL mode. Two processes switching a fresh file at
/// once: the loser gets SQLITE_BUSY without the busy handler being
/// asked, so it waits here (up to 10 s) and finds the file switched.
fn wal(c: &Connection) -> rusqlite::Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Registry {
    /// Opens (creating, mode 0600) the registry at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Registry> {
        let shown = path.display().to_string();
        let other = |message: String| RegistryError::Other {
            path: shown.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| other(format!("creating its directory: {e}")))?;
        }
        // Create it private before SQLite opens it; WAL and SHM files
        // inherit the mode of the database.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| other(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|source| classify(&shown, source))?;
        Registry::setup(conn, shown, true)
    }

    /// A registry in memory (tests and the simulator).
    pub fn in_memory() -> Result<Registry> {
        let conn = Connection::open_in_memory().map_err(|source| RegistryError::Sql {
            path: ":memory:".into(),
            source,
        })?;
        Registry::setup(conn, ":memory:".into(), false)
    }

    fn setup(conn: Connection, path: String, durable: bool) -> Result<Registry> {
        let mut r = Registry { conn, path };
        if durable {
            // The busy timeout first: another process (the agent and a
            // `cloudburst nodes` started together) may be setting up the
            // same file.
            r.sql(|c| {
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                wal(c)?;
                c.pragma_update(None, "synchronous", "FULL")
            })?;
        }
        if durable {
            r.check_integrity()?;
        }
        r.migrate()?;
        Ok(r)
    }

    /// SQLite's `quick_check`; a file that is not a database at all fails
    /// at its first read, here too.
    fn check_integrity(&mut self) -> Result<()> {
        let damaged = |e: String| RegistryError::Damaged {
            path: self.path.clone(),
            message: e,
        };
        let rows: Vec<String> = {
            let mut q = self
                .conn
                .prepare("PRAGMA quick_check")
                .map_err(|e| damaged(e.to_string()))?;
            let rows = q
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| damaged(e.to_string()))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| damaged(e.to_string()))?
        };
        if rows != ["ok"] {
            return Err(damaged(rows.join("; ")));
        }
        Ok(())
    }

    /// Whether an agent has compared this registry with every site's
    /// inventory (see `agent::verify_registry`).
    pub fn verified(&mut self) -> Result<bool> {
        self.sql(|c| {
            c.query_row("SELECT 1 FROM meta WHERE key = 'verified'", [], |_| Ok(()))
                .optional()
        })
        .map(|r| r.is_some())
    }

    pub fn set_verified(&mut self, now: i64) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('verified', ?1)",
                params![now.to_string()],
            )
        })
        .map(|_| ())
    }

    fn sql<T>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&mut self.conn).map_err(|source| classify(&self.path, source))
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self.sql(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))?;
        if version as usize > MIGRATIONS.len() {
            return Err(RegistryError::Other {
                path: self.path.clone(),
                message: format!(
                    "schema version {version} is newer than this cloudburst knows ({}); refusing to touch it",
                    MIGRATIONS.len()
                ),
            });
        }
        // Each step re-reads the version under the write lock (an
        // IMMEDIATE transaction): another process may have migrated the
        // file since we looked.
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            self.sql(|c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                if now as usize <= i {
                    tx.execute_batch(m)?;
                    tx.pragma_update(None, "user_version", (i + 1) as i64)?;
                }
                tx.commit()
            })?;
        }
        Ok(())
    }

    /// Every node, oldest first (gone ones included, for accounting).
    pub fn nodes(&mut self) -> Result<Vec<Node>> {
        self.select("1")
    }

    /// Nodes that are not gone: what limits count and cycles act on.
    pub fn live_nodes(&mut self) -> Result<Vec<Node>> {
        self.select("state <> 'gone'")
    }

    fn select(&mut self, cond: &str) -> Result<Vec<Node>> {
        let q = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE {cond} ORDER BY created_at, id");
        self.sql(|c| {
            let mut st = c.prepare_cached(&q)?;
            let rows = st.query_map([], node_from_row)?;
            rows.collect()
        })
    }

    pub fn node(&mut self, id: &str) -> Result<Option<Node>> {
        let q = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1");
        self.sql(|c| {
            c.prepare_cached(&q)?
                .query_row([id], node_from_row)
                .optional()
        })
    }

    /// Spend since the start of the month containing `now`: the closed
    /// total of nodes gone this month plus what live nodes cost so far.
    pub fn month_spend(&mut self, now: i64) -> Result<f64> {
        let from = month_start(now);
        self.sql(|c| {
            let closed: f64 = c
                .prepare_cached("SELECT COALESCE((SELECT total FROM spend_closed WHERE month = ?1), 0.0)")?
                .query_row([from], |r| r.get(0))?;
            let live: f64 = c
                .prepare_cached(
                    "SELECT COALESCE(SUM(price_per_hour * MAX(0, ?2 - MAX(created_at, ?1)) / 3600.0), 0.0)
                     FROM nodes WHERE state <> 'gone'",
                )?
                .query_row(params![from, now], |r| r.get(0))?;
            Ok(closed + live)
        })
    }

    /// A new node id `<pool>-<n>`, never reused within this registry.
    pub fn next_node_id(&mut self, pool: &str) -> Result<String> {
        let n: i64 = self.sql(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sequence(name, value) VALUES ('node', 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1",
                [],
            )?;
            let mut v: i64 =
                tx.query_row("SELECT value FROM sequence WHERE name = 'node'", [], |r| {
                    r.get(0)
                })?;
            // A rebuilt registry adopts nodes under the ids their tags
            // carry; the sequence steps over them.
            while tx
                .query_row(
                    "SELECT 1 FROM nodes WHERE id = ?1",
                    params![format!("{pool}-{v:06}")],
                    |_| Ok(()),
                )
                .optional()?
                .is_some()
            {
                v += 1;
            }
            tx.execute(
                "UPDATE sequence SET value = ?1 WHERE name = 'node'",
                params![v],
            )?;
            tx.commit()?;
            Ok(v)
        })?;
        Ok(format!("{pool}-{n:06}"))
    }

    fn insert(tx: &rusqlite::Transaction<'_>, n: &Node, reason: &str) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO nodes (id, site, flavor, grp, token, instance_id, state, since, created_at,
                last_busy, startd, drain_cause, price_per_hour, spot, ended_at, admin_drain,
                terminate_attempts, terminate_last)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                n.id,
                n.site,
                n.flavor,
                n.group,
                n.token,
                n.instance_id,
                n.state.name(),
                n.since,
                n.created_at,
                n.last_busy,
                n.startd,
                n.drain_cause.map(cause_name),
                n.price_per_hour,
                n.spot as i64,
                n.ended_at,
                n.admin_drain,
                n.terminate_attempts,
                n.terminate_last
            ],
        )?;
        tx.execute(
            "INSERT INTO events (node, at, from_state, to_state, reason) VALUES (?1, ?2, NULL, ?3, ?4)",
            params![n.id, n.since, n.state.name(), reason],
        )?;
        Ok(())
    }

    /// Records a node we are about to launch together with its launch
    /// intent, in one transaction, before the cloud is called. Returns the
    /// intent's id.
    pub fn record_launch(&mut self, n: &Node, detail: &str) -> Result<i64> {
        self.sql(|c| {
            let tx = c.transaction()?;
            Registry::insert(&tx, n, "launch requested")?;
            tx.execute(
                "INSERT INTO intents (node, kind, detail, started_at) VALUES (?1, 'launch', ?2, ?3)",
                params![n.id, detail, n.since],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(id)
        })
    }

    /// Adds nodes found in the cloud that the registry did not know.
    pub fn adopt(&mut self, nodes: &[Node]) -> Result<()> {
        self.sql(|c| {
            let tx = c.transaction()?;
            for n in nodes {
                Registry::insert(&tx, n, "adopted: carries our tags, unknown to the registry")?;
            }
            tx.commit()
        })
    }

    /// Journals an intent (drain, cancel, terminate) before its call.
    pub fn begin_intent(&mut self, node: &str, kind: &str, detail: &str, now: i64) -> Result<i64> {
        self.sql(|c| {
            c.execute(
                "INSERT INTO intents (node, kind, detail, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![node, kind, detail, now],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn finish_intent(&mut self, id: i64, outcome: &str, now: i64) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "UPDATE intents SET finished_at = ?2, outcome = ?3 WHERE id = ?1",
                params![id, now, outcome],
            )
            .map(|_| ())
        })
    }

    /// Intents a crash interrupted.
    pub fn unfinished_intents(&mut self) -> Result<Vec<Intent>> {
        self.intents_where("finished_at IS NULL")
    }

    pub fn intents(&mut self) -> Result<Vec<Intent>> {
        self.intents_where("1")
    }

    fn intents_where(&mut self, cond: &str) -> Result<Vec<Intent>> {
        let q = format!("SELECT * FROM intents WHERE {cond} ORDER BY id");
        self.sql(|c| {
            let mut st = c.prepare(&q)?;
            let rows = st.query_map([], |r| {
                Ok(Intent {
                    id: r.get("id")?,
                    node: r.get("node")?,
                    kind: r.get("kind")?,
                    detail: r.get("detail")?,
                    started_at: r.get("started_at")?,
                    finished_at: r.get("finished_at")?,
                    outcome: r.get("outcome")?,
                })
            })?;
            rows.collect()
        })
    }

    /// Applies transitions (each with its event) in one transaction.
    /// A transition whose `from` no longer matches is skipped: the node
    /// moved on since it was computed.
    pub fn apply(&mut self, transitions: &[Transition]) -> Result<usize> {
        self.sql(|c| {
            let tx = c.transaction()?;
            let mut applied = 0;
            for t in transitions {
                let changed = tx
                    .prepare_cached(
                        "UPDATE nodes SET
                        state = ?3,
                        since = CASE WHEN state = ?3 THEN since ELSE ?4 END,
                        instance_id = COALESCE(?5, instance_id),
                        startd = COALESCE(?6, startd),
                        last_busy = COALESCE(?7, last_busy),
                        ended_at = CASE WHEN ?3 = 'gone' THEN ?4 ELSE ended_at END,
                        drain_cause = CASE WHEN ?8 THEN drain_cause ELSE NULL END
                     WHERE id = ?1 AND state = ?2",
                    )?
                    .execute(params![
                        t.node,
                        t.from.name(),
                        t.to.name(),
                        t.at,
                        t.instance_id,
                        t.startd,
                        t.busy_at,
                        crate::lifecycle::carries_drain_cause(t.to)
                    ])?;
                if changed != 1 {
                    continue;
                }
                applied += 1;
                if t.from != t.to {
                    tx.prepare_cached(
                        "INSERT INTO events (node, at, from_state, to_state, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![t.node, t.at, t.from.name(), t.to.name(), t.reason])?;
                }
                if t.to == State::Gone {
                    // Its cost this month is final: keep the month's total
                    // so that cycles need not sum every node ever run.
                    let month = month_start(t.at);
                    tx.prepare_cached(
                        "INSERT INTO spend_closed (month, total)
                         SELECT ?2, price_per_hour * MAX(0, ?3 - MAX(created_at, ?2)) / 3600.0
                         FROM nodes WHERE id = ?1
                         ON CONFLICT(month) DO UPDATE SET total = total + excluded.total",
                    )?
                    .execute(params![t.node, month, t.at])?;
                }
            }
            tx.commit()?;
            Ok(applied)
        })
    }

    /// An admin asked for this node to be drained (`cloudburst drain`):
    /// kept until the node is gone, whatever it goes through first. Asking
    /// again keeps the first request's time.
    pub fn request_admin_drain(&mut self, node: &str, now: i64) -> Result<bool> {
        self.sql(|c| {
            c.execute(
                "UPDATE nodes SET admin_drain = COALESCE(admin_drain, ?2) WHERE id = ?1 AND state <> 'gone'",
                params![node, now],
            )
            .map(|n| n == 1)
        })
    }

    /// A terminate call was sent for the node (the first, or a re-send
    /// because its instance has not gone away).
    pub fn record_terminate_attempt(&mut self, node: &str, now: i64) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "UPDATE nodes SET terminate_attempts = terminate_attempts + 1, terminate_last = ?2 WHERE id = ?1",
                params![node, now],
            )
            .map(|_| ())
        })
    }

    /// Pauses launches at a site until `until` (a refused credential):
    /// a later pause replaces an earlier one.
    pub fn pause_site(&mut self, site: &str, until: i64, reason: &str) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "INSERT INTO site_pause (site, until, reason) VALUES (?1, ?2, ?3)
                 ON CONFLICT(site) DO UPDATE SET until = ?2, reason = ?3",
                params![site, until, reason],
            )
            .map(|_| ())
        })
    }

    /// Site → (paused until, why).
    pub fn site_pauses(&mut self) -> Result<BTreeMap<String, (i64, String)>> {
        self.sql(|c| {
            let mut st = c.prepare("SELECT site, until, reason FROM site_pause")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
            rows.collect()
        })
    }

    /// Lifts every pause (a reloaded config may carry new credentials).
    pub fn clear_site_pauses(&mut self) -> Result<usize> {
        self.sql(|c| c.execute("DELETE FROM site_pause", []))
    }

    /// Marks why a node is draining (so an idle drain may be cancelled).
    pub fn set_drain_cause(&mut self, node: &str, cause: Option<DrainCause>) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "UPDATE nodes SET drain_cause = ?2 WHERE id = ?1",
                params![node, cause.map(cause_name)],
            )
            .map(|_| ())
        })
    }

    pub fn events(&mut self, node: Option<&str>) -> Result<Vec<Event>> {
        self.sql(|c| {
            let mut st = c.prepare(
                "SELECT seq, node, at, from_state, to_state, reason FROM events
                 WHERE ?1 IS NULL OR node = ?1 ORDER BY seq",
            )?;
            let rows = st.query_map([node], |r| {
                Ok(Event {
                    seq: r.get(0)?,
                    node: r.get(1)?,
                    at: r.get(2)?,
                    from: r.get(3)?,
                    to: r.get(4)?,
                    reason: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// (site, flavor) → back-off end.
    pub fn backoff(&mut self) -> Result<BTreeMap<(String, String), i64>> {
        self.sql(|c| {
            let mut st = c.prepare("SELECT site, flavor, until FROM backoff")?;
            let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
            rows.collect()
        })
    }

    /// Records a failure at a site/flavour: back-off doubles from
    /// `initial` per consecutive failure, up to `max`.
    pub fn fail(
        &mut self,
        site: &str,
        flavor: &str,
        now: i64,
        initial: i64,
        max: i64,
    ) -> Result<i64> {
        self.sql(|c| {
            let tx = c.transaction()?;
            let failures: i64 = tx
                .query_row(
                    "SELECT failures FROM backoff WHERE site = ?1 AND flavor = ?2",
                    params![site, flavor],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0)
                + 1;
            let wait = initial
                .saturating_mul(1i64 << (failures - 1).min(20))
                .min(max);
            let until = now + wait;
            tx.execute(
                "INSERT INTO backoff (site, flavor, failures, until) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(site, flavor) DO UPDATE SET failures = ?3, until = ?4",
                params![site, flavor, failures, until],
            )?;
            tx.commit()?;
            Ok(until)
        })
    }

    /// A node of this site/flavour joined: its back-off is over.
    pub fn succeed(&mut self, site: &str, flavor: &str) -> Result<()> {
        self.sql(|c| {
            c.execute(
                "DELETE FROM backoff WHERE site = ?1 AND flavor = ?2",
                params![site, flavor],
            )
            .map(|_| ())
        })
    }
}

/// Spend between `from` and `to` (seconds since the epoch): each node's
/// price for the part of its life inside the window. Pure.
pub fn spend(nodes: &[Node], from: i64, to: i64) -> f64 {
    nodes
        .iter()
        .map(|n| {
            let start = n.created_at.max(from);
            let end = n.ended_at.unwrap_or(to).min(to);
            if end > start {
                n.price_per_hour * (end - start) as f64 / 3600.0
            } else {
                0.0
            }
        })
        .sum()
}

/// The start of the calendar month (UTC) containing `t`.
pub fn month_start(t: i64) -> i64 {
    let days = t.div_euclid(86400);
    let (y, m, _) = civil_from_days(days);
    days_from_civil(y, m, 1) * 86400
}

// Howard Hinnant's civil-calendar algorithms.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent and `cloudburst nodes` started together on a fresh
    /// registry both migrate it (seen on the real pool: "table nodes
    /// already exists" killed the agent): every opener must succeed.
    #[test]
    fn registries_opened_at_once_on_a_fresh_file_all_open() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let path = dir.path().join(format!("r{round}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Registry::open(&path).map(|_| ())
                    })
                })
                .collect();
            for o in openers {
                o.join().unwrap().unwrap();
            }
        }
    }

    fn node(id: &str, state: State) -> Node {
        Node {
            state,
            price_per_hour: 0.5,
            ..Node::requested(id, "aws", "small", &format!("tok-{id}"), 100)
        }
    }

    #[test]
    fn launches_are_journaled_and_transitions_recorded() {
        let mut r = Registry::in_memory().unwrap();
        let id = r.next_node_id("p").unwrap();
        assert_eq!(id, "p-000001");
        assert_eq!(r.next_node_id("p").unwrap(), "p-000002");
        let n = node(&id, State::Requested);
        let intent = r.record_launch(&n, "aws/small").unwrap();
        assert_eq!(r.unfinished_intents().unwrap().len(), 1);
        let t = Transition {
            node: id.clone(),
            from: State::Requested,
            to: State::Booting,
            at: 110,
            reason: "instance i-1 exists".into(),
            instance_id: Some("i-1".into()),
            startd: None,
            busy_at: None,
        };
        assert_eq!(r.apply(std::slice::from_ref(&t)).unwrap(), 1);
        // Applying it again does nothing: the node is no longer Requested.
        assert_eq!(r.apply(&[t]).unwrap(), 0);
        r.finish_intent(intent, "ok: i-1", 110).unwrap();
        assert!(r.unfinished_intents().unwrap().is_empty());
        let got = r.node(&id).unwrap().unwrap();
        assert_eq!(
            (got.state, got.instance_id.as_deref(), got.since),
            (State::Booting, Some("i-1"), 110)
        );
        let ev = r.events(Some(&id)).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].reason, "instance i-1 exists");
    }

    #[test]
    fn backoff_doubles_and_clears() {
        let mut r = Registry::in_memory().unwrap();
        assert_eq!(r.fail("aws", "small", 1000, 60, 600).unwrap(), 1060);
        assert_eq!(r.fail("aws", "small", 1000, 60, 600).unwrap(), 1120);
        assert_eq!(r.fail("aws", "small", 1000, 60, 600).unwrap(), 1240);
        for _ in 0..10 {
            r.fail("aws", "small", 1000, 60, 600).unwrap();
        }
        assert_eq!(r.backoff().unwrap()[&("aws".into(), "small".into())], 1600);
        r.succeed("aws", "small").unwrap();
        assert!(r.backoff().unwrap().is_empty());
    }

    #[test]
    fn a_file_registry_is_private_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/registry.db");
        {
            let mut r = Registry::open(&path).unwrap();
            r.record_launch(&node("p-1", State::Requested), "x")
                .unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut r = Registry::open(&path).unwrap();
        assert_eq!(r.nodes().unwrap().len(), 1);
        assert_eq!(r.unfinished_intents().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_file_is_refused_and_the_verified_mark_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        {
            let mut r = Registry::open(&path).unwrap();
            assert!(!r.verified().unwrap(), "a new registry is unverified");
            r.set_verified(5).unwrap();
        }
        assert!(Registry::open(&path).unwrap().verified().unwrap());
        std::fs::write(
            &path,
            b"this is not a database, it is a text file\n".repeat(200),
        )
        .unwrap();
        let _ = std::fs::remove_file(dir.path().join("registry.db-wal"));
        match Registry::open(&path) {
            Err(RegistryError::Damaged { path: p, message }) => {
                assert!(p.ends_with("registry.db"));
                assert!(message.contains("not a database"), "{message}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn new_node_ids_step_over_adopted_ones() {
        let mut r = Registry::in_memory().unwrap();
        r.adopt(&[
            node("p-000001", State::Booting),
            node("p-000002", State::Booting),
        ])
        .unwrap();
        assert_eq!(r.next_node_id("p").unwrap(), "p-000003");
        assert_eq!(r.next_node_id("p").unwrap(), "p-000004");
    }

    #[test]
    fn spend_counts_each_nodes_life_inside_the_window() {
        let mut a = node("a", State::Gone);
        a.created_at = 0;
        a.ended_at = Some(7200);
        let mut b = node("b", State::Idle);
        b.created_at = 3600;
        assert!((spend(&[a.clone(), b.clone()], 3600, 10800) - (0.5 + 1.0)).abs() < 1e-9);
        // The registry keeps the month's total as nodes go.
        let mut r = Registry::in_memory().unwrap();
        let month = month_start(1_795_348_800);
        let mut live = node("live", State::Idle);
        live.created_at = month + 3600;
        let mut ending = node("ending", State::Idle);
        ending.created_at = month - 7200;
        r.adopt(&[live, ending]).unwrap();
        r.apply(&[Transition {
            node: "ending".into(),
            from: State::Idle,
            to: State::Gone,
            at: month + 7200,
            reason: "test".into(),
            instance_id: None,
            startd: None,
            busy_at: None,
        }])
        .unwrap();
        // ending: 2 h this month; live: 2 h so far; 0.5 an hour each.
        assert!((r.month_spend(month + 3 * 3600).unwrap() - 2.0).abs() < 1e-9);
        // 2026-11-22 12:00 UTC → 2026-11-01 00:00 UTC.
        assert_eq!(month_start(1_795_348_800), 1_793_491_200);
    }
}
