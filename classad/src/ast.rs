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

    /// The permutation that orders `pairs` as an ad keeps them, if their
    /// names are all distinct (`None` otherwise).
    pub fn sort_order(pairs: &[(Name, Slot)]) -> Option<Vec<u32>> {
        let mut order: Vec<u32> = (0..pairs.len() as u32).collect();
        order.sort_by(|&a, &b| name_order(&pairs[a as usize].0, &pairs[b as usize].0));
        let distinct = order.windows(2).all(|w| {
            name_order(&pairs[w[0] as usize].0, &pairs[w[1] as usize].0) == Ordering::Less
        });
        distinct.then_some(order)
    }

    /// Builds an ad from pairs and the permutation [`ClassAd::sort_order`]
    /// computed for pairs with the same names in the same order. An
    /// `order` that is not a permutation of the pairs (a caller's mistake)
    /// loses nothing: the ad is then built by sorting, as
    /// [`ClassAd::from_pairs`] does.
    pub fn from_pairs_ordered(pairs: Vec<(Name, Slot)>, order: &[u32]) -> ClassAd {
        // Each pair is taken out once; Option<(Name, Slot)> has the pair's
        // size, so this collect reuses the vector's allocation.
        let mut slots: Vec<Option<(Name, Slot)>> = pairs.into_iter().map(Some).collect();
        let mut attrs = Vec::with_capacity(slots.len());
        let whole = order.len() == slots.len()
            && order.iter().all(
                |&i| match slots.get_mut(i as usize).and_then(Option::take) {
                    Some(p) => {
                        attrs.push(p);
                        true
                    }
                    None => false,
                },
            );
        if whole {
            return ClassAd { attrs };
        }
        attrs.extend(slots.into_iter().flatten());
        ClassAd::from_pairs(attrs)
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

    #[test]
    fn any_order_builds_the_same_ad_and_loses_nothing() {
        let p = pairs(&["Zeta", "alpha", "Mid", "b"]);
        let want = ClassAd::from_pairs(p.clone());
        let good = ClassAd::sort_order(&p).unwrap();
        assert_eq!(
            ClassAd::from_pairs_ordered(p.clone(), &good).attrs,
            want.attrs
        );
        for bad in [
            vec![0, 0, 1, 2],
            vec![0, 1, 2],
            vec![0, 1, 2, 9],
            vec![3, 3, 3, 3, 3],
        ] {
            assert_eq!(
                ClassAd::from_pairs_ordered(p.clone(), &bad).attrs,
                want.attrs,
                "order {bad:?}"
            );
        }
    }
}
