//! Evaluation with libclassad's scoping, as HTCondor daemons configure it
//! (old-ClassAd semantics on).
//!
//! Scopes are frames in an arena owned by one evaluation: each frame is an
//! ad plus the frame of its lexical parent. Matchmaking builds the same
//! structure libclassad's `MatchClassAd` does — a root ad holding `LEFT` and
//! `RIGHT`, and two context ads that define `MY`, `TARGET`, `OTHER` — so that
//! every reference resolves as it does in the negotiator, including the
//! old-ClassAd rule that an unscoped name missing from one ad is looked up in
//! the other. Nothing here reads a clock: `time()` returns `now`, which the
//! caller supplies.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::ast::{BinOp, ClassAd, Expr};
use super::ops;
use super::parser::parse_ad;
use super::value::{AdRef, FrameId, ListRef, Value};

/// libclassad's recursion bound (`MAX_CLASSAD_RECURSION`).
const MAX_DEPTH: i32 = 400;
/// libclassad's cumulative work bound (`MAX_CLASSAD_EVAL_STEPS`).
const MAX_STEPS: i64 = 10_000_000;
/// Nested fresh evaluations (`ad["x"]`, `eval()`), where libclassad resets
/// its bounds and would eventually overflow its stack; we stop instead.
const MAX_REENTRY: u32 = 64;

/// An evaluation failed outright (libclassad returns `false`): a bound was
/// exceeded or a reference could not be resolved at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail;

pub type Eval<'e> = Result<Value<'e>, Fail>;

/// Expressions that evaluation itself builds (lists from `split`, ads from
/// `splitTime`, ...). They live as long as the arena, which outlives every
/// value of one evaluation.
#[derive(Default)]
#[allow(clippy::vec_box)] // each Expr is boxed so that its address never moves
pub struct Arena {
    items: RefCell<Vec<Box<Expr>>>,
}

impl Arena {
    pub fn new() -> Arena {
        Arena::default()
    }

    pub fn alloc(&self, e: Expr) -> &Expr {
        let boxed = Box::new(e);
        let ptr: *const Expr = &*boxed;
        self.items.borrow_mut().push(boxed);
        // SAFETY: the box is never removed, moved out of or mutated while
        // the arena lives, so its heap address stays valid for `&self`.
        unsafe { &*ptr }
    }
}

#[derive(Clone, Copy)]
enum FrameKind<'e> {
    Ad(&'e ClassAd),
    /// The match ad: `LEFT`, `RIGHT`, `lCtx`, `rCtx` and the convenience
    /// expressions of libclassad's `MatchClassAd`.
    MatchRoot {
        left: FrameId,
        right: FrameId,
        lctx: FrameId,
        rctx: FrameId,
    },
}

#[derive(Clone, Copy)]
struct Frame<'e> {
    kind: FrameKind<'e>,
    parent: Option<FrameId>,
    /// Old-ClassAd semantics: where an unscoped name not found here is
    /// looked up next (the other ad of a match).
    alternate: Option<FrameId>,
}

/// The outcome of resolving a reference (libclassad's `EVAL_*` codes).
pub(super) enum Lookup<'e> {
    /// An expression; the current scope is now the ad that binds it.
    Expr(&'e Expr),
    /// A scope itself (`self`, `parent`, `LEFT`, ...).
    Ad(FrameId),
    /// The new list a projection `{...}.attr` built.
    List(&'e [Expr]),
    Undef,
    Error,
    Fail,
}

fn static_ad(cell: &'static OnceLock<ClassAd>, text: &str) -> &'static ClassAd {
    cell.get_or_init(|| parse_ad(text.as_bytes()).expect("built-in ad parses"))
}

fn left_context() -> &'static ClassAd {
    static CELL: OnceLock<ClassAd> = OnceLock::new();
    static_ad(&CELL, "[other=.RIGHT;target=.RIGHT;my=.LEFT;ad=.LEFT]")
}

fn right_context() -> &'static ClassAd {
    static CELL: OnceLock<ClassAd> = OnceLock::new();
    static_ad(&CELL, "[other=.LEFT;target=.LEFT;my=.RIGHT;ad=.RIGHT]")
}

