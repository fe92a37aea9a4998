//! The ground plane as a raster in metres: asphalt texture, lane markings, shadows, and an
//! instance-id mask that makes every label box exact.
//!
//! x is lateral (0 = road centre line, positive to the right), z is distance along the road.
//! Damage is painted here, before perspective, so a crack has the same physical width
//! wherever it lies and a video's frames all look at one consistent road.

use super::rng::{fbm, lattice, Rng};
use super::Style;

/// An RGB colour with channels in 0..1.
pub type Rgb = [f32; 3];

/// A point on the ground, metres: (x lateral, z along the road).
pub type Point = (f32, f32);

/// A ground quadrilateral (a painted line segment), corners in order.
pub type Quad = [Point; 4];

/// Axis-aligned ground bounds `(x0, z0, x1, z1)`, metres.
pub type Bounds = (f32, f32, f32, f32);

/// The road's cross-section and marking pattern.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Width of one of the two lanes, metres.
    pub lane_width: f32,
    /// Half-width of the asphalt surface, metres (lanes plus a strip outside the edge lines).
    pub road_half: f32,
    /// Centre line colour (white or yellow).
    pub centre_colour: Rgb,
    /// Length of a centre-line dash and of the gap after it, metres.
    pub dash: (f32, f32),
    /// Width of painted lines, metres.
    pub line_width: f32,
}

impl Layout {
    /// A random two-lane road.
    pub fn random(rng: &mut Rng) -> Layout {
        let lane_width = rng.range(3.0, 3.7);
        let yellow = rng.chance(0.4);
        Layout {
            lane_width,
            road_half: lane_width + rng.range(0.4, 1.0),
            centre_colour: if yellow {
                [0.85, 0.68, 0.15]
            } else {
                [0.88, 0.88, 0.86]
            },
            dash: (rng.range(2.5, 4.0), rng.range(4.0, 7.0)),
            line_width: rng.range(0.10, 0.16),
        }
    }

    /// The paint colour of a marking quad from [`Layout::markings`]: the centre line's
    /// colour on the centre line, white at the edges.
    pub fn colour_of(&self, quad: &Quad) -> Rgb {
        if (quad[0].0 + quad[1].0).abs() < 0.1 {
            self.centre_colour
        } else {
            [0.88, 0.88, 0.86]
        }
    }

    /// The painted lines whose z range overlaps `[z0, z1)`, as ground quads: the dashed
    /// centre line and both solid edge lines (cut into dash-length pieces so a piece can be
    /// faded on its own).
    pub fn markings(&self, z0: f32, z1: f32) -> Vec<Quad> {
        let period = self.dash.0 + self.dash.1;
        let mut quads = Vec::new();
        let mut k = (z0 / period).floor();
        while k * period < z1 {
            let start = k * period;
            let edge = self.lane_width - 0.15;
            for x in [0.0, -edge, edge] {
                quads.push(rect(x, start, self.line_width, self.dash.0));
                if x != 0.0 {
                    quads.push(rect(x, start + self.dash.0, self.line_width, self.dash.1));
                }
            }
            k += 1.0;
        }
        quads
    }
}

/// An axis-aligned ground rectangle centred on `x`, from `z` for `length` metres.
pub fn rect(x: f32, z: f32, width: f32, length: f32) -> Quad {
    let h = width / 2.0;
    [
        (x - h, z),
        (x + h, z),
        (x + h, z + length),
        (x - h, z + length),
    ]
}

/// A per-pixel colour edit `c -> c * mul + add`: painters compose edits onto the raster and
/// the asphalt texture underneath is only evaluated for the pixels a camera looks at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    /// Per-channel factor.
    pub mul: Rgb,
    /// Per-channel offset.
    pub add: Rgb,
}

impl Tone {
    /// Leaves the colour unchanged.
    pub const IDENTITY: Tone = Tone {
        mul: [1.0; 3],
        add: [0.0; 3],
    };

    /// Follows this edit with `c -> c * k + b`.
    pub fn then(&mut self, k: Rgb, b: Rgb) {
        for i in 0..3 {
            self.mul[i] *= k[i];
            self.add[i] = self.add[i] * k[i] + b[i];
        }
    }

