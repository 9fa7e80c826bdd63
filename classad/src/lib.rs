//! An exact ClassAd engine: libclassad's language as HTCondor daemons speak
//! it (old-ClassAd semantics on, the HTCondor compat functions registered).
//!
//! - [`parser`] and [`lexer`]: new syntax, `-long` lines, and `-json`;
//! - [`unparse`]: the canonical text in each of those forms;
//! - [`eval`]: evaluation with scopes, UNDEFINED/ERROR, cycle and depth
//!   bounds; [`builtins`] the functions; [`ops`] the operators;
//! - [`matching`]: MY/TARGET binding, `matches`, `symmetric_match`, `Rank`;
//! - [`stream`]: ad-at-a-time readers for multi-gigabyte tool output.
//!
//! Its agreement with the official library is tested case by case against
//! PyPI `htcondor` (see `tests/classad_oracle.rs`).

pub mod ast;
pub mod builtins;
pub mod eval;
pub mod lexer;
pub mod matching;
pub mod name;
pub mod ops;
pub mod parser;
pub mod small;
pub mod stream;
pub mod time;
pub mod unparse;
pub mod value;

pub use ast::{AbsTime, BinOp, ClassAd, Expr, UnOp};
pub use eval::{Arena, Evaluator, Fail};
pub use matching::Matcher;
pub use parser::{parse_ad, parse_expr, ParseError};
pub use value::{Kind, Value};