fn match_root() -> &'static ClassAd {
    static CELL: OnceLock<ClassAd> = OnceLock::new();
    static_ad(
        &CELL,
        "[symmetricMatch = RIGHT.requirements && LEFT.requirements; \
          leftMatchesRight = RIGHT.requirements; rightMatchesLeft = LEFT.requirements; \
          leftRankValue = LEFT.rank; rightRankValue = RIGHT.rank]",
    )
}

fn current_time_call() -> &'static Expr {
    static CELL: OnceLock<Expr> = OnceLock::new();
    CELL.get_or_init(|| super::parser::parse_expr(b"time()").expect("parses"))
}

fn name_is(name: &[u8], s: &str) -> bool {
    name.eq_ignore_ascii_case(s.as_bytes())
}

/// One evaluation context: frames, bounds, and the clock.
pub struct Evaluator<'e> {
    pub(super) arena: &'e Arena,
    frames: Vec<Frame<'e>>,
    /// Attribute expressions being evaluated, by node and the ad holding
    /// it (values can be shared between ads, so the node alone is not an
    /// attribute's identity).
    active: Vec<(*const Expr, *const ClassAd)>,
    pub(super) depth: i32,
    steps: i64,
    root: Option<FrameId>,
    /// libclassad's `state.curAd`: the ad unscoped names are looked up in.
    /// Lookups move it, as libclassad's do, and some callers see that.
    pub(super) cur: Option<FrameId>,
    /// The ad the expression being evaluated was written in: the parent of
    /// the ad and list literals it builds. Unlike `cur` it never moves
    /// during a lookup.
    lex: Option<FrameId>,
    reentry: u32,
    rng: u64,
    /// Seconds since the epoch that `time()` and `CurrentTime` return.
    pub now: i64,
}

impl<'e> Evaluator<'e> {
    pub fn new(arena: &'e Arena, now: i64) -> Evaluator<'e> {
        Evaluator {
            arena,
            frames: Vec::new(),
            active: Vec::new(),
            depth: MAX_DEPTH,
            steps: MAX_STEPS,
            root: None,
            cur: None,
            lex: None,
            reentry: 0,
            rng: 0x9e37_79b9_7f4a_7c15 ^ (now as u64),
            now,
        }
    }

    /// Forgets all frames, for reuse on another evaluation.
    pub fn reset(&mut self) {
        self.frames.clear();
        self.active.clear();
        self.depth = MAX_DEPTH;
        self.steps = MAX_STEPS;
        self.root = None;
        self.cur = None;
        self.lex = None;
        self.reentry = 0;
    }

    fn push_frame(&mut self, kind: FrameKind<'e>, parent: Option<FrameId>) -> FrameId {
        self.frames.push(Frame {
            kind,
            parent,
            alternate: None,
        });
        (self.frames.len() - 1) as FrameId
    }

    /// A top-level ad as the scope of an evaluation (no match).
    pub fn scope_of(&mut self, ad: &'e ClassAd) -> FrameId {
        self.push_frame(FrameKind::Ad(ad), None)
    }

    /// Places `my` and `target` in a match ad as the negotiator does;
    /// returns their frames.
    pub fn match_scopes(&mut self, my: &'e ClassAd, target: &'e ClassAd) -> (FrameId, FrameId) {
        let root = self.push_frame(
            FrameKind::MatchRoot {
                left: 0,
                right: 0,
                lctx: 0,
                rctx: 0,
            },
            None,
        );
        let lctx = self.push_frame(FrameKind::Ad(left_context()), Some(root));
        let rctx = self.push_frame(FrameKind::Ad(right_context()), Some(root));
        let left = self.push_frame(FrameKind::Ad(my), Some(lctx));
        let right = self.push_frame(FrameKind::Ad(target), Some(rctx));
        self.frames[left as usize].alternate = Some(right);
        self.frames[right as usize].alternate = Some(left);
        self.frames[root as usize].kind = FrameKind::MatchRoot {
            left,
            right,
            lctx,
            rctx,
        };
        (left, right)
    }

    fn top_of(&self, scope: Option<FrameId>) -> Option<FrameId> {
        let mut cur = scope?;
        let start = cur;
        while let Some(p) = self.frames[cur as usize].parent {
            if p == start {
                return None;
            }
            cur = p;
        }
        Some(cur)
    }

    /// Evaluates `e` with `scope` as its enclosing ad (libclassad's
    /// `Evaluate` with fresh state).
    pub fn eval_in(&mut self, e: &'e Expr, scope: Option<FrameId>) -> Eval<'e> {
        self.depth = MAX_DEPTH;
        self.steps = MAX_STEPS;
        self.active.clear();
        self.root = self.top_of(scope);
        self.cur = scope;
        self.lex = scope;
        self.eval(e)
    }

    /// The ad a frame stands for (the match ad's own attributes for the
    /// root of a match).
    pub fn frame_ad(&self, f: FrameId) -> &'e ClassAd {
        match self.frames[f as usize].kind {
            FrameKind::Ad(ad) => ad,
            FrameKind::MatchRoot { .. } => match_root(),
        }
    }

    pub(super) fn ad_value(&self, f: FrameId, shared: bool) -> Value<'e> {
        Value::Ad(AdRef {
            ad: self.frame_ad(f),
            frame: f,
            shared,
        })
    }

