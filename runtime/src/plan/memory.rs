//! Offline memory planning: where each buffer lives in the arena.
//!
//! Every activation and every kernel scratch buffer is a [`Buf`] with a size and a lifetime
//! `[first, last]` in execution steps. Two buffers whose lifetimes intersect must not
//! overlap in memory. The plan is TFLM's greedy-by-size heuristic: take buffers from the
//! largest down and give each the lowest offset that does not collide with an already placed
//! buffer alive at the same time. Placed buffers are kept in a linked list sorted by offset
//! (an index inside each `Buf`), so placing `n` buffers costs O(n²) time and no memory
//! beyond the buffers themselves — the planner runs in no_std with no scratch.
//!
//! The quality yardstick is the liveness lower bound: the largest total size of buffers
//! alive at any one step. No placement can need less; greedy-by-size usually lands within a
//! few percent of it (tests pin both numbers on real models).

/// No index (end of list / not placed).
const NONE: u32 = u32::MAX;

/// One buffer to place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    /// Bytes (already rounded to the arena alignment by the caller).
    pub size: usize,
    /// First step that writes it.
    pub first: u32,
    /// Last step that reads it.
    pub last: u32,
    /// Offset in the planned region, valid after [`plan`].
    pub offset: usize,
    next: u32,
    placed: bool,
}

impl Buf {
    /// A buffer alive from step `first` to step `last` inclusive.
    pub const fn new(size: usize, first: u32, last: u32) -> Buf {
        Buf {
            size,
            first,
            last,
            offset: 0,
            next: NONE,
            placed: false,
        }
    }

