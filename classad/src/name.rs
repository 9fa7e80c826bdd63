//! Attribute names. A pool uses a few hundred distinct names, repeated in
//! every one of its ads, so names read from tool output are interned once
//! for the life of the process and then copied as plain pointers (no
//! allocation, no reference counting per ad). The table is bounded: past
//! its limit, names are ordinary shared allocations, so hostile input
//! cannot grow it without end.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustc_hash::FxHashSet;

/// Sixteen bytes: the shared form is a thin pointer, so it fits beside
/// the static slice's non-null pointer (pairs of a name and a value are
/// moved many times while an ad is read).
#[derive(Clone)]
enum Repr {
    Static(&'static [u8]),
    Shared(Arc<Box<[u8]>>),
}

/// An attribute name (its spelling; comparisons in ads ignore case).
#[derive(Clone)]
pub struct Name(Repr);

/// Distinct names kept for the life of the process.
const MAX_INTERNED: usize = 65_536;
/// Longer names are never interned.
const MAX_INTERNED_LEN: usize = 256;

fn table() -> &'static Mutex<FxHashSet<&'static [u8]>> {
    static TABLE: OnceLock<Mutex<FxHashSet<&'static [u8]>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(FxHashSet::default()))
}

impl Name {
    /// A name of its own (not interned).
    pub fn new(bytes: &[u8]) -> Name {
        Name(Repr::Shared(Arc::new(bytes.into())))
    }

    /// The process-wide copy of a name, made on first use.
    pub fn interned(bytes: &[u8]) -> Name {
        if bytes.len() > MAX_INTERNED_LEN {
            return Name::new(bytes);
        }
        let mut t = table().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = t.get(bytes) {
            return Name(Repr::Static(s));
        }
        if t.len() >= MAX_INTERNED {
            return Name::new(bytes);
        }
        let s: &'static [u8] = Box::leak(bytes.to_vec().into_boxed_slice());
        t.insert(s);
        Name(Repr::Static(s))
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// The process-wide copy, if this name is one.
    pub(crate) fn as_interned(&self) -> Option<&'static [u8]> {
        match self.0 {
            Repr::Static(s) => Some(s),
            Repr::Shared(_) => None,
        }
    }

    /// A name from its process-wide copy ([`Name::as_interned`]).
    pub(crate) fn from_interned(s: &'static [u8]) -> Name {
        Name(Repr::Static(s))
    }

    /// The same stored copy (for interned names: the same name).
    pub fn same_copy(&self, other: &Name) -> bool {
        std::ptr::eq(self.as_bytes(), other.as_bytes())
    }
}

impl Default for Name {
    /// The empty name, which no ad binds: what a taken name leaves behind.
    fn default() -> Name {
        Name(Repr::Static(b""))
    }
}

impl std::ops::Deref for Name {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl From<&[u8]> for Name {
    fn from(b: &[u8]) -> Name {
        Name::new(b)
    }
}

impl From<Vec<u8>> for Name {
    fn from(b: Vec<u8>) -> Name {
        Name(Repr::Shared(Arc::new(b.into_boxed_slice())))
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s.as_bytes())
    }
}

impl<const N: usize> From<&[u8; N]> for Name {
    fn from(b: &[u8; N]) -> Name {
        Name::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_are_one_copy() {
        let a = Name::interned(b"RequestMemory");
        let b = Name::interned(b"RequestMemory");
        assert!(a.same_copy(&b));
        assert_eq!(a, Name::new(b"RequestMemory"));
        assert!(!a.same_copy(&Name::new(b"RequestMemory")));
        assert_eq!(std::mem::size_of::<Name>(), 16);
    }
}
