//! Drawing detections on a frame: a box per detection, its label, and the running FPS.
//!
//! An annotated frame is how a person checks a detector at a glance, so the drawing is plain
//! and exact: boxes are 2-pixel outlines inside the detection's rounded pixel bounds, each
//! class has its own colour, and text uses the 8x8 bitmap font of `font8x8` (scaled up on
//! large frames) on a filled background so it reads on any road surface. Everything is
//! clipped to the frame; nothing here can fail.

use edgetrim_models::yolo::Detection;
use font8x8::legacy::BASIC_LEGACY;

/// Box outline width in pixels.
pub const BOX_THICKNESS: usize = 2;

/// Class colours (from Ultralytics' palette, picked to stay apart), cycled by class index.
const PALETTE: [[u8; 3]; 10] = [
    [255, 56, 56],
    [255, 157, 31],
    [207, 210, 49],
    [72, 249, 10],
    [0, 212, 187],
    [0, 194, 255],
    [100, 115, 255],
    [203, 56, 255],
    [255, 55, 199],
    [146, 204, 23],
];

/// The colour of class `class`.
pub fn class_color(class: u16) -> [u8; 3] {
    PALETTE[usize::from(class) % PALETTE.len()]
}

/// An RGB8 frame to draw on.
pub struct Canvas<'a> {
    pixels: &'a mut [u8],
    width: usize,
    height: usize,
}

impl<'a> Canvas<'a> {
    /// A canvas over `pixels`, interleaved RGB8 of `width` x `height` (extra bytes are left
    /// alone; missing ones are never drawn).
    pub fn new(pixels: &'a mut [u8], width: usize, height: usize) -> Canvas<'a> {
        let height = height.min(pixels.len() / (3 * width.max(1)));
        Canvas {
            pixels,
            width,
            height,
        }
    }

    /// Fills `[x0, x1) x [y0, y1)`, clipped to the frame.
    pub fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: [u8; 3]) {
        let clip = |v: i64, max: usize| v.clamp(0, max as i64) as usize;
        let (x0, x1) = (clip(x0, self.width), clip(x1, self.width));
        let (y0, y1) = (clip(y0, self.height), clip(y1, self.height));
        for y in y0..y1 {
            for x in x0..x1 {
                let i = (y * self.width + x) * 3;
                self.pixels[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    /// Outlines `[x0, x1) x [y0, y1)` with a `thickness`-pixel border inside it.
    pub fn outline(
        &mut self,
        x0: i64,
        y0: i64,
        x1: i64,
        y1: i64,
        thickness: usize,
        color: [u8; 3],
    ) {
        let t = thickness as i64;
        self.fill(x0, y0, x1, (y0 + t).min(y1), color);
        self.fill(x0, (y1 - t).max(y0), x1, y1, color);
        self.fill(x0, y0, (x0 + t).min(x1), y1, color);
        self.fill((x1 - t).max(x0), y0, x1, y1, color);
    }

    /// Writes `text` with its top-left corner at (`x`, `y`), each font pixel `scale` pixels
    /// wide, on a `background` box with a 1-pixel margin. Non-ASCII characters show as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, fg: [u8; 3], bg: [u8; 3]) {
        let s = scale as i64;
        let (w, h) = text_size(text, scale);
        self.fill(x, y, x + w as i64, y + h as i64, bg);
        for (k, ch) in text.chars().enumerate() {
            let glyph = BASIC_LEGACY[if ch.is_ascii() {
                ch as usize
            } else {
                '?' as usize
            }];
            let left = x + 1 + (k as i64) * 8 * s;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let (px, py) = (left + col * s, y + 1 + row as i64 * s);
                        self.fill(px, py, px + s, py + s, fg);
                    }
                }
            }
        }
    }
}

/// The size of [`Canvas::text`]'s background box for `text` at `scale`.
pub fn text_size(text: &str, scale: usize) -> (usize, usize) {
    (text.chars().count() * 8 * scale + 2, 8 * scale + 2)
}