    /// A new frame for an ad value built during evaluation.
    pub(super) fn new_ad_frame(&mut self, ad: &'e ClassAd, parent: Option<FrameId>) -> FrameId {
        self.push_frame(FrameKind::Ad(ad), parent)
    }

    pub(super) fn eval(&mut self, e: &'e Expr) -> Eval<'e> {
        self.steps -= 1;
        if self.steps < 0 {
            return Err(Fail);
        }
        self.eval_node(e)
    }

    fn eval_node(&mut self, e: &'e Expr) -> Eval<'e> {
        match e {
            Expr::Undefined => Ok(Value::Undefined),
            Expr::Error => Ok(Value::Error),
            Expr::Bool(b) => Ok(Value::Bool(*b)),
            Expr::Int(i) => Ok(Value::Int(*i)),
            Expr::Real(r) => Ok(Value::Real(*r)),
            Expr::Str(s) => Ok(Value::str(s)),
            Expr::AbsTime(t) => Ok(Value::AbsTime(*t)),
            // A relTime literal evaluates to a plain real, as in libclassad.
            Expr::RelTime(r) => Ok(Value::Real(*r)),
            Expr::Attr(a) => self.eval_attr(a.base.as_ref(), &a.name, a.absolute),
            Expr::List(items) => Ok(Value::List(ListRef {
                items,
                scope: self.lex,
                shared: false,
            })),
            Expr::Ad(ad) => {
                let f = self.push_frame(FrameKind::Ad(ad), self.lex);
                Ok(self.ad_value(f, false))
            }
            // Operator nesting is bounded by the depth limit; calls and
            // references are not, so they make sure of the stack.
            Expr::Call(c) => super::parser::grow(|| self.call(c)),
            Expr::Paren(inner) => self.guarded(|ev| ev.eval(inner)),
            Expr::Unary(op, inner) => self.guarded(|ev| {
                let v = ev.eval(inner)?;
                Ok(ops::unary(*op, v))
            }),
            Expr::Binary(op, pair) => self.guarded(|ev| ev.eval_binary(*op, &pair.0, &pair.1)),
            Expr::Cond(c) => self.guarded(|ev| {
                let v = ev.eval(&c.0)?;
                match v.as_bool_equiv() {
                    Some(true) => ev.eval(&c.1),
                    Some(false) => ev.eval(&c.2),
                    None if v.is_error() => Ok(Value::Error),
                    None if v.is_undefined() => Ok(Value::Undefined),
                    None => {
                        // Neither branch is chosen, but both are evaluated.
                        ev.eval(&c.1)?;
                        ev.eval(&c.2)?;
                        Ok(Value::Error)
                    }
                }
            }),
        }
    }

    /// The identity of the binding a lookup just found: the expression and
    /// the ad it was found in (now the current scope).
    fn binding_key(&self, e: &Expr) -> (*const Expr, *const ClassAd) {
        let ad = self
            .cur
            .map_or(std::ptr::null(), |f| self.frame_ad(f) as *const ClassAd);
        (e as *const Expr, ad)
    }

    /// Evaluates an expression that was written in the ad of `scope` (an
    /// attribute's value, a list's element): ads and lists it builds have
    /// that ad as their parent.
    pub(super) fn eval_element(&mut self, scope: Option<FrameId>, e: &'e Expr) -> Eval<'e> {
        let saved = std::mem::replace(&mut self.lex, scope);
        let r = self.eval(e);
        self.lex = saved;
        r
    }

    /// Operator nodes count against the recursion bound.
    fn guarded(&mut self, f: impl FnOnce(&mut Self) -> Eval<'e>) -> Eval<'e> {
        self.depth -= 1;
        let r = if self.depth < 0 { Err(Fail) } else { f(self) };
        self.depth += 1;
        r
    }

    fn eval_binary(&mut self, op: BinOp, l: &'e Expr, r: &'e Expr) -> Eval<'e> {
        let v1 = self.eval(l)?;
        match op {
            BinOp::Or => match v1.as_bool_equiv() {
                Some(true) => return Ok(Value::Bool(true)),
                _ if v1.is_error() => return Ok(Value::Error),
                _ => {}
            },
            BinOp::And => match v1.as_bool_equiv() {
                Some(false) => return Ok(Value::Bool(false)),
                _ if v1.is_error() => return Ok(Value::Error),
                _ => {}
            },
            BinOp::Elvis if !v1.is_undefined() => return Ok(v1),
            _ => {}
        }
        let v2 = self.eval(r)?;
        if op == BinOp::Subscript {
            if let Some(v) = ops::strict_guard(&v1, &v2) {
                return Ok(v);
            }
            return self.subscript(v1, v2);
        }
        Ok(ops::binary(op, &v1, &v2))
    }

    fn subscript(&mut self, container: Value<'e>, index: Value<'e>) -> Eval<'e> {
        match (&container, &index) {
            (Value::Ad(a), Value::Str(name)) => {
                if a.ad.get(name).is_none() {
                    return Ok(Value::Undefined);
                }
                let name: &[u8] = name;
                let name = name.to_vec();
                let frame = a.frame;
                Ok(self
                    .evaluate_attr_fresh(frame, &name)
                    .unwrap_or(Value::Error))
            }
            (Value::List(l), Value::Int(i)) => {
                let i = *i as i32;
                if i < 0 || i as usize >= l.items.len() {
                    return Ok(Value::Error);
                }
                if self.depth <= 0 {
                    return Ok(Value::Error);
                }
                // The element is evaluated in the scope it was written in;
                // a failure there is only an ERROR value.
                self.depth -= 1;
                let saved = self.cur;
                self.cur = l.scope;
                let r = self.eval_element(l.scope, &l.items[i as usize]);
                self.cur = saved;
                self.depth += 1;
                Ok(r.unwrap_or(Value::Error))
            }
            _ => Ok(Value::Error),
        }
    }

    /// libclassad's `ClassAd::EvaluateAttr`: a fresh evaluation of one
    /// attribute of an ad value; lists and ads it yields are self-contained.
    fn evaluate_attr_fresh(&mut self, frame: FrameId, name: &[u8]) -> Eval<'e> {
        self.fresh(Some(frame), |ev| match ev.lookup_in_scope(name, frame) {
            Lookup::Expr(e) => ev.eval_element(ev.cur, e).map(make_shared),
            Lookup::Ad(f) => Ok(ev.ad_value(f, true)),
            Lookup::Undef => Ok(Value::Undefined),
            Lookup::Error | Lookup::List(_) => Ok(Value::Error),
            Lookup::Fail => Err(Fail),
        })
    }

    /// Runs `f` in libclassad's fresh `EvalState`: new bounds, `scope` as
    /// the current ad; everything of ours is restored afterwards.
    pub(super) fn fresh(
        &mut self,
        scope: Option<FrameId>,
        f: impl FnOnce(&mut Self) -> Eval<'e>,
    ) -> Eval<'e> {
        if self.reentry >= MAX_REENTRY {
            return Err(Fail);
        }
        let saved = (
            self.depth,
            self.steps,
            self.root,
            self.cur,
            std::mem::take(&mut self.active),
            self.lex,
        );
        self.reentry += 1;
        self.depth = MAX_DEPTH;
        self.steps = MAX_STEPS;
        self.root = self.top_of(scope);
        self.cur = scope;
        self.lex = scope;
        let r = f(self);
        self.reentry -= 1;
        self.depth = saved.0;
        self.steps = saved.1;
        self.root = saved.2;
        self.cur = saved.3;
        self.active = saved.4;
        self.lex = saved.5;
        r
    }

