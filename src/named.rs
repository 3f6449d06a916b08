//! Enums whose values appear in reports (`server-fin`, `closed-early`, `mid-stream`, ...).
//!
//! Each such enum lists its report names once, in [`named_enum!`]; the writers, serde and the
//! per-value tallies all take them from there, so a name is never spelled twice.

/// An enum with a fixed report name per value.
pub trait Named: Copy + Eq + 'static {
    /// Every value, in declaration order (which is also the order reports list them in).
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    /// Position in [`Named::ALL`].
    fn index(self) -> usize;
}

/// Implements [`Named`], `Display` and `Serialize` (as the name) for an enum.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $crate::named::Named for $ty {
            const ALL: &'static [$ty] = &[$($ty::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad($crate::named::Named::as_str(*self))
            }
        }
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($crate::named::Named::as_str(*self))
            }
        }
    };
}

/// How many times each value of a [`Named`] enum was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally<E: Named> {
    counts: Vec<u64>,
    _values: std::marker::PhantomData<E>,
}

impl<E: Named> Default for Tally<E> {
    fn default() -> Tally<E> {
        Tally {
            counts: vec![0; E::ALL.len()],
            _values: std::marker::PhantomData,
        }
    }
}

impl<E: Named> Tally<E> {
    pub fn add(&mut self, value: E) {
        self.counts[value.index()] += 1;
    }

    pub fn get(&self, value: E) -> u64 {
        self.counts[value.index()]
    }

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: &Tally<E>) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    /// The values seen, with their counts, in alphabetical order of their names.
    pub fn by_name(&self) -> Vec<(&'static str, u64)> {
        let mut seen: Vec<(&'static str, u64)> = E::ALL
            .iter()
            .filter(|value| self.get(**value) > 0)
            .map(|value| (value.as_str(), self.get(*value)))
            .collect();
        seen.sort_unstable();
        seen
    }
}
