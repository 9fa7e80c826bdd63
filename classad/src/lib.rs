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
//! PyPI `htcondor` (`tests/classad_oracle.rs` in the cloudburst
//! repository: recorded cases, 20,000 generated ones a run, every real
//! capture re-printed).
//!
//! # Parse, evaluate, match, print
//!
//! An ad in the new syntax, and an expression evaluated against it:
//!
//! ```
//! use cloudburst_classad::{matching, parse_ad, parse_expr};
//!
//! let machine = parse_ad(b"[Cpus = 8; Memory = 32768; CloudNode = true]").unwrap();
//! let expr = parse_expr(b"Memory / Cpus").unwrap();
//! let (kind, text) = matching::eval_to_text(&expr, Some(&machine), None, 0).unwrap();
//! assert_eq!(text, "4096");
//! assert_eq!(kind, cloudburst_classad::Kind::Integer);
//! ```
//!
//! Ads as `condor_q -long` prints them (attribute lines, a blank line
//! between ads) and as `condor_q -json` prints them, read one at a time:
//!
//! ```
//! use cloudburst_classad::stream::{JsonReader, LongReader};
//!
//! let long = b"ClusterId = 7\nRequestCpus = 2\nOwner = \"alice\"\n\nClusterId = 8\nRequestCpus = 4\n\n";
//! let ads: Vec<_> = LongReader::new(&long[..]).collect::<Result<_, _>>().unwrap();
//! assert_eq!(ads.len(), 2);
//!
//! let json = br#"[{"ClusterId": 9, "Requirements": "\/Expr(TARGET.Cpus >= 2)\/"}]"#;
//! let ads: Vec<_> = JsonReader::new(&json[..]).collect::<Result<_, _>>().unwrap();
//! assert!(ads[0].get(b"Requirements").is_some());
//! ```
//!
//! Matchmaking, as the negotiator does it: each ad's `Requirements` with
//! `MY` bound to it and `TARGET` to the other (old-ClassAd semantics: an
//! unscoped name not found in one ad is looked up in the other):
//!
//! ```
//! use cloudburst_classad::{parse_ad, Matcher};
//!
//! let job = parse_ad(b"[RequestCpus = 2; WantCloud = true; Requirements = TARGET.Cpus >= RequestCpus]").unwrap();
//! let slot = parse_ad(b"[Cpus = 8; Requirements = TARGET.WantCloud =?= true]").unwrap();
//! let small = parse_ad(b"[Cpus = 1; Requirements = true]").unwrap();
//! let m = Matcher::new(1_700_000_000);
//! assert!(m.symmetric_match(&job, &slot));
//! assert!(!m.symmetric_match(&job, &small));
//! ```
//!
//! Printing, in each form the tools use:
//!
//! ```
//! use cloudburst_classad::{parse_ad, parse_expr, unparse};
//!
//! let e = parse_expr(b"TARGET.Memory>=2048&&WantCloud").unwrap();
//! assert_eq!(unparse::to_text(&e), "TARGET.Memory >= 2048 && WantCloud");
//! let ad = parse_ad(b"[B = 1.5; A = \"x\"]").unwrap();
//! let mut long = Vec::new();
//! unparse::write_long(&ad, &mut long);
//! assert_eq!(String::from_utf8(long).unwrap(), "A = \"x\"\nB = 1.5\n");
//! let mut json = Vec::new();
//! unparse::write_json(&ad, &mut json);
//! assert!(String::from_utf8(json).unwrap().contains("\"B\": 1.5"));
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

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
