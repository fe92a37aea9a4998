//! Strided copy: the one kernel behind Transpose, Slice, Expand and Tile.
//!
//! All four ops write a contiguous output whose element at multi-index `i` is the input
//! element at `offset + Σ i_k · stride_k` (strides in elements, possibly negative for a
//! reversed Slice, 0 for a broadcast dim). Prepare resolves each op to that affine map;
//! [`Strided::new`] then drops unit dims and merges dims that are contiguous in the input,
//! so e.g. a Transpose that only moves whole blocks becomes a handful of `memcpy`s, and
//! eval is one odometer over the outer dims with a tight inner loop. The kernel moves
//! bytes, so every dtype (and int64 shape tensors folded at plan time) goes through it.

use super::Io;
use crate::tensor::{Shape, MAX_RANK};

/// An output-contiguous copy from an affine view of the input.
#[derive(Clone, Copy, Debug)]
pub struct Strided {
    dims: [usize; MAX_RANK],
    strides: [isize; MAX_RANK],
    rank: u8,
    /// First input element read (for the zero output index).
    offset: usize,
    /// Bytes per element.
    elem: u8,
}

impl Strided {
    /// The copy reading input element `offset + Σ i_k · strides[k]` for output index `i` of
    /// shape `out`, with `elem`-byte elements. `strides` has one entry per output dim.
    pub fn new(out: &Shape, strides: &[isize], offset: usize, elem: usize) -> Strided {
        let mut s = Strided {
            dims: [0; MAX_RANK],
            strides: [0; MAX_RANK],
            rank: 0,
            offset,
            elem: elem as u8,
        };
        if out.volume() == 0 {
            // Nothing to copy: keep one empty dim so eval sees an empty output.
            s.rank = 1;
            return s;
        }
        for (&d, &st) in out.dims().iter().zip(strides) {
            if d == 1 {
                continue;
            }
            let r = s.rank as usize;
            if r > 0 && s.strides[r - 1] == st * d as isize {
                // The previous dim steps exactly over this one: merge them.
                s.dims[r - 1] *= d;
                s.strides[r - 1] = st;
            } else {
                s.dims[r] = d;
                s.strides[r] = st;
                s.rank += 1;
            }
        }
        s
    }

    /// Number of dims left after merging (1 for a plain memcpy).
    pub fn merged_rank(&self) -> usize {
        self.rank as usize
    }

    /// Copies from `src` into the contiguous `dst`.
    pub fn copy(&self, src: &[u8], dst: &mut [u8]) {
        let e = self.elem as usize;
        let rank = self.rank as usize;
        if dst.is_empty() {
            return;
        }
        if rank == 0 {
            dst.copy_from_slice(&src[self.offset * e..][..e]);
            return;
        }
        if rank >= 2 && self.strides[rank - 2] == 1 {
            // The two innermost dims are a 2-D transpose of the input.
            match e {
                4 => return self.copy_tiled::<4>(src, dst),
                8 => return self.copy_tiled::<8>(src, dst),
                2 => return self.copy_tiled::<2>(src, dst),
                1 => return self.copy_tiled::<1>(src, dst),
                _ => {}
            }
        }
        let inner = self.dims[rank - 1];
        let step = self.strides[rank - 1];
        self.for_each_outer(1, dst, inner * e, |base, run| {
            copy_run(src, base, step, e, run)
        });
    }

    /// Calls `f(first_input_element, out_chunk)` for each contiguous output chunk of
    /// `chunk` bytes, walking the dims before the last `inner_dims` with an odometer.
    fn for_each_outer(
        &self,
        inner_dims: usize,
        dst: &mut [u8],
        chunk: usize,
        mut f: impl FnMut(usize, &mut [u8]),
    ) {
        let outer = self.rank as usize - inner_dims;
        let mut idx = [0usize; MAX_RANK];
        let mut base = self.offset as isize;
        for run in dst.chunks_exact_mut(chunk) {
            f(base as usize, run);
            for d in (0..outer).rev() {
                idx[d] += 1;
                base += self.strides[d];
                if idx[d] < self.dims[d] {
                    break;
                }
                base -= self.strides[d] * idx[d] as isize;
                idx[d] = 0;
            }
        }
    }

