//! The caller's arena and the bump allocator that carves persistent plan data out of it.
//!
//! Layout of one arena (TFLM's head/tail split):
//!
//! ```text
//! | planned region: activations + kernel scratch (reused) | persistent tail: plan, folded constants |
//! ^ 16-byte aligned                                        ^ grows downwards from the end
//! ```
//!
//! While planning, the head first holds working tables sized for every node and tensor,
//! whose final size only planning itself finds (fusion removes steps, and the tensors they
//! read); what is kept is then copied to the tail at its exact size, or compacted to the
//! start of the head's first table, and the rest of the head returns to the planned region
//! ([`Bump::with_head`], [`Bump::into_region`]). So the arena needs the persistent tail plus
//! the larger of those working tables and the kept head table with the planned region, like
//! TFLM's temporary allocations.
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

/// Bump allocator handing out typed slices from the end of the arena, after lending its
/// head for planning's working tables.
pub struct Bump<'a> {
    /// Start of the aligned part of the arena, with the provenance of all of it: the head
    /// and then `free` start here, and [`Bump::into_region`] re-joins them through it.
    base: *mut u8,
    /// Bytes of the head lent by [`Bump::with_head`] (a multiple of `ALIGN`).
    head: usize,
    /// Not yet handed out: right after the head, length a multiple of `ALIGN`.
    free: &'a mut [u8],
    /// Bytes handed out so far.
    used: usize,
    /// Bytes the caller's slice had (for error messages).
    given: usize,
}

impl<'a> Bump<'a> {
    /// Takes the aligned, `ALIGN`-multiple part of `arena` and lends its first `head` bytes
    /// (rounded up to `ALIGN`), aligned, for working tables until [`Bump::into_region`]
    /// takes them back.
    pub fn with_head(arena: &'a mut [u8], head: usize) -> Result<(Self, &'a mut [u8])> {
        let given = arena.len();
        let skip = arena.as_ptr().align_offset(ALIGN).min(given);
        let usable = (given - skip) / ALIGN * ALIGN;
        let head = align_up(head.min(isize::MAX as usize));
        if head > usable {
            return Err(Error::ArenaTooSmall {
                needed: head,
                got: given,
                exact: false,
            });
        }
        let base = arena[skip..].as_mut_ptr();
        // SAFETY: `base` points `skip` bytes into `arena`, which is exclusively borrowed for
        // 'a and has at least `skip + usable` bytes; every later slice of it derives from
        // this one, so `base` keeps its provenance (see `into_region`).
        let all = unsafe { core::slice::from_raw_parts_mut(base, usable) };
        let (lent, free) = all.split_at_mut(head);
        let bump = Bump {
            base,
            head,
            free,
            used: 0,
            given,
        };
        Ok((bump, lent))
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
                needed: self.head + self.used + rounded,
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
        let bytes = n.checked_mul(size_of::<T>()).ok_or(Error::Capacity {
            what: "plan size",
            limit: usize::MAX,
        })?;
        Ok(typed(self.bytes(bytes)?, n, fill))
    }

    /// The planned region: what is left of the arena, from the start of `spare` on. The
    /// head lent by [`Bump::with_head`] must come back here but for a table the caller keeps
    /// at its start: `spare` is the unused rest of that table (possibly empty) and `rest`
    /// the head after it, from the table's `ALIGN`ed end on (no other table laid over them
    /// may outlive this). The region's bytes are zeroed where the head was.
    pub fn into_region<T>(self, spare: &'a mut [T], rest: &'a mut [u8]) -> &'a mut [u8] {
        let base = self.base as usize;
        let rest_start = rest.as_ptr() as usize;
        let spare_start = spare.as_ptr() as usize;
        let spare_end = spare_start + size_of_val(spare);
        assert!(
            rest_start + rest.len() == base + self.head
                && rest_start >= base
                && (spare.is_empty()
                    || (spare_start >= base
                        && spare_end <= rest_start
                        && align_up(spare_end - base) == rest_start - base)),
            "not the head this arena lent"
        );
        let start = if spare.is_empty() {
            rest_start
        } else {
            spare_start
        } - base;
        let len = self.head + self.free.len() - start;
        // SAFETY: `base` has the provenance of the whole aligned arena (`with_head`), whose
        // first `head + free.len()` bytes are the head followed by `free` (the tail is only
        // ever cut from `free`'s end). From `start` on, the head is `spare`, its padding up
        // to `ALIGN` (which no slice covers) and `rest` (checked above: they end where the
        // head does); those and `free` are exclusively borrowed for 'a and consumed here,
        // so the region aliases nothing still usable. The head's bytes held typed tables
        // (padding bytes may be uninitialised), so they are zeroed through the raw pointer
        // before becoming `u8`s.
        unsafe {
            let region = self.base.add(start);
            core::ptr::write_bytes(region, 0, self.head - start);
            core::slice::from_raw_parts_mut(region, len)
        }
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.free.len()
    }
}