    fn alive_with(&self, other: &Buf) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Result of [`plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemoryPlan {
    /// Bytes the planned region needs (end of the highest buffer).
    pub peak: usize,
    /// Largest total size of buffers alive at one step: no plan can need less.
    pub lower_bound: usize,
}

/// Places every buffer (sets `offset`) and returns the region size.
pub fn plan(bufs: &mut [Buf]) -> MemoryPlan {
    // Empty buffers (unused scratch slots, tensors fused away: most of a QDQ graph's) take
    // no memory: they sit at offset 0, out of the list, and cost the O(n²) search nothing.
    // Placed last by size, they never moved another buffer before either.
    let mut to_place = 0;
    for b in bufs.iter_mut() {
        b.placed = b.size == 0;
        b.next = NONE;
        if b.placed {
            b.offset = 0;
        } else {
            to_place += 1;
        }
    }
    let mut head = NONE;
    for _ in 0..to_place {
        // Largest unplaced buffer; ties go to the earliest, then the lowest index, so the
        // plan is deterministic.
        let mut pick = NONE;
        for (i, b) in bufs.iter().enumerate() {
            if b.placed {
                continue;
            }
            let better = pick == NONE || {
                let p = &bufs[pick as usize];
                (b.size, core::cmp::Reverse(b.first)) > (p.size, core::cmp::Reverse(p.first))
            };
            if better {
                pick = i as u32;
            }
        }
        let this = bufs[pick as usize];
        // Walk placed buffers in offset order: the first gap below a buffer that is alive at
        // the same time and starts far enough above `candidate` fits (later ones start higher).
        let mut candidate = 0usize;
        let mut cur = head;
        while cur != NONE {
            let p = &bufs[cur as usize];
            if p.alive_with(&this) {
                if p.offset >= candidate.saturating_add(this.size) {
                    break;
                }
                candidate = candidate.max(p.offset.saturating_add(p.size));
            }
            cur = p.next;
        }
        bufs[pick as usize].offset = candidate;
        bufs[pick as usize].placed = true;
        // Insert into the list, keeping it sorted by offset.
        if head == NONE || bufs[head as usize].offset > candidate {
            bufs[pick as usize].next = head;
            head = pick;
        } else {
            let mut after = head;
            while bufs[after as usize].next != NONE
                && bufs[bufs[after as usize].next as usize].offset <= candidate
            {
                after = bufs[after as usize].next;
            }
            bufs[pick as usize].next = bufs[after as usize].next;
            bufs[after as usize].next = pick;
        }
    }
    MemoryPlan {
        peak: bufs
            .iter()
            .map(|b| b.offset.saturating_add(b.size))
            .max()
            .unwrap_or(0),
        lower_bound: lower_bound(bufs),
    }
}

/// Largest total size of buffers alive at one step. The set of live buffers only grows
/// at a step where one starts, so only those steps are summed over (the sizes of empty
/// buffers add nothing either way).
pub fn lower_bound(bufs: &[Buf]) -> usize {
    let sized = || bufs.iter().filter(|b| b.size > 0);
    sized()
        .map(|s| {
            sized()
                .filter(|b| b.first <= s.first && s.first <= b.last)
                .fold(0usize, |acc, b| acc.saturating_add(b.size))
        })
        .max()
        .unwrap_or(0)
}

/// The first pair of buffers that are alive together and overlap in memory, if any
/// (the planner's correctness check, as TFLM's `DoAnyBuffersOverlap`).
pub fn find_overlap(bufs: &[Buf]) -> Option<(usize, usize)> {
    for (i, a) in bufs.iter().enumerate() {
        for (j, b) in bufs.iter().enumerate().skip(i + 1) {
            let mem = a.offset < b.offset + b.size && b.offset < a.offset + a.size;
            if a.size > 0 && b.size > 0 && mem && a.alive_with(b) {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_reuses_memory_exactly() {
        // a -> b -> c -> d, each buffer read only by the next step: two buffers ping-pong.
        let mut bufs = [
            Buf::new(64, 0, 1),
            Buf::new(64, 1, 2),
            Buf::new(64, 2, 3),
            Buf::new(64, 3, 4),
        ];
        let p = plan(&mut bufs);
        assert_eq!(
            p,
            MemoryPlan {
                peak: 128,
                lower_bound: 128
            }
        );
        let offsets: [usize; 4] = core::array::from_fn(|i| bufs[i].offset);
        assert_eq!(offsets, [0, 64, 0, 64]);
        assert_eq!(find_overlap(&bufs), None);
    }

    #[test]
    fn empty_buffers_sit_at_zero_and_move_no_other() {
        let sized = [
            Buf::new(96, 0, 1),
            Buf::new(32, 1, 3),
            Buf::new(16, 2, 3),
            Buf::new(128, 3, 4),
        ];
        let mut alone = sized;
        let p = plan(&mut alone);
        let mut mixed = [
            Buf::new(0, 0, 4),
            sized[0],
            Buf::new(0, 1, 1),
            sized[1],
            sized[2],
            Buf::new(0, 2, 4),
            sized[3],
        ];
        mixed[5].offset = 77; // a stale offset from an earlier plan
        assert_eq!(plan(&mut mixed), p);
        let offsets: [usize; 7] = core::array::from_fn(|i| mixed[i].offset);
        let [a, b, c, d] = alone.map(|b| b.offset);
        assert_eq!(offsets, [0, a, 0, b, c, 0, d]);
        assert_eq!(find_overlap(&mixed), None);
    }

    #[test]
    fn big_buffers_first_small_ones_fill_gaps() {
        // TFLM's greedy planner test shape: sizes and lifetimes pinned with exact offsets.
        let mut bufs = [
            Buf::new(96, 0, 1),
            Buf::new(32, 1, 3),
            Buf::new(16, 2, 3),
            Buf::new(128, 3, 4),
            Buf::new(48, 0, 4),
        ];
        let p = plan(&mut bufs);
        let offsets: [usize; 5] = core::array::from_fn(|i| bufs[i].offset);
        assert_eq!(offsets, [0, 176, 208, 0, 128]);
        assert_eq!(find_overlap(&bufs), None);
        assert_eq!(
            p,
            MemoryPlan {
                peak: 224,
                lower_bound: 32 + 16 + 128 + 48
            }
        );
    }

    #[test]
    fn overlap_check_finds_a_bad_plan() {
        let mut bufs = [Buf::new(32, 0, 2), Buf::new(32, 1, 3)];
        plan(&mut bufs);
        bufs[1].offset = 16;
        assert_eq!(find_overlap(&bufs), Some((0, 1)));
    }

    proptest::proptest! {
        #[test]
        fn random_plans_never_overlap(spec in proptest::collection::vec((0usize..64, 0u32..20, 0u32..6), 0..40)) {
            let mut bufs: heapless::Vec<Buf, 40> = spec.iter().map(|&(s, f, len)| Buf::new(s * 16, f, f + len)).collect();
            let p = plan(&mut bufs);
            proptest::prop_assert_eq!(find_overlap(&bufs), None);
            proptest::prop_assert!(p.peak >= p.lower_bound);
            // The bound summed at every step, not only where a buffer starts.
            let every_step = (0..26u32)
                .map(|t| bufs.iter().filter(|b| b.first <= t && t <= b.last).map(|b| b.size).sum())
                .max()
                .unwrap_or(0);
            proptest::prop_assert_eq!(p.lower_bound, every_step);
        }
    }
}