    /// Copy whose two innermost dims are a transpose: output `[rows, cols]` reads the
    /// input at `row + col * stride`. Going tile by tile keeps the strided reads of one
    /// tile within a few cache lines that the next rows reuse.
    fn copy_tiled<const E: usize>(&self, src: &[u8], dst: &mut [u8]) {
        const TILE: usize = 16;
        let rank = self.rank as usize;
        let (rows, cols) = (self.dims[rank - 2], self.dims[rank - 1]);
        let stride = self.strides[rank - 1];
        self.for_each_outer(2, dst, rows * cols * E, |base, plane| {
            for r0 in (0..rows).step_by(TILE) {
                for c0 in (0..cols).step_by(TILE) {
                    for r in r0..(r0 + TILE).min(rows) {
                        let row =
                            &mut plane[(r * cols + c0) * E..(r * cols + cols.min(c0 + TILE)) * E];
                        let start = (base + r) as isize + c0 as isize * stride;
                        gather_elems::<E>(src, start as usize, stride, row);
                    }
                }
            }
        });
    }
}

/// Copies one innermost run: `out.len() / e` elements starting at element `start`,
/// `step` elements apart.
#[inline]
fn copy_run(src: &[u8], start: usize, step: isize, e: usize, out: &mut [u8]) {
    match (step, e) {
        (1, _) => out.copy_from_slice(&src[start * e..start * e + out.len()]),
        (0, _) => {
            let v = &src[start * e..start * e + e];
            out.chunks_exact_mut(e).for_each(|c| c.copy_from_slice(v));
        }
        // Fixed-size element moves compile to single loads and stores.
        (_, 4) => gather_elems::<4>(src, start, step, out),
        (_, 8) => gather_elems::<8>(src, start, step, out),
        (_, 2) => gather_elems::<2>(src, start, step, out),
        (_, 1) => gather_elems::<1>(src, start, step, out),
        _ => {
            for (i, c) in out.chunks_exact_mut(e).enumerate() {
                let at = (start as isize + i as isize * step) as usize * e;
                c.copy_from_slice(&src[at..at + e]);
            }
        }
    }
}

#[inline(always)]
fn gather_elems<const E: usize>(src: &[u8], start: usize, step: isize, out: &mut [u8]) {
    for (i, c) in out.chunks_exact_mut(E).enumerate() {
        let at = (start as isize + i as isize * step) as usize * E;
        c.copy_from_slice(&src[at..at + E]);
    }
}

/// Runs a prepared strided copy from input 0 to output 0.
pub fn eval(s: &Strided, io: &mut Io) {
    let src = io.input(0).bytes;
    s.copy(src, io.outputs[0].bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(d: &[usize]) -> Shape {
        Shape::new(d).unwrap()
    }

    #[test]
    fn contiguous_view_merges_to_one_memcpy() {
        let s = Strided::new(&shape(&[2, 3, 4]), &[12, 4, 1], 0, 4);
        assert_eq!(s.merged_rank(), 1);
        // A block-moving transpose [a, b, c] -> [b, a, c] keeps two outer dims only.
        let t = Strided::new(&shape(&[3, 2, 4]), &[4, 12, 1], 0, 4);
        assert_eq!(t.merged_rank(), 3);
        let u = Strided::new(&shape(&[1, 3, 1, 2, 4]), &[0, 4, 0, 12, 1], 0, 4);
        assert_eq!(u.merged_rank(), 3);
    }

    #[test]
    fn reversed_and_broadcast_reads() {
        let src: [u8; 5] = [10, 11, 12, 13, 14];
        let mut dst = [0u8; 3];
        Strided::new(&shape(&[3]), &[-2], 4, 1).copy(&src, &mut dst);
        assert_eq!(dst, [14, 12, 10]);
        let mut dst = [0u8; 6];
        Strided::new(&shape(&[2, 3]), &[1, 0], 1, 1).copy(&src, &mut dst);
        assert_eq!(dst, [11, 11, 11, 12, 12, 12]);
    }
}