/// `n` values of `T`, each set to `fill`, laid over `raw`: `n * size_of::<T>()` bytes
/// starting `ALIGN`-aligned (a [`Bump`] allocation or its head).
pub(crate) fn typed<T: Copy>(raw: &mut [u8], n: usize, fill: T) -> &mut [T] {
    const { assert!(align_of::<T>() <= ALIGN) };
    assert!(
        raw.as_ptr().align_offset(ALIGN) == 0 && n.checked_mul(size_of::<T>()) == Some(raw.len()),
        "arena slice not laid out for this table"
    );
    // SAFETY: `raw` is exclusively borrowed for the returned lifetime, ALIGN-aligned (checked)
    // with ALIGN >= align_of::<T>(), and holds exactly n * size_of::<T>() bytes (checked).
    // Viewed as MaybeUninit<T> no value is read before each element is written below.
    let slots: &mut [MaybeUninit<T>] =
        unsafe { core::slice::from_raw_parts_mut(raw.as_mut_ptr().cast::<MaybeUninit<T>>(), n) };
    for s in slots.iter_mut() {
        s.write(fill);
    }
    // SAFETY: every element was initialised in the loop above; MaybeUninit<T> has the
    // layout of T.
    unsafe { core::slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<T>(), n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_does_not_depend_on_arena_address() {
        let mut backing = Arena::<256>::new();
        for shift in 0..16 {
            let (mut bump, _) = Bump::with_head(&mut backing.0[shift..], 0).unwrap();
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
        let (mut bump, _) = Bump::with_head(&mut backing.0, 0).unwrap();
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

    #[test]
    fn head_counts_against_the_tail_and_too_big_a_head_is_a_typed_error() {
        let mut backing = Arena::<64>::new();
        assert!(matches!(
            Bump::with_head(&mut backing.0, 65),
            Err(Error::ArenaTooSmall {
                needed: 80,
                got: 64,
                exact: false
            })
        ));
        let (mut bump, head) = Bump::with_head(&mut backing.0, 17).unwrap();
        assert_eq!(head.len(), 32);
        bump.bytes(32).unwrap();
        assert_eq!(
            bump.bytes(1),
            Err(Error::ArenaTooSmall {
                needed: 80,
                got: 64,
                exact: false
            })
        );
    }

    /// The head lent for working tables comes back as the start of the planned region,
    /// zeroed, which then ends where the tail begins, wherever the arena sits.
    #[test]
    fn head_returns_to_the_planned_region() {
        let mut backing = Arena::<256>::new();
        for shift in 0..16 {
            let arena = &mut backing.0[shift..];
            let usable = (arena.len() - (16 - shift) % 16) / ALIGN * ALIGN;
            let (mut bump, head) = Bump::with_head(arena, 40).unwrap();
            assert_eq!((head.len(), head.as_ptr() as usize % ALIGN), (48, 0));
            let work = typed(&mut head[..40], 5, 9u64);
            work[4] = 11;
            let tail = bump.slice::<u64>(3, 7).unwrap();
            let tail_start = tail.as_ptr() as usize;
            let head_start = head.as_ptr() as usize;
            let region = bump.into_region::<u8>(&mut [], head);
            assert_eq!(region.as_ptr() as usize, head_start);
            assert_eq!(region.len(), usable - 32);
            assert_eq!(region.as_ptr() as usize + region.len(), tail_start);
            // The working table's bytes are the region's first bytes, zeroed, and the whole
            // region is writable without touching the tail.
            assert!(region[..48].iter().all(|&b| b == 0));
            region.fill(0xAB);
            assert_eq!(tail, &[7, 7, 7]);
        }
    }

    /// A table kept at the head's start stays as it is; the region starts right after its
    /// last kept entry, its spare entries and padding included.
    #[test]
    fn a_table_kept_at_the_head_start_precedes_the_region() {
        let mut backing = Arena::<256>::new();
        for shift in 0..16 {
            let arena = &mut backing.0[shift..];
            let usable = (arena.len() - (16 - shift) % 16) / ALIGN * ALIGN;
            let (mut bump, head) = Bump::with_head(arena, 64).unwrap();
            let (table, rest) = head.split_at_mut(32);
            let table = typed(&mut table[..24], 3, [5u16; 4]);
            rest.fill(1);
            let tail = bump.slice::<u64>(2, 7).unwrap();
            let (kept, spare) = table.split_at_mut(1);
            let region = bump.into_region(spare, rest);
            assert_eq!(region.as_ptr() as usize, kept.as_ptr() as usize + 8);
            assert_eq!(region.len(), usable - 16 - 8);
            assert!(region[..56].iter().all(|&b| b == 0));
            region.fill(0xAB);
            assert_eq!((kept, tail), (&mut [[5u16; 4]][..], &mut [7, 7][..]));
        }
    }

    #[test]
    #[should_panic(expected = "not the head this arena lent")]
    fn another_slice_is_not_taken_as_the_head() {
        let mut backing = Arena::<64>::new();
        let mut other = Arena::<16>::new();
        let (bump, _head) = Bump::with_head(&mut backing.0, 16).unwrap();
        let _ = bump.into_region::<u8>(&mut [], &mut other.0);
    }

    #[test]
    #[should_panic(expected = "not the head this arena lent")]
    fn a_spare_table_apart_from_the_rest_is_refused() {
        let mut backing = Arena::<128>::new();
        let (bump, head) = Bump::with_head(&mut backing.0, 64).unwrap();
        let (table, rest) = head.split_at_mut(16);
        // 8 bytes of spare entries, then a 16-byte gap before `rest`.
        let (_, rest) = rest.split_at_mut(16);
        let _ = bump.into_region(&mut table[8..], rest);
    }
}
