//! The expression tree and the ClassAd record, as libclassad shapes them.
//!
//! Strings and names are byte strings: ClassAd strings may hold any byte but
//! NUL (an octal escape such as `\377` is legal), so `Vec<u8>` rather than
//! `String` keeps every value exact.

use std::cmp::Ordering;

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
    Str(Vec<u8>),
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
        Expr::Str(s.as_bytes().to_vec())
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

/// Case-insensitive name equality, as every ClassAd lookup uses.
pub fn name_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}

/// A ClassAd: attribute names (case-insensitive, unique) bound to expressions.
///
/// Stored as libclassad stores it, a vector sorted by [`name_order`]: lookups
/// are binary searches and unparsing gives the same attribute order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClassAd {
    attrs: Vec<(Vec<u8>, Expr)>,
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
    pub fn insert(&mut self, name: Vec<u8>, expr: Expr) {
        // Ads arrive mostly in order (the printers sort them this way), so
        // try the end first.
        if let Some((last, _)) = self.attrs.last() {
            if name_order(last, &name) == Ordering::Less {
                self.attrs.push((name, expr));
                return;
            }
        } else {
            self.attrs.push((name, expr));
            return;
        }
        match self.position(&name) {
            Ok(i) => self.attrs[i].1 = expr,
            Err(i) => self.attrs.insert(i, (name, expr)),
        }
    }

    pub fn insert_str(&mut self, name: &str, expr: Expr) {
        self.insert(name.as_bytes().to_vec(), expr)
    }

    pub fn get(&self, name: &[u8]) -> Option<&Expr> {
        self.position(name).ok().map(|i| &self.attrs[i].1)
    }

    pub fn lookup(&self, name: &str) -> Option<&Expr> {
        self.get(name.as_bytes())
    }

    pub fn remove(&mut self, name: &[u8]) -> Option<Expr> {
        self.position(name).ok().map(|i| self.attrs.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Expr)> {
        self.attrs.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Adds every binding of `other`, replacing existing ones.
    pub fn update(&mut self, other: &ClassAd) {
        for (k, v) in other.iter() {
            self.insert(k.to_vec(), v.clone());
        }
    }
}