    /// Multiplies the colour by `k`.
    pub fn scale(&mut self, k: f32) {
        self.then([k; 3], [0.0; 3]);
    }

    /// Alpha-blends `colour` over the colour.
    pub fn blend(&mut self, colour: Rgb, alpha: f32) {
        let a = alpha.clamp(0.0, 1.0);
        self.then([1.0 - a; 3], colour.map(|t| t * a));
    }

    /// The edited colour.
    pub fn apply(&self, c: Rgb) -> Rgb {
        [0, 1, 2].map(|i| c[i] * self.mul[i] + self.add[i])
    }
}

/// The undamaged ground as a function of position: asphalt with value-noise blotches,
/// aggregate speckle and darker tyre tracks, a gravel shoulder, and grass beyond.
#[derive(Clone, Debug)]
pub struct Ground {
    base: Rgb,
    scale: f32,
    aggregate: f32,
    grass: Rgb,
    seed: u64,
    tracks: [f32; 4],
    road_half: f32,
}

impl Ground {
    /// A random ground in `style` for a road laid out as `layout`.
    pub fn random(rng: &mut Rng, style: &Style, layout: &Layout) -> Ground {
        let grey = rng.range(style.asphalt.0, style.asphalt.1);
        let tint = rng.range(style.asphalt_tint.0, style.asphalt_tint.1);
        let lane = layout.lane_width * 0.5;
        Ground {
            base: [grey + tint, grey, grey - tint],
            scale: rng.range(style.texture_scale.0, style.texture_scale.1),
            aggregate: rng.range(style.aggregate.0, style.aggregate.1),
            grass: [
                rng.range(0.20, 0.35),
                rng.range(0.32, 0.45),
                rng.range(0.12, 0.20),
            ],
            seed: rng.next_u64(),
            tracks: [-lane - 0.85, -lane + 0.85, lane - 0.85, lane + 0.85],
            road_half: layout.road_half,
        }
    }

    /// The colour at a ground point.
    pub fn colour(&self, x: f32, z: f32) -> Rgb {
        let blotch = fbm(self.seed, x / self.scale, z / self.scale, 4);
        // Aggregate stones are about 2 cm: one lattice cell each.
        let speck = lattice(
            self.seed ^ 0xa66,
            (x * 50.0).floor() as i32,
            (z * 50.0).floor() as i32,
        );
        let outside = x.abs() - self.road_half;
        if outside < 0.0 {
            let track: f32 = self
                .tracks
                .iter()
                .map(|t| (-(x - t).powi(2) / 0.08).exp())
                .sum();
            let mut v = 0.78 + 0.44 * blotch - 0.08 * track;
            if speck < self.aggregate * 0.5 {
                v *= 0.6;
            } else if speck < self.aggregate {
                v *= 1.45;
            }
            self.base.map(|b| b * v)
        } else if outside < 0.7 {
            let v = 0.8 + 0.5 * speck + 0.2 * blotch;
            [0.45 * v, 0.42 * v, 0.37 * v]
        } else {
            let v = 0.6 + 0.8 * blotch;
            self.grass.map(|g| g * v)
        }
    }
}

/// The ground raster: the painted edits and the instance mask over a stretch of road.
#[derive(Clone, Debug)]
pub struct World {
    /// Ground size of one raster pixel, metres.
    pub metres_per_px: f32,
    /// Ground x of the left edge of column 0.
    pub x_min: f32,
    /// Columns.
    pub width: usize,
    /// Rows; row r covers z in `[r, r + 1) * metres_per_px`.
    pub length: usize,
    /// Colour edit per pixel.
    pub tone: Vec<Tone>,
    /// Instance mask per pixel: 0 = none, k = instance k - 1.
    pub id: Vec<u16>,
    /// The road layout.
    pub layout: Layout,
    /// The texture under the edits.
    pub ground: Ground,
}

impl World {
    /// A random road `length_m` long whose raster has `metres_per_px` resolution and spans
    /// the asphalt plus a few metres either side.
    pub fn new(rng: &mut Rng, style: &Style, length_m: f32, metres_per_px: f32) -> World {
        let layout = Layout::random(rng);
        let ground = Ground::random(rng, style, &layout);
        let half = layout.road_half + 1.0;
        let width = (2.0 * half / metres_per_px).ceil() as usize;
        let length = (length_m / metres_per_px).ceil() as usize;
        World {
            metres_per_px,
            x_min: -half,
            width,
            length,
            tone: vec![Tone::IDENTITY; width * length],
            id: vec![0; width * length],
            layout,
            ground,
        }
    }

