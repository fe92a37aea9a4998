//! Letterbox pre-processing: fit a camera frame into a square network input.
//!
//! YOLO detectors are trained on square inputs where the image is scaled to fit while keeping
//! its aspect ratio and the border is filled with gray 114 (Ultralytics' convention). Feeding a
//! frame any other way (stretching, another pad colour, another resampling) costs accuracy, so
//! every caller — the CLI on video frames, the firmware on camera frames — goes through
//! [`letterbox`], which writes the normalised NCHW tensor in place (no allocation) and returns
//! the [`Letterbox`] transform that maps detections back to frame pixels.
//!
//! Resampling is bilinear with half-pixel centres, like OpenCV's `INTER_LINEAR` that the
//! training pipeline uses; at scale 1 it copies pixels exactly. The padding splits like
//! Ultralytics' `LetterBox`: the odd pixel goes to the bottom / right.

use crate::{check_len, Error};

/// The gray that fills the border, normalised: Ultralytics pads with 114 of 255.
pub const PAD_VALUE: f32 = 114.0 / 255.0;

/// A borrowed 8-bit source frame.
#[derive(Clone, Copy, Debug)]
pub enum Image<'a> {
    /// Interleaved RGB, 3 bytes per pixel, rows without padding (`width * height * 3` bytes).
    Rgb8 {
        /// `R G B R G B ...`, row-major.
        pixels: &'a [u8],
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// Planar YUV 4:2:0 (Y4M `C420`, I420), BT.601: a full-resolution luma plane and two
    /// chroma planes of `ceil(width / 2) * ceil(height / 2)` bytes.
    Yuv420 {
        /// Luma plane, `width * height` bytes.
        y: &'a [u8],
        /// Cb plane.
        u: &'a [u8],
        /// Cr plane.
        v: &'a [u8],
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Which code values the planes use.
        range: YuvRange,
    },
}

/// Which YCbCr code values a frame uses. Both are BT.601; a frame decoded with the wrong one
/// comes out washed out (full read as limited: crushed blacks, clipped whites) or flat
/// (limited read as full), which a detector trained on correct colours pays for in accuracy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YuvRange {
    /// Y in 16..=235, Cb and Cr in 16..=240: what ffmpeg writes to Y4M by default, and what
    /// Y4M means without an `XCOLORRANGE` tag.
    #[default]
    Limited,
    /// Y, Cb and Cr in 0..=255, as in JPEG (Y4M `XCOLORRANGE=FULL`).
    Full,
}

impl Image<'_> {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        match *self {
            Image::Rgb8 { width, .. } | Image::Yuv420 { width, .. } => width,
        }
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        match *self {
            Image::Rgb8 { height, .. } | Image::Yuv420 { height, .. } => height,
        }
    }

    /// Checks the dimensions and that every plane has exactly the bytes they require.
    fn validate(&self) -> Result<(), Error> {
        let (width, height) = (self.width(), self.height());
        if width == 0 || height == 0 {
            return Err(Error::Invalid("image width and height must be non-zero"));
        }
        match *self {
            Image::Rgb8 { pixels, .. } => {
                check_len("RGB8 pixels", width * height * 3, pixels.len())
            }
            Image::Yuv420 { y, u, v, .. } => {
                let chroma = width.div_ceil(2) * height.div_ceil(2);
                check_len("Y plane", width * height, y.len())?;
                check_len("U plane", chroma, u.len())?;
                check_len("V plane", chroma, v.len())
            }
        }
    }

    /// The pixel at (`x`, `y`) as RGB in 0..=255 (not rounded for YUV).
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        match *self {
            Image::Rgb8 { pixels, width, .. } => {
                let i = (y * width + x) * 3;
                [pixels[i].into(), pixels[i + 1].into(), pixels[i + 2].into()]
            }
            Image::Yuv420 {
                y: luma,
                u,
                v,
                width,
                range,
                ..
            } => {
                let c = (y / 2) * width.div_ceil(2) + x / 2;
                yuv_to_rgb(luma[y * width + x], u[c], v[c], range)
            }
        }
    }

    /// Converts the whole frame to interleaved RGB8 in `dst` (`width * height * 3` bytes), for
    /// callers that draw on or save the frame.
    ///
    /// Errors when a plane or `dst` has the wrong length, or a dimension is zero.
    pub fn to_rgb8(&self, dst: &mut [u8]) -> Result<(), Error> {
        self.validate()?;
        let (width, height) = (self.width(), self.height());
        check_len("RGB8 output", width * height * 3, dst.len())?;
        for y in 0..height {
            for x in 0..width {
                let i = (y * width + x) * 3;
                let rgb = self.rgb(x, y).map(|c| libm::roundf(c) as u8);
                dst[i..i + 3].copy_from_slice(&rgb);
            }
        }
        Ok(())
    }
}

