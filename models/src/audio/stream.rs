//! Streaming framing and stacking: audio arrives in chunks of any size (a DMA half-buffer,
//! a WAV read, one sample at a time) and a feature vector comes out as soon as its last frame
//! is complete, never later, and always the same vectors whatever the chunking.
//!
//! The state is fixed-size (~7 KB, no heap): the not yet consumed tail of the audio (less
//! than one frame), the FFT scratch, and the vector being stacked. After each frame the tail
//! keeps its last `FRAME_LEN - HOP` samples, which the next frame overlaps.

use super::logmel::LogMel;
use super::{FEATURE_DIM, FRAME_LEN, HOP, N_FFT, N_MELS, STACK};

/// The streaming front-end. Frame `i` covers samples `[i * HOP, i * HOP + FRAME_LEN)` of
/// everything pushed since [`FrontEnd::new`] or [`FrontEnd::reset`]; feature vector `j`
/// holds frames `4j .. 4j + 4`, frame-major.
#[derive(Clone, Debug)]
pub struct FrontEnd {
    tables: LogMel,
    /// Audio not yet framed, `pending[..len]`.
    pending: [i16; FRAME_LEN],
    len: usize,
    fft: [f32; N_FFT],
    /// The vector being stacked; `frames` of its `STACK` frames are filled.
    stacked: [f32; FEATURE_DIM],
    frames: usize,
}

impl Default for FrontEnd {
    fn default() -> Self {
        Self::new()
    }
}

impl FrontEnd {
    /// A front-end at the start of a stream (computes its tables).
    pub fn new() -> FrontEnd {
        FrontEnd {
            tables: LogMel::new(),
            pending: [0; FRAME_LEN],
            len: 0,
            fft: [0.0; N_FFT],
            stacked: [0.0; FEATURE_DIM],
            frames: 0,
        }
    }

    /// Starts a new stream: drops buffered audio and any partly stacked vector.
    pub fn reset(&mut self) {
        self.len = 0;
        self.frames = 0;
    }

    /// Consumes samples from the front of `samples` until a feature vector completes or the
    /// samples run out. Returns how many samples were consumed and the vector, if one
    /// completed; call again with the rest of the chunk until it is consumed.
    ///
    /// ```
    /// use edgetrim_models::audio::{FrontEnd, FEATURE_DIM};
    /// let mut front = FrontEnd::new();
    /// let chunk = [0i16; 1000]; // 62.5 ms: frames 0-3 complete after 880 samples
    /// let (used, vector) = front.push(&chunk);
    /// assert_eq!(used, 880);
    /// assert_eq!(vector.map(|v| v.len()), Some(FEATURE_DIM));
    /// assert_eq!(front.push(&chunk[used..]), (120, None));
    /// ```
    pub fn push(&mut self, samples: &[i16]) -> (usize, Option<&[f32; FEATURE_DIM]>) {
        let mut used = 0;
        loop {
            let take = (FRAME_LEN - self.len).min(samples.len() - used);
            self.pending[self.len..self.len + take].copy_from_slice(&samples[used..used + take]);
            self.len += take;
            used += take;
            if self.len < FRAME_LEN {
                return (used, None);
            }
            let out = &mut self.stacked[self.frames * N_MELS..(self.frames + 1) * N_MELS];
            self.tables.frame(&self.pending, &mut self.fft, out);
            self.pending.copy_within(HOP.., 0);
            self.len = FRAME_LEN - HOP;
            self.frames += 1;
            if self.frames == STACK {
                self.frames = 0;
                return (used, Some(&self.stacked));
            }
        }
    }

    /// Pushes a whole chunk, handing each completed feature vector to `each` in order.
    /// Returns how many vectors completed.
    pub fn push_all(
        &mut self,
        mut samples: &[i16],
        mut each: impl FnMut(&[f32; FEATURE_DIM]),
    ) -> usize {
        let mut count = 0;
        while !samples.is_empty() {
            let (used, vector) = self.push(samples);
            if let Some(v) = vector {
                each(v);
                count += 1;
            }
            samples = &samples[used..];
        }
        count
    }
}
