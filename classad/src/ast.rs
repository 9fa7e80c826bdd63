//! The expression tree and the ClassAd record, as libclassad shapes them.
//!
//! Strings and names are byte strings: ClassAd strings may hold any byte but
//! NUL (an octal escape such as `\377` is legal), so `Vec<u8>` rather than
//! `String` keeps every value exact.

use std::cmp::Ordering;

pub use super::small::SmallBytes;
use std::sync::Arc;

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Plus,
    Minus,
    Not,
    BitNot,
}

/// A binary operator (the ternary `?:` is [`Expr::Cond`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Lt,
    Le,
    Ne,
    Eq,
    Ge,
    Gt,
    /// `=?=` and `is`
    Is,
    /// `=!=` and `isnt`
    Isnt,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Or,
    And,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    UShr,
    /// `a[b]`
    Subscript,
    /// `a ?: b`
    Elvis,
}

impl BinOp {
    /// Operators that propagate ERROR and UNDEFINED operands without looking
    /// at the other operand (everything but the meta comparisons, the logical
    /// connectives and the defaulting operators).
    pub fn is_strict(self) -> bool {
        !matches!(
            self,
            BinOp::Is | BinOp::Isnt | BinOp::And | BinOp::Or | BinOp::Elvis
        )
    }
}

/// An attribute reference: `name`, `.name`, or `base.name`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttrRef {
    pub base: Option<Expr>,
    pub name: Vec<u8>,
    pub absolute: bool,
}

/// A function call; the built-in is resolved once, at parse time.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Vec<u8>,
    pub func: Option<super::builtins::Builtin>,
    pub args: Vec<Expr>,
}

/// An absolute time: seconds since the epoch (UTC) and the zone offset in
/// seconds east of UTC that it is displayed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbsTime {
    pub secs: i64,
    pub offset: i32,
}

/// A ClassAd expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Undefined,
    Error,
    Bool(bool),
    Int(i64),
    Real(f64),
    Str(SmallBytes),
    AbsTime(AbsTime),
    RelTime(f64),
    Attr(Box<AttrRef>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<(Expr, Expr)>),
    Cond(Box<(Expr, Expr, Expr)>),
    Paren(Box<Expr>),
    Call(Box<Call>),
    List(Vec<Expr>),
    Ad(Box<ClassAd>),
}

impl Expr {
    pub fn attr(name: &[u8]) -> Expr {
        Expr::Attr(Box::new(AttrRef {
            base: None,
            name: name.to_vec(),
            absolute: false,
        }))
    }

    pub fn binary(op: BinOp, l: Expr, r: Expr) -> Expr {
        Expr::Binary(op, Box::new((l, r)))
    }

    pub fn string(s: &str) -> Expr {
        Expr::Str(s.as_bytes().into())
    }
}

/// libclassad's attribute order: shorter names first, then a
/// case-insensitive byte comparison. The unparsed text of an ad depends on it.
pub fn name_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        for (x, y) in a.iter().zip(b.iter()) {
            let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
            if x != y {
                return x.cmp(&y);
            }
        }
        Ordering::Equal
    })
}

fn ci_cmp(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x.to_ascii_lowercase(), y.to_ascii_lowercase());
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Case-insensitive name equality, as every ClassAd lookup uses.
pub fn name_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}

pub use super::name::Name;

/// An attribute's value: plain literals inline, anything else shared, so
/// that an expression repeated across many ads (a job's Requirements) is
/// parsed and stored once.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    Inline(Expr),
    Shared(Arc<Expr>),
}

impl Slot {
    pub fn expr(&self) -> &Expr {
        match self {
            Slot::Inline(e) => e,
            Slot::Shared(e) => e,
        }
    }

    /// Literals are stored inline; other expressions shared.
    pub fn new(e: Expr) -> Slot {
        match e {
            Expr::Undefined
            | Expr::Error
            | Expr::Bool(_)
            | Expr::Int(_)
            | Expr::Real(_)
            | Expr::Str(_)
            | Expr::AbsTime(_)
            | Expr::RelTime(_) => Slot::Inline(e),
            other => Slot::Shared(Arc::new(other)),
        }
    }

    pub fn into_expr(self) -> Expr {
        match self {
            Slot::Inline(e) => e,
            Slot::Shared(e) => Arc::unwrap_or_clone(e),
        }
    }
}

impl Default for Slot {
    /// What a taken slot leaves behind.
    fn default() -> Slot {
        Slot::Inline(Expr::Undefined)
    }
}

