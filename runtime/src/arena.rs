//! The caller's arena and the bump allocator that carves persistent plan data out of it.
//!
//! Layout of one arena (TFLM's head/tail split):
//!
//! ```text
//! | planned region: activations + kernel scratch (reused) | persistent tail: plan, folded constants |
//! ^ 16-byte aligned                                        ^ grows downwards from the end
//! ```
//!
//! Every allocation is rounded to [`ALIGN`] bytes and placed at an aligned offset from an
//! aligned base, so how many bytes a plan needs does not depend on where the arena sits in
//! memory: the figure computed on a host is exact on the device.

use crate::error::{Error, Result};
use core::mem::{align_of, size_of, MaybeUninit};

/// Alignment of every arena allocation and of the planned region.
pub const ALIGN: usize = 16;

/// Rounds `n` up to a multiple of [`ALIGN`].
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// A 16-byte-aligned byte array to use as an arena (in a `static`, on the stack, or boxed).
///
/// With this type the arena needs exactly `ArenaReport::total` bytes; a plain `[u8]` slice
/// may need up to 15 more for alignment.
#[repr(C, align(16))]
pub struct Arena<const N: usize>(pub [u8; N]);

impl<const N: usize> Arena<N> {
    /// A zeroed arena, usable in a `static`.
    pub const fn new() -> Self {
        Arena([0; N])
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Bump allocator handing out typed slices from the end of the arena.
pub struct Bump<'a> {
    /// Not yet handed out (starts aligned, length a multiple of `ALIGN`).
    free: &'a mut [u8],
    /// Bytes handed out so far.
    used: usize,
    /// Bytes the caller's slice had (for error messages).
    given: usize,
}

impl<'a> Bump<'a> {
    /// Takes the aligned, `ALIGN`-multiple part of `arena`.
    pub fn new(arena: &'a mut [u8]) -> Self {
        let given = arena.len();
        let skip = arena.as_ptr().align_offset(ALIGN).min(given);
        let usable = (given - skip) / ALIGN * ALIGN;
        let free = &mut arena[skip..skip + usable];
        Bump {
            free,
            used: 0,
            given,
        }
    }

    /// Bytes handed out from the tail so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes the caller gave.
    pub fn given(&self) -> usize {
        self.given
    }

    /// Takes `bytes` (rounded up to `ALIGN`) from the end.
    pub fn bytes(&mut self, bytes: usize) -> Result<&'a mut [u8]> {
        let rounded = align_up(bytes);
        if rounded > self.free.len() {
            return Err(Error::ArenaTooSmall {
                needed: self.used + rounded,
                got: self.given,
                exact: false,
            });
        }
        let free = core::mem::take(&mut self.free);
        let split = free.len() - rounded;
        let (head, tail) = free.split_at_mut(split);
        self.free = head;
        self.used += rounded;
        Ok(&mut tail[..bytes])
    }

    /// Takes a slice of `n` values of `T`, each set to `fill`.
    pub fn slice<T: Copy>(&mut self, n: usize, fill: T) -> Result<&'a mut [T]> {
        const { assert!(align_of::<T>() <= ALIGN) };
        let bytes = n.checked_mul(size_of::<T>()).ok_or(Error::Capacity {
            what: "plan size",
            limit: usize::MAX,
        })?;
        let raw = self.bytes(bytes)?;
        // SAFETY: `raw` is exclusively borrowed for 'a, starts ALIGN-aligned (the base is
        // aligned and every allocation is a multiple of ALIGN), ALIGN >= align_of::<T>(),
        // and holds exactly n * size_of::<T>() bytes. Viewed as MaybeUninit<T> no value is
        // read before each element is written below.
        let slots: &'a mut [MaybeUninit<T>] = unsafe {
            core::slice::from_raw_parts_mut(raw.as_mut_ptr().cast::<MaybeUninit<T>>(), n)
        };
        for s in slots.iter_mut() {
            s.write(fill);
        }
        // SAFETY: every element was initialised in the loop above; MaybeUninit<T> has the
        // layout of T.
        Ok(unsafe { core::slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<T>(), n) })
    }

    /// What is left, for the planned region.
    pub fn into_rest(self) -> &'a mut [u8] {
        self.free
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_does_not_depend_on_arena_address() {
        let mut backing = Arena::<256>::new();
        for shift in 0..16 {
            let mut bump = Bump::new(&mut backing.0[shift..]);
            let a = bump.slice::<u64>(3, 7).unwrap();
            assert_eq!(a, &[7, 7, 7]);
            assert_eq!(a.as_ptr() as usize % ALIGN, 0);
            bump.bytes(5).unwrap();
            assert_eq!(bump.used(), 32 + 16);
        }
    }

    #[test]
    fn overflow_is_a_typed_error() {
        let mut backing = Arena::<64>::new();
        let mut bump = Bump::new(&mut backing.0);
        bump.bytes(48).unwrap();
        assert_eq!(
            bump.bytes(17),
            Err(Error::ArenaTooSmall {
                needed: 80,
                got: 64,
                exact: false
            })
        );
        // a failed allocation leaves the allocator unchanged
        assert_eq!(bump.remaining(), 16);
    }
}