/// BT.601 YCbCr → RGB in `range`, clamped to 0..=255 (not rounded).
pub fn yuv_to_rgb(y: u8, u: u8, v: u8, range: YuvRange) -> [f32; 3] {
    let (y, u, v) = (f32::from(y), f32::from(u) - 128.0, f32::from(v) - 128.0);
    let [r, g, b] = match range {
        YuvRange::Limited => {
            let y = 1.164 * (y - 16.0);
            [y + 1.596 * v, y - 0.813 * v - 0.391 * u, y + 2.018 * u]
        }
        YuvRange::Full => [
            y + 1.402 * v,
            y - 0.344_136 * u - 0.714_136 * v,
            y + 1.772 * u,
        ],
    };
    [r, g, b].map(|c| c.clamp(0.0, 255.0))
}

/// RGB (0..=255) → BT.601 YCbCr in `range`, rounded and clamped to the range's code values:
/// the inverse of [`yuv_to_rgb`], for writers of Y4M frames.
pub fn rgb_to_yuv(rgb: [f32; 3], range: YuvRange) -> [u8; 3] {
    let [r, g, b] = rgb;
    let (y, u, v, max_y, max_c) = match range {
        YuvRange::Limited => (
            16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
            128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
            128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
            235.0,
            240.0,
        ),
        YuvRange::Full => (
            0.299 * r + 0.587 * g + 0.114 * b,
            128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
            128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
            255.0,
            255.0,
        ),
    };
    let min = if range == YuvRange::Limited {
        16.0
    } else {
        0.0
    };
    [
        libm::roundf(y).clamp(min, max_y) as u8,
        libm::roundf(u).clamp(min, max_c) as u8,
        libm::roundf(v).clamp(min, max_c) as u8,
    ]
}

/// How a source frame sits in the network input: `input = source * scale + pad`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Network pixels per source pixel (the same on both axes).
    pub scale: f32,
    /// Left border in network pixels.
    pub pad_x: f32,
    /// Top border in network pixels.
    pub pad_y: f32,
}

impl Letterbox {
    /// The transform that fits a `width` x `height` frame into a `size` x `size` input.
    pub fn fit(width: usize, height: usize, size: usize) -> Letterbox {
        Self::fit_with_extent(width, height, size).0
    }

    /// [`Letterbox::fit`] plus the resized image's width and height in network pixels.
    fn fit_with_extent(width: usize, height: usize, size: usize) -> (Letterbox, usize, usize) {
        let s = size as f32;
        let scale = (s / width as f32).min(s / height as f32);
        let extent = |d: usize| (libm::roundf(d as f32 * scale) as usize).clamp(1, size);
        let (new_w, new_h) = (extent(width), extent(height));
        let letterbox = Letterbox {
            scale,
            pad_x: ((size - new_w) / 2) as f32,
            pad_y: ((size - new_h) / 2) as f32,
        };
        (letterbox, new_w, new_h)
    }

    /// Maps a point in network-input pixels back to source-frame pixels.
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale)
    }
}

/// Source sample positions for one output coordinate: the two neighbours and the weight of
/// the second, with half-pixel centres and edge clamping (OpenCV `INTER_LINEAR`).
fn sample_axis(dst: usize, ratio: f32, src_len: usize) -> (usize, usize, f32) {
    let pos = ((dst as f32 + 0.5) * ratio - 0.5).max(0.0);
    let lo = (libm::floorf(pos) as usize).min(src_len - 1);
    let hi = (lo + 1).min(src_len - 1);
    (lo, hi, (pos - lo as f32).min(1.0))
}

/// How a detector wants its input tensor's values: channel order and scale. Ultralytics models
/// (and YOLO9tr) read RGB in `[0, 1]`; YOLOX reads the BGR bytes OpenCV decodes, unscaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pixels {
    /// Planes R, G, B; values / 255; border [`PAD_VALUE`].
    #[default]
    Rgb01,
    /// Planes B, G, R; values in 0..=255; border 114.
    Bgr255,
}

impl Pixels {
    /// The input plane of each RGB channel and what 0..=255 values are divided by (a
    /// division, not a multiplication by 1 / 255, so that Rgb01 rounds as it always has).
    fn layout(self) -> ([usize; 3], f32) {
        match self {
            Pixels::Rgb01 => ([0, 1, 2], 255.0),
            Pixels::Bgr255 => ([2, 1, 0], 1.0),
        }
    }
}