    /// Ground length in metres.
    pub fn length_m(&self) -> f32 {
        self.length as f32 * self.metres_per_px
    }

    /// The colour and instance mask at a ground point (mask 0 off the raster).
    pub fn sample(&self, x: f32, z: f32) -> (Rgb, u16) {
        let base = self.ground.colour(x, z);
        let col = ((x - self.x_min) / self.metres_per_px).floor();
        let row = (z / self.metres_per_px).floor();
        if col < 0.0 || row < 0.0 || col >= self.width as f32 || row >= self.length as f32 {
            return (base, 0);
        }
        let i = row as usize * self.width + col as usize;
        (self.tone[i].apply(base), self.id[i])
    }

    /// Calls `shade(x, z, tone)` (at the pixel centre) on every pixel overlapping `bounds`; where it
    /// returns true and `id` is nonzero the pixel joins instance `id - 1`.
    pub fn paint(
        &mut self,
        bounds: Bounds,
        id: u16,
        mut shade: impl FnMut(f32, f32, &mut Tone) -> bool,
    ) {
        let m = self.metres_per_px;
        let col0 = ((bounds.0 - self.x_min) / m).floor().max(0.0) as usize;
        let col1 = (((bounds.2 - self.x_min) / m).ceil().max(0.0) as usize).min(self.width);
        let row0 = (bounds.1 / m).floor().max(0.0) as usize;
        let row1 = ((bounds.3 / m).ceil().max(0.0) as usize).min(self.length);
        for row in row0..row1 {
            let z = (row as f32 + 0.5) * m;
            for col in col0..col1 {
                let x = self.x_min + (col as f32 + 0.5) * m;
                let i = row * self.width + col;
                if shade(x, z, &mut self.tone[i]) && id != 0 {
                    self.id[i] = id;
                }
            }
        }
    }

    /// Paints a convex ground polygon with `colour` at opacity `alpha` (scaled per pixel by
    /// `wear(x, z)` in 0..1); pixels at least half covered join instance `id - 1`.
    pub fn fill_convex(
        &mut self,
        poly: &[Point],
        colour: Rgb,
        alpha: f32,
        id: u16,
        mut wear: impl FnMut(f32, f32) -> f32,
    ) {
        let soft = self.metres_per_px * 0.5;
        self.paint(bounds_of(poly, soft), id, |x, z, c| {
            let cover = coverage(poly, (x, z), soft);
            let a = cover * alpha * wear(x, z);
            c.blend(colour, a);
            cover >= 0.5
        });
    }

    /// Darkens a convex ground polygon by `strength` with a soft edge `soft` metres wide;
    /// leaves the instance mask alone (a shadow is not damage).
    pub fn shadow(&mut self, poly: &[Point], strength: f32, soft: f32) {
        self.paint(bounds_of(poly, soft), 0, |x, z, c| {
            c.scale(1.0 - strength * coverage(poly, (x, z), soft));
            false
        });
    }

    /// Casts `count` soft shadows (trees, poles, buildings) as random convex polygons along
    /// `[z0, z1)`.
    pub fn shadows(&mut self, rng: &mut Rng, z0: f32, z1: f32, count: usize) {
        for _ in 0..count {
            let (cx, cz) = (rng.range(-8.0, 8.0), rng.range(z0, z1));
            let (rx, rz) = (rng.range(1.0, 5.0), rng.range(0.5, 4.0));
            let poly = random_convex(rng, (cx, cz), rx, rz, 7);
            self.shadow(&poly, rng.range(0.25, 0.55), rng.range(0.1, 0.6));
        }
    }
}

