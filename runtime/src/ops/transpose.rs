//! Transpose: a permutation of the dims, run as a [strided copy](super::strided).
//!
//! Output dim `k` is input dim `perm[k]`, so the output reads with the input's stride of
//! `perm[k]`. The strided kernel merges dims that stay adjacent, which turns the common
//! layout shuffles of exported attention blocks (moving whole contiguous blocks) into a few
//! `memcpy`s.

use super::strided::Strided;
use super::{Op, Prep};
use crate::error::Result;
use crate::tensor::{Shape, MAX_RANK};

/// Transpose(perm), default: reverse the dims.
pub fn transpose(p: &mut Prep) -> Result<Op> {
    p.arity(1, 1)?;
    let x = p.input(0)?;
    let rank = x.shape.rank();
    let mut perm = [0usize; MAX_RANK];
    match p.attr_ints::<MAX_RANK>("perm")? {
        Some(given) => {
            if given.len() != rank {
                return Err(p.attr_err("perm", "needs one entry per input dim"));
            }
            let mut seen = [false; MAX_RANK];
            for (k, &a) in given.iter().enumerate() {
                let a = usize::try_from(a)
                    .ok()
                    .filter(|&a| a < rank && !seen[a])
                    .ok_or_else(|| p.attr_err("perm", "is not a permutation of the dims"))?;
                seen[a] = true;
                perm[k] = a;
            }
        }
        None => (0..rank).for_each(|k| perm[k] = rank - 1 - k),
    }
    let in_strides = x.shape.strides();
    let out = Shape::from_iter(perm[..rank].iter().map(|&a| x.shape.dim(a)))?;
    let mut strides = [0isize; MAX_RANK];
    for k in 0..rank {
        strides[k] = in_strides[perm[k]] as isize;
    }
    p.output(0, x.dtype, out)?;
    Ok(Op::Strided(Strided::new(
        &out,
        &strides[..rank],
        0,
        x.dtype.size(),
    )))
}