    /// libclassad's `FindExpr`: what a reference names. Like it, this moves
    /// the current scope to where the search ended.
    pub(super) fn find_expr(
        &mut self,
        base: Option<&'e Expr>,
        name: &[u8],
        absolute: bool,
    ) -> Result<Lookup<'e>, Fail> {
        let Some(base) = base else {
            let start = if absolute {
                match self.root {
                    Some(r) => r,
                    None => return Ok(Lookup::Fail),
                }
            } else {
                match self.cur {
                    Some(c) => c,
                    None => return Ok(Lookup::Undef),
                }
            };
            let mut found = self.lookup_in_scope(name, start);
            if !absolute && matches!(found, Lookup::Undef) {
                if let Some(alt) = self.frames[start as usize].alternate {
                    found = self.lookup_in_scope(name, alt);
                }
            }
            return Ok(found);
        };
        if self.depth <= 0 {
            return Ok(Lookup::Error);
        }
        self.depth -= 1;
        let v = self.eval(base);
        self.depth += 1;
        Ok(match v? {
            Value::Undefined => Lookup::Undef,
            Value::Error => Lookup::Error,
            Value::Ad(ad) => self.lookup_in_scope(name, ad.frame),
            Value::List(l) => Lookup::List(self.project(l, name)?),
            _ => Lookup::Error,
        })
    }

    fn eval_attr(&mut self, base: Option<&'e Expr>, name: &'e [u8], absolute: bool) -> Eval<'e> {
        let saved = self.cur;
        let found = self.find_expr(base, name, absolute)?;
        let r = match found {
            Lookup::Fail => return Err(Fail),
            Lookup::Error => Ok(Value::Error),
            Lookup::Undef => Ok(Value::Undefined),
            _ if self.depth <= 0 => {
                self.cur = saved;
                return Err(Fail);
            }
            Lookup::Ad(f) => Ok(self.ad_value(f, false)),
            Lookup::List(items) => {
                self.steps -= 1;
                Ok(Value::List(ListRef {
                    items,
                    scope: None,
                    shared: false,
                }))
            }
            Lookup::Expr(e) => {
                // A reference back into an expression still being evaluated
                // is a cycle: UNDEFINED, as libclassad decides.
                let p = self.binding_key(e);
                if self.active.contains(&p) {
                    self.cur = saved;
                    return Ok(Value::Undefined);
                }
                self.active.push(p);
                self.depth -= 1;
                let r = super::parser::grow(|| self.eval_element(self.cur, e));
                self.depth += 1;
                self.active.pop();
                r
            }
        };
        self.cur = saved;
        r
    }

    /// `{ads...}.attr`: the attribute selected from every element, as a new
    /// list. Each element is evaluated in a fresh state whose current scope
    /// is ours.
    fn project(&mut self, l: ListRef<'e>, name: &[u8]) -> Result<&'e [Expr], Fail> {
        let (saved_cur, saved_root) = (self.cur, self.root);
        let mut out = Vec::with_capacity(l.items.len());
        let mut result = Ok(());
        for item in l.items {
            self.cur = saved_cur;
            self.root = self.top_of(saved_cur);
            self.steps -= 1;
            let r = match self.find_expr(Some(item), name, false) {
                Err(f) => Err(f),
                Ok(Lookup::Fail) => Err(Fail),
                Ok(Lookup::Error) => Ok(Value::Error),
                Ok(Lookup::Undef) => Ok(Value::Undefined),
                Ok(_) if self.depth <= 0 => Err(Fail),
                Ok(Lookup::Ad(f)) => Ok(self.ad_value(f, false)),
                Ok(Lookup::List(items)) => Ok(Value::List(ListRef {
                    items,
                    scope: None,
                    shared: false,
                })),
                Ok(Lookup::Expr(e)) => {
                    let p = self.binding_key(e);
                    if self.active.contains(&p) {
                        Ok(Value::Undefined)
                    } else {
                        self.active.push(p);
                        self.depth -= 1;
                        let r = self.eval_element(self.cur, e);
                        self.depth += 1;
                        self.active.pop();
                        r
                    }
                }
            };
            match r {
                Ok(v) => out.push(super::value::value_to_expr(&v)),
                Err(f) => {
                    result = Err(f);
                    break;
                }
            }
        }
        self.cur = saved_cur;
        self.root = saved_root;
        result?;
        let Expr::List(items) = self.arena.alloc(Expr::List(out)) else {
            unreachable!("just allocated a list")
        };
        Ok(items)
    }

    /// libclassad's `LookupInScope`: search `start` and its lexical parents;
    /// a few special names answer from the scope chain itself. Like it, this
    /// leaves the current scope at the last ad it looked in.
    pub(super) fn lookup_in_scope(&mut self, name: &[u8], start: FrameId) -> Lookup<'e> {
        let mut current = start;
        loop {
            self.cur = Some(current);
            let frame = self.frames[current as usize];
            match frame.kind {
                FrameKind::Ad(ad) => {
                    if let Some(e) = ad.get(name) {
                        return Lookup::Expr(e);
                    }
                }
                FrameKind::MatchRoot {
                    left,
                    right,
                    lctx,
                    rctx,
                } => {
                    for (n, f) in [
                        ("LEFT", left),
                        ("RIGHT", right),
                        ("lCtx", lctx),
                        ("rCtx", rctx),
                    ] {
                        if name_is(name, n) {
                            return Lookup::Ad(f);
                        }
                    }
                    if let Some(e) = match_root().get(name) {
                        return Lookup::Expr(e);
                    }
                }
            }
            let super_scope = if self.root == Some(current) {
                None
            } else {
                frame.parent
            };
            if name_is(name, "toplevel") || name_is(name, "root") {
                return match self.root {
                    Some(r) => Lookup::Ad(r),
                    None => Lookup::Fail,
                };
            } else if name_is(name, "self") || name_is(name, "my") {
                return Lookup::Ad(current);
            } else if name_is(name, "parent") {
                return match super_scope {
                    Some(p) => Lookup::Ad(p),
                    None => Lookup::Undef,
                };
            } else if name_is(name, "CurrentTime") {
                return Lookup::Expr(current_time_call());
            }
            match super_scope {
                Some(p) if p != start => current = p,
                _ => return Lookup::Undef,
            }
        }
    }

    pub(super) fn lex_scope(&self) -> Option<FrameId> {
        self.lex
    }

    /// Sets the lexical scope, returning the previous one to restore.
    pub(super) fn set_lex(&mut self, scope: Option<FrameId>) -> Option<FrameId> {
        std::mem::replace(&mut self.lex, scope)
    }

    pub(super) fn root_frame(&self) -> Option<FrameId> {
        self.root
    }

    pub(super) fn alternate_of(&self, f: FrameId) -> Option<FrameId> {
        self.frames[f as usize].alternate
    }

    pub(super) fn set_alternate(&mut self, f: FrameId, alt: Option<FrameId>) {
        self.frames[f as usize].alternate = alt;
    }

    pub(super) fn parent_of(&self, f: FrameId) -> Option<FrameId> {
        self.frames[f as usize].parent
    }

    /// Is `member` the frame `leaf` or one of its enclosing scopes?
    pub(super) fn is_ancestor_or_self(&self, member: FrameId, leaf: FrameId) -> bool {
        let mut cur = Some(leaf);
        let mut steps = 0;
        while let Some(c) = cur {
            if c == member {
                return true;
            }
            steps += 1;
            if steps > self.frames.len() {
                return false;
            }
            cur = self.frames[c as usize].parent;
        }
        false
    }

    /// The two sides of the match this evaluation runs in, if any.
    pub(super) fn match_sides(&self) -> Option<(FrameId, FrameId)> {
        match self.frames.get(self.root? as usize)?.kind {
            FrameKind::MatchRoot { left, right, .. } => Some((left, right)),
            FrameKind::Ad(_) => None,
        }
    }

    /// A deterministic stand-in for libclassad's `lrand48() & INT_MAX`.
    pub(super) fn next_random(&mut self) -> i32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 33) as i32 & i32::MAX
    }
}

/// `SafetyCheck`: values leaving a fresh evaluation own their lists and ads.
fn make_shared(v: Value<'_>) -> Value<'_> {
    match v {
        Value::List(l) => Value::List(ListRef { shared: true, ..l }),
        Value::Ad(a) => Value::Ad(AdRef { shared: true, ..a }),
        other => other,
    }
}