/// Letterboxes `image` into `dst`, a `1 x 3 x size x size` NCHW tensor of RGB values in
/// `[0, 1]`, and returns the transform back to source pixels.
///
/// Errors when a plane or `dst` has the wrong length, or a dimension is zero.
pub fn letterbox(image: &Image<'_>, size: usize, dst: &mut [f32]) -> Result<Letterbox, Error> {
    letterbox_as(image, size, Pixels::Rgb01, dst)
}

/// [`letterbox`] writing the values as `pixels` says (the border is the same gray 114).
pub fn letterbox_as(
    image: &Image<'_>,
    size: usize,
    pixels: Pixels,
    dst: &mut [f32],
) -> Result<Letterbox, Error> {
    image.validate()?;
    if size == 0 {
        return Err(Error::Invalid("letterbox size must be non-zero"));
    }
    let plane = size * size;
    check_len("letterbox output", 3 * plane, dst.len())?;
    let (width, height) = (image.width(), image.height());
    let (letterbox, new_w, new_h) = Letterbox::fit_with_extent(width, height, size);
    let (planes, divisor) = pixels.layout();
    dst.fill(114.0 / divisor);
    let (ratio_x, ratio_y) = (width as f32 / new_w as f32, height as f32 / new_h as f32);
    let (left, top) = (letterbox.pad_x as usize, letterbox.pad_y as usize);
    for oy in 0..new_h {
        let (y0, y1, fy) = sample_axis(oy, ratio_y, height);
        for ox in 0..new_w {
            let (x0, x1, fx) = sample_axis(ox, ratio_x, width);
            let (a, b) = (image.rgb(x0, y0), image.rgb(x1, y0));
            let (c, d) = (image.rgb(x0, y1), image.rgb(x1, y1));
            let at = (top + oy) * size + left + ox;
            for (ch, &to) in planes.iter().enumerate() {
                let upper = a[ch] + (b[ch] - a[ch]) * fx;
                let lower = c[ch] + (d[ch] - c[ch]) * fx;
                dst[to * plane + at] = (upper + (lower - upper) * fy) / divisor;
            }
        }
    }
    Ok(letterbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4:2:0 frame over the given planes, `y.len() / width` rows high.
    fn yuv<'a>(y: &'a [u8], u: &'a [u8], v: &'a [u8], width: usize, range: YuvRange) -> Image<'a> {
        Image::Yuv420 {
            y,
            u,
            v,
            width,
            height: y.len() / width,
            range,
        }
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    /// A gray RGB8 image whose red, green and blue all equal `values[y][x]`.
    fn gray(values: &[u8]) -> [u8; 48] {
        let mut out = [0u8; 48];
        for (i, &v) in values.iter().enumerate() {
            out[3 * i..3 * i + 3].fill(v);
        }
        out
    }

    /// A 2x1 RGB image: (10, 20, 30) then (40, 50, 60).
    const TWO_BY_ONE: Image<'static> = Image::Rgb8 {
        pixels: &[10, 20, 30, 40, 50, 60],
        width: 2,
        height: 1,
    };

    #[test]
    fn same_size_copies_pixels_and_pads_bottom() {
        // 2x1 into 2x2: scale 1, the single spare row goes below (pad_y = floor(1 / 2) = 0).
        let mut dst = [0.0; 12];
        let lb = letterbox(&TWO_BY_ONE, 2, &mut dst).unwrap();
        assert_eq!(
            lb,
            Letterbox {
                scale: 1.0,
                pad_x: 0.0,
                pad_y: 0.0
            }
        );
        // Channel planes: R = [10, 40; pad, pad], G = [20, 50; ...], B = [30, 60; ...].
        let expected = [10.0, 40.0, 20.0, 50.0, 30.0, 60.0];
        for ch in 0..3 {
            assert!(close(dst[ch * 4], expected[2 * ch] / 255.0));
            assert!(close(dst[ch * 4 + 1], expected[2 * ch + 1] / 255.0));
            assert!(close(dst[ch * 4 + 2], PAD_VALUE));
            assert!(close(dst[ch * 4 + 3], PAD_VALUE));
        }
    }

    #[test]
    fn bgr255_reverses_the_planes_and_keeps_the_byte_values() {
        // 2x1 into 2x2 as in the test above, for a YOLOX input.
        let mut dst = [0.0; 12];
        letterbox_as(&TWO_BY_ONE, 2, Pixels::Bgr255, &mut dst).unwrap();
        assert_eq!(
            dst,
            [30.0, 60.0, 114.0, 114.0, 20.0, 50.0, 114.0, 114.0, 10.0, 40.0, 114.0, 114.0]
        );
    }

    #[test]
    fn halving_averages_two_by_two_blocks() {
        // 4x2 into 2x2: scale 0.5, output 2x1 centred vertically at row 0 (pad_y = 0).
        // Sample centres land at source (0.5, 0.5) and (2.5, 0.5): the mean of each 2x2 block.
        let image_values = [0, 100, 200, 40, 20, 80, 60, 0];
        let pixels = gray(&image_values);
        let image = Image::Rgb8 {
            pixels: &pixels[..24],
            width: 4,
            height: 2,
        };
        let mut dst = [0.0; 12];
        let lb = letterbox(&image, 2, &mut dst).unwrap();
        assert_eq!(lb.scale, 0.5);
        let left = (0.0 + 100.0 + 20.0 + 80.0) / 4.0; // 50
        let right = (200.0 + 40.0 + 60.0 + 0.0) / 4.0; // 75
        for ch in 0..3 {
            assert!(close(dst[ch * 4], left / 255.0));
            assert!(close(dst[ch * 4 + 1], right / 255.0));
            assert!(close(dst[ch * 4 + 2], PAD_VALUE));
        }
    }

    #[test]
    fn doubling_interpolates_with_half_pixel_centres() {
        // A 2x1 row [0, 100] into 4x4: scale 2, output 4x2 with pad_y = 1.
        // Source x for output 0..4 is -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1):
        // values 0, 25, 75, 100.
        let pixels = gray(&[0, 100]);
        let image = Image::Rgb8 {
            pixels: &pixels[..6],
            width: 2,
            height: 1,
        };
        let mut dst = [0.0; 48];
        let lb = letterbox(&image, 4, &mut dst).unwrap();
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (2.0, 0.0, 1.0));
        let expected = [0.0, 25.0, 75.0, 100.0];
        for ch in 0..3 {
            let plane = &dst[ch * 16..ch * 16 + 16];
            assert!(plane[..4].iter().all(|&v| close(v, PAD_VALUE)));
            for row in 1..3 {
                for (x, e) in expected.iter().enumerate() {
                    assert!(close(plane[row * 4 + x], e / 255.0), "row {row} x {x}");
                }
            }
            assert!(plane[12..].iter().all(|&v| close(v, PAD_VALUE)));
        }
    }

    #[test]
    fn maps_network_points_back_to_the_source() {
        // 640x480 into 320: scale 0.5, resized 320x240, 40 rows of padding on top.
        let lb = Letterbox::fit(640, 480, 320);
        assert_eq!((lb.scale, lb.pad_x, lb.pad_y), (0.5, 0.0, 40.0));
        assert_eq!(lb.to_source(160.0, 160.0), (320.0, 240.0));
        assert_eq!(lb.to_source(0.0, 40.0), (0.0, 0.0));
        // Portrait: 300x600 into 100 → scale 1/6, resized 50x100, pad_x 25.
        let lb = Letterbox::fit(300, 600, 100);
        assert_eq!(lb.pad_x, 25.0);
        let (x, y) = lb.to_source(75.0, 100.0);
        assert!((x - 300.0).abs() < 1e-3 && (y - 600.0).abs() < 1e-3);
    }

    #[test]
    fn converts_yuv420_with_bt601_limited_range() {
        // 2x2 frame: one chroma sample. Y=81, U=90, V=240 is BT.601 red:
        // R = 1.164*65 + 1.596*112 = 254.4, G = 75.66 - 91.06 + 14.86 < 0 → 0, B < 0 → 0.
        let (y, u, v) = ([81u8; 4], [90u8], [240u8]);
        let image = yuv(&y, &u, &v, 2, YuvRange::Limited);
        let mut dst = [0.0; 12];
        letterbox(&image, 2, &mut dst).unwrap();
        let red = 1.164 * 65.0 + 1.596 * 112.0;
        assert!(dst[..4].iter().all(|&r| close(r, red / 255.0)));
        assert!(dst[4..].iter().all(|&gb| gb == 0.0));
        // Neutral chroma: Y=235 is white (1.164 * 219 = 254.9).
        let (y, u, v) = ([235u8; 4], [128u8], [128u8]);
        let image = yuv(&y, &u, &v, 2, YuvRange::Limited);
        letterbox(&image, 2, &mut dst).unwrap();
        assert!(dst.iter().all(|&c| close(c, 1.164 * 219.0 / 255.0)));
    }

    #[test]
    fn converts_yuv420_with_bt601_full_range() {
        // Full range (XCOLORRANGE=FULL): Y=76, U=85, V=255 is red; R = 76 + 1.402 * 127
        // = 254.1, G = 76 + 0.344 * 43 - 0.714 * 127 = 0.1. Read as limited range, the same
        // bytes would give R = 1.164 * 60 + 1.596 * 127 > 255 (clipped) and G = 0.
        let (y, u, v) = ([76u8; 4], [85u8], [255u8]);
        let image = yuv(&y, &u, &v, 2, YuvRange::Full);
        let mut dst = [0.0; 12];
        letterbox(&image, 2, &mut dst).unwrap();
        let red = 76.0 + 1.402 * 127.0;
        assert!(dst[..4].iter().all(|&r| close(r, red / 255.0)));
        assert!(dst[4..8].iter().all(|&g| g > 0.0 && g < 0.5 / 255.0));
        // Full-range black and white are 0 and 255, not 16 and 235.
        for (code, rgb) in [(0u8, 0.0), (255, 1.0)] {
            let (y, c) = ([code; 4], [128u8]);
            let image = yuv(&y, &c, &c, 2, YuvRange::Full);
            letterbox(&image, 2, &mut dst).unwrap();
            assert!(dst.iter().all(|&v| close(v, rgb)), "Y={code}");
        }
    }

    #[test]
    fn rgb_to_yuv_inverts_yuv_to_rgb_in_both_ranges() {
        for range in [YuvRange::Limited, YuvRange::Full] {
            for rgb in [[0u8, 0, 0], [255, 255, 255], [255, 0, 0], [30, 200, 90]] {
                let [y, u, v] = rgb_to_yuv(rgb.map(f32::from), range);
                let back = yuv_to_rgb(y, u, v, range);
                for (a, b) in rgb.iter().zip(back) {
                    assert!(
                        (f32::from(*a) - b).abs() < 3.0,
                        "{range:?} {rgb:?} {back:?}"
                    );
                }
            }
        }
        assert_eq!(
            rgb_to_yuv([255.0, 0.0, 0.0], YuvRange::Limited),
            [81, 90, 240]
        );
        assert_eq!(rgb_to_yuv([255.0; 3], YuvRange::Limited), [235, 128, 128]);
        assert_eq!(rgb_to_yuv([0.0; 3], YuvRange::Limited), [16, 128, 128]);
        assert_eq!(rgb_to_yuv([255.0; 3], YuvRange::Full), [255, 128, 128]);
    }

    #[test]
    fn to_rgb8_converts_every_pixel() {
        // 2x2, one chroma sample: limited-range black, white, and two mid grays.
        let (y, c) = ([16u8, 235, 126, 126], [128u8]);
        let image = yuv(&y, &c, &c, 2, YuvRange::Limited);
        let mut rgb = [0u8; 12];
        image.to_rgb8(&mut rgb).unwrap();
        assert_eq!(rgb, [0, 0, 0, 255, 255, 255, 128, 128, 128, 128, 128, 128]);
        assert!(matches!(
            image.to_rgb8(&mut [0u8; 11]),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn odd_yuv_sizes_round_chroma_up() {
        // 3x1 needs 2x1 chroma samples; pixel 2 uses chroma sample 1.
        let (y, u, v) = ([126u8; 3], [128u8, 128], [128u8, 255]);
        let image = yuv(&y, &u, &v, 3, YuvRange::Limited);
        let mut dst = [0.0; 27];
        letterbox(&image, 3, &mut dst).unwrap();
        // Row 1 (pad_y = 1): pixels 0 and 1 neutral gray, pixel 2 reddish.
        let gray = 1.164 * 110.0 / 255.0;
        assert!(close(dst[3], gray) && close(dst[4], gray));
        assert!(dst[5] > gray + 0.4);
    }

    #[test]
    fn rejects_bad_buffers() {
        let pixels = [0u8; 12];
        let image = Image::Rgb8 {
            pixels: &pixels,
            width: 2,
            height: 2,
        };
        let mut dst = [0.0; 11];
        assert_eq!(
            letterbox(&image, 2, &mut dst),
            Err(Error::Length {
                what: "letterbox output",
                expected: 12,
                actual: 11
            })
        );
        let short = Image::Rgb8 {
            pixels: &pixels[..11],
            width: 2,
            height: 2,
        };
        let mut dst = [0.0; 12];
        assert!(matches!(
            letterbox(&short, 2, &mut dst),
            Err(Error::Length { .. })
        ));
        let empty = Image::Rgb8 {
            pixels: &[],
            width: 0,
            height: 2,
        };
        assert!(matches!(
            letterbox(&empty, 2, &mut dst),
            Err(Error::Invalid(_))
        ));
    }
}