/// Black or white, whichever reads better on `bg`.
fn ink_for(bg: [u8; 3]) -> [u8; 3] {
    let luma = 0.299 * f32::from(bg[0]) + 0.587 * f32::from(bg[1]) + 0.114 * f32::from(bg[2]);
    if luma > 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// Draws `detections` (source pixels) and `banner` (e.g. "nano 41.2 FPS", top-left) on an
/// RGB8 frame; `name` gives each class's label.
pub fn draw(
    rgb: &mut [u8],
    width: usize,
    height: usize,
    detections: &[Detection],
    name: impl Fn(u16) -> String,
    banner: &str,
) {
    let scale = (height / 240).max(1);
    let mut canvas = Canvas::new(rgb, width, height);
    // Worst first, so the most confident box and label end up on top.
    for d in detections.iter().rev() {
        let color = class_color(d.class);
        let [x0, y0, x1, y1] = d.corners().map(|v| v.round() as i64);
        canvas.outline(x0, y0, x1, y1, BOX_THICKNESS * scale, color);
        let label = format!("{} {:.2}", name(d.class), d.score);
        let (_, h) = text_size(&label, scale);
        // Above the box, or inside its top edge when there is no room above.
        let top = if y0 >= h as i64 { y0 - h as i64 } else { y0 };
        canvas.text(x0, top, &label, scale, ink_for(color), color);
    }
    canvas.text(2, 2, banner, scale, [255, 255, 255], [0, 0, 0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pixels of a `w` x `h` frame that differ from `value`, as (x, y).
    fn changed(rgb: &[u8], w: usize, value: u8) -> Vec<(usize, usize)> {
        rgb.chunks_exact(3)
            .enumerate()
            .filter(|(_, p)| p.iter().any(|&c| c != value))
            .map(|(i, _)| (i % w, i / w))
            .collect()
    }

    #[test]
    fn outline_changes_exactly_the_border_pixels() {
        let (w, h) = (12, 10);
        let mut rgb = vec![7u8; w * h * 3];
        Canvas::new(&mut rgb, w, h).outline(2, 3, 9, 8, 2, [255, 0, 0]);
        let mut expected = Vec::new();
        for y in 3..8 {
            for x in 2..9 {
                // The interior is x 4..7, y 5..6 (7x5 box less 2 pixels each side).
                if !((4..7).contains(&x) && y == 5) {
                    expected.push((x, y));
                }
            }
        }
        assert_eq!(changed(&rgb, w, 7), expected);
        assert_eq!(&rgb[(3 * w + 2) * 3..][..3], &[255, 0, 0]);
    }

    #[test]
    fn drawing_clips_at_the_frame_edges() {
        let (w, h) = (4, 4);
        let mut rgb = vec![0u8; w * h * 3];
        let mut canvas = Canvas::new(&mut rgb, w, h);
        canvas.outline(-5, -5, 100, 100, 1, [9, 9, 9]);
        canvas.text(3, 3, "xyz \u{e9}", 2, [1, 1, 1], [2, 2, 2]);
        assert_eq!(rgb.len(), w * h * 3);
    }

    #[test]
    fn draw_puts_the_box_in_the_class_colour_and_the_label_above_it() {
        let (w, h) = (64, 48);
        let mut rgb = vec![0u8; w * h * 3];
        let d = Detection {
            x0: 20.2,
            y0: 20.0,
            x1: 40.0,
            y1: 39.6,
            score: 0.87,
            class: 3,
        };
        draw(&mut rgb, w, h, &[d], |c| format!("D{c}"), "");
        let at = |x: usize, y: usize| {
            [
                rgb[(y * w + x) * 3],
                rgb[(y * w + x) * 3 + 1],
                rgb[(y * w + x) * 3 + 2],
            ]
        };
        assert_eq!(at(20, 30), class_color(3)); // left edge, rounded from 20.2
        assert_eq!(at(39, 39), class_color(3)); // bottom-right corner, 39.6 rounds to 40
        assert_eq!(at(30, 30), [0, 0, 0]); // inside stays untouched
        assert_eq!(at(20, 19), class_color(3)); // label background just above the box
        assert_eq!(at(20, 40), [0, 0, 0]);
    }
}