/// The order an ad keeps a sequence of names in (see
/// [`ClassAd::sort_order`]): `perm[i]` is the position, in the sequence,
/// of the ad's i-th name. Made only from the names it orders, so it is a
/// permutation of their positions.
#[derive(Clone, Debug)]
pub(crate) struct AdOrder {
    perm: Vec<u32>,
}

/// A ClassAd: attribute names (case-insensitive, unique) bound to expressions.
///
/// Stored as libclassad stores it, a vector sorted by [`name_order`]: lookups
/// are binary searches and unparsing gives the same attribute order. Values
/// are shared (`Arc`), so that identical attribute lines in many ads are
/// parsed and stored once, as HTCondor's own expression cache does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassAd {
    attrs: Vec<(Name, Slot)>,
}

impl ClassAd {
    pub fn new() -> ClassAd {
        ClassAd::default()
    }

    pub fn with_capacity(n: usize) -> ClassAd {
        ClassAd {
            attrs: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    fn position(&self, name: &[u8]) -> Result<usize, usize> {
        self.attrs.binary_search_by(|(k, _)| name_order(k, name))
    }

    /// Binds `name` to `expr`. An existing binding keeps its spelling and is
    /// given the new expression, as libclassad does.
    pub fn insert(&mut self, name: impl Into<Name>, expr: Expr) {
        self.insert_slot(name.into(), Slot::new(expr))
    }

    pub fn insert_slot(&mut self, name: Name, expr: Slot) {
        // Ads arrive mostly in order (the printers sort them this way), so
        // try the end first.
        match self.attrs.last() {
            None => return self.attrs.push((name, expr)),
            Some((last, _)) if name_order(last, &name) == Ordering::Less => {
                return self.attrs.push((name, expr))
            }
            _ => {}
        }
        match self.position(&name) {
            Ok(i) => self.attrs[i].1 = expr,
            Err(i) => self.attrs.insert(i, (name, expr)),
        }
    }

    pub fn insert_str(&mut self, name: &str, expr: Expr) {
        self.insert(name.as_bytes(), expr)
    }

    pub fn get(&self, name: &[u8]) -> Option<&Expr> {
        self.position(name).ok().map(|i| self.attrs[i].1.expr())
    }

    pub fn lookup(&self, name: &str) -> Option<&Expr> {
        self.get(name.as_bytes())
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Expr> {
        self.position(name)
            .ok()
            .map(|i| self.attrs.remove(i).1.into_expr())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Expr)> {
        self.attrs.iter().map(|(k, v)| (&k[..], v.expr()))
    }

    /// Builds an ad from bindings in any order, as inserting them one by
    /// one would (a repeated name keeps its first spelling and last value),
    /// but with one sort instead of an insertion per binding.
    pub fn from_pairs(mut pairs: Vec<(Name, Slot)>) -> ClassAd {
        let alphabetical = pairs
            .windows(2)
            .all(|w| ci_cmp(&w[0].0, &w[1].0) != Ordering::Greater);
        if alphabetical {
            // HTCondor's tools print names alphabetically; then a stable
            // sort by length alone gives the (length, name) order.
            pairs.sort_by_key(|p| p.0.len());
        } else {
            pairs.sort_by(|a, b| name_order(&a.0, &b.0));
        }
        let mut attrs: Vec<(Name, Slot)> = Vec::with_capacity(pairs.len());
        for (name, expr) in pairs {
            match attrs.last_mut() {
                Some(last) if name_order(&last.0, &name) == Ordering::Equal => last.1 = expr,
                _ => attrs.push((name, expr)),
            }
        }
        ClassAd { attrs }
    }

    /// How to order these names, in this order, as an ad keeps them, if
    /// they are all distinct (`None` otherwise): for the next ads of a
    /// dump, which carry the same names.
    pub(crate) fn sort_order(names: &[Name]) -> Option<AdOrder> {
        let mut perm: Vec<u32> = (0..names.len() as u32).collect();
        perm.sort_by(|&a, &b| name_order(&names[a as usize], &names[b as usize]));
        let distinct = perm
            .windows(2)
            .all(|w| name_order(&names[w[0] as usize], &names[w[1] as usize]) == Ordering::Less);
        distinct.then_some(AdOrder { perm })
    }

    /// Builds an ad from a reader's columns of names and values (bound
    /// pairwise), taking each out and leaving the columns' defaults, in the
    /// order [`ClassAd::sort_order`] found for the same names. Names the
    /// order does not fit (another count, other names) lose nothing: the
    /// ad is then built by sorting, as [`ClassAd::from_pairs`] does.
    pub(crate) fn from_columns(names: &mut [Name], slots: &mut [Slot], order: &AdOrder) -> ClassAd {
        let take = |i: usize, names: &mut [Name], slots: &mut [Slot]| {
            (std::mem::take(&mut names[i]), std::mem::take(&mut slots[i]))
        };
        let n = names.len().min(slots.len());
        if order.perm.len() != n {
            return ClassAd::from_pairs((0..n).map(|i| take(i, names, slots)).collect());
        }
        // Every index is below n: the order is a permutation of 0..n.
        let attrs: Vec<(Name, Slot)> = order
            .perm
            .iter()
            .map(|&i| take(i as usize, names, slots))
            .collect();
        let sorted = attrs
            .windows(2)
            .all(|w| name_order(&w[0].0, &w[1].0) == Ordering::Less);
        if sorted {
            ClassAd { attrs }
        } else {
            ClassAd::from_pairs(attrs)
        }
    }

    /// Adds every binding of `other`, replacing existing ones.
    pub fn update(&mut self, other: &ClassAd) {
        for (k, v) in &other.attrs {
            self.insert_slot(k.clone(), v.clone());
        }
    }
}

impl Expr {
    /// Calls `f` with every attribute reference in the expression,
    /// including those inside nested ads, lists and function arguments.
    pub fn for_each_attr_ref<'a>(&'a self, f: &mut impl FnMut(&'a AttrRef)) {
        match self {
            Expr::Attr(r) => {
                f(r);
                if let Some(b) = &r.base {
                    b.for_each_attr_ref(f);
                }
            }
            Expr::Unary(_, e) | Expr::Paren(e) => e.for_each_attr_ref(f),
            Expr::Binary(_, lr) => {
                lr.0.for_each_attr_ref(f);
                lr.1.for_each_attr_ref(f);
            }
            Expr::Cond(c) => {
                c.0.for_each_attr_ref(f);
                c.1.for_each_attr_ref(f);
                c.2.for_each_attr_ref(f);
            }
            Expr::Call(c) => c.args.iter().for_each(|a| a.for_each_attr_ref(f)),
            Expr::List(items) => items.iter().for_each(|a| a.for_each_attr_ref(f)),
            Expr::Ad(ad) => ad.iter().for_each(|(_, e)| e.for_each_attr_ref(f)),
            Expr::Undefined
            | Expr::Error
            | Expr::Bool(_)
            | Expr::Int(_)
            | Expr::Real(_)
            | Expr::Str(_)
            | Expr::AbsTime(_)
            | Expr::RelTime(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(names: &[&str]) -> Vec<(Name, Slot)> {
        let ad = crate::parser::parse_ad(
            format!(
                "[{}]",
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n} = {i}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
            .as_bytes(),
        )
        .unwrap();
        let mut by_input: Vec<(Name, Slot)> = ad.attrs.clone();
        // Back to the input's order, as a reader would hand them over.
        by_input.sort_by_key(|(n, _)| names.iter().position(|m| m.as_bytes() == n.as_bytes()));
        by_input
    }

    fn columns(p: &[(Name, Slot)]) -> (Vec<Name>, Vec<Slot>) {
        p.iter().cloned().unzip()
    }

    #[test]
    fn an_order_builds_the_same_ad_and_one_that_does_not_fit_loses_nothing() {
        let p = pairs(&["Zeta", "alpha", "Mid", "b"]);
        let want = ClassAd::from_pairs(p.clone());
        let (names, _) = columns(&p);
        let good = ClassAd::sort_order(&names).unwrap();
        let (mut n, mut v) = columns(&p);
        assert_eq!(
            ClassAd::from_columns(&mut n, &mut v, &good).attrs,
            want.attrs
        );
        // Everything was taken out.
        assert!(n.iter().all(|n| n.is_empty()));
        // Orders found for other names: the same count, or another.
        for other in [
            pairs(&["b", "Mid", "alpha", "Zeta"]),
            pairs(&["Zeta", "alpha", "Mid"]),
            pairs(&["Zeta", "alpha", "Mid", "b", "c"]),
            pairs(&["a", "bb", "ccc", "dddd"]),
        ] {
            let bad = ClassAd::sort_order(&columns(&other).0).unwrap();
            let (mut n, mut v) = columns(&p);
            assert_eq!(
                ClassAd::from_columns(&mut n, &mut v, &bad).attrs,
                want.attrs,
                "order for {other:?}"
            );
        }
        assert!(ClassAd::sort_order(&[Name::from("a"), Name::from("A")]).is_none());
    }
}