/// The bounds of a polygon grown by `margin`.
pub fn bounds_of(poly: &[Point], margin: f32) -> Bounds {
    poly.iter().fold(
        (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
        |(x0, z0, x1, z1), &(x, z)| {
            (
                x0.min(x - margin),
                z0.min(z - margin),
                x1.max(x + margin),
                z1.max(z + margin),
            )
        },
    )
}

/// How much of a convex polygon (either winding) covers point `p`, with a linear ramp
/// `soft` metres wide across each edge: 1 inside, 0 outside.
pub fn coverage(poly: &[Point], p: Point, soft: f32) -> f32 {
    let n = poly.len();
    let area: f32 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    let sign = if area >= 0.0 { 1.0 } else { -1.0 };
    let mut inside = f32::MAX;
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        let (ex, ez) = (b.0 - a.0, b.1 - a.1);
        let len = (ex * ex + ez * ez).sqrt().max(1e-9);
        // Signed distance to the edge's line, positive on the inner side.
        let d = sign * (ex * (p.1 - a.1) - ez * (p.0 - a.0)) / len;
        inside = inside.min(d);
    }
    (inside / soft.max(1e-6) + 0.5).clamp(0.0, 1.0)
}

/// Distance from `p` to the segment `a`–`b`.
pub fn segment_distance(a: Point, b: Point, p: Point) -> f32 {
    let (ex, ez) = (b.0 - a.0, b.1 - a.1);
    let len2 = (ex * ex + ez * ez).max(1e-12);
    let t = (((p.0 - a.0) * ex + (p.1 - a.1) * ez) / len2).clamp(0.0, 1.0);
    let (dx, dz) = (p.0 - a.0 - t * ex, p.1 - a.1 - t * ez);
    (dx * dx + dz * dz).sqrt()
}

/// A random convex polygon inside the ellipse with radii `(rx, rz)` around `centre`: points
/// at sorted random angles on the ellipse are convex by construction.
pub fn random_convex(
    rng: &mut Rng,
    centre: Point,
    rx: f32,
    rz: f32,
    vertices: usize,
) -> Vec<Point> {
    let mut angles: Vec<f32> = (0..vertices)
        .map(|_| rng.range(0.0, core::f32::consts::TAU))
        .collect();
    angles.sort_by(f32::total_cmp);
    angles
        .iter()
        .map(|a| (centre.0 + rx * a.cos(), centre.1 + rz * a.sin()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_a_square_is_one_inside_zero_outside_either_winding() {
        let sq = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        let rev = [sq[3], sq[2], sq[1], sq[0]];
        for poly in [&sq[..], &rev[..]] {
            assert_eq!(coverage(poly, (0.5, 0.5), 0.01), 1.0);
            assert_eq!(coverage(poly, (1.5, 0.5), 0.01), 0.0);
            assert!((coverage(poly, (1.0, 0.5), 0.2) - 0.5).abs() < 1e-5);
        }
    }

    #[test]
    fn tones_compose_like_their_functions() {
        let mut t = Tone::IDENTITY;
        t.scale(0.5);
        t.blend([1.0, 0.0, 0.0], 0.25);
        let c = [0.4, 0.8, 0.2];
        let want = [0.4, 0.3, 0.075];
        for (a, b) in t.apply(c).iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn segment_distance_hand_cases() {
        assert!((segment_distance((0.0, 0.0), (2.0, 0.0), (1.0, 1.0)) - 1.0).abs() < 1e-6);
        assert!((segment_distance((0.0, 0.0), (2.0, 0.0), (3.0, 0.0)) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn paint_marks_only_returned_pixels_inside_bounds() {
        let mut rng = Rng::new(1);
        let mut w = World::new(&mut rng, &Style::standard(), 2.0, 0.05);
        w.paint((0.0, 0.0, 0.5, 0.5), 3, |x, _, _| x < 0.25);
        let m = w.metres_per_px;
        let mut marked = 0;
        for (i, &id) in w.id.iter().enumerate() {
            let x = w.x_min + ((i % w.width) as f32 + 0.5) * m;
            let z = ((i / w.width) as f32 + 0.5) * m;
            if id == 3 {
                marked += 1;
                assert!(x > -m && x < 0.25 && z < 0.5 + m, "({x}, {z})");
            }
        }
        // 5 to 6 columns (the raster need not align with x = 0) by 10 rows.
        assert!((50..=60).contains(&marked), "{marked}");
        assert_eq!(w.sample(0.1, 0.1).1, 3);
        assert_eq!(w.sample(0.3, 0.1).1, 0);
    }
}
