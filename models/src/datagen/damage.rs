//! Painters for the damage classes, on the ground plane.
//!
//! Each painter marks exactly the pixels it visibly changes with the instance id, so the
//! camera can derive the label box from what it actually sees. Shapes follow what the
//! classes look like in RDD2022: thin dark random-walk cracks, a polygonal cell network for
//! alligator cracking, dark irregular potholes with a bright broken rim, worn zebra and lane
//! paint, patterned iron manhole covers, and darker, smoother repair patches.

use super::rng::{fbm, Rng};
use super::world::{bounds_of, coverage, rect, segment_distance, Bounds, Point, Quad, Rgb, World};
use super::Class;

/// The largest ground half-extents (x, z) a class's instance can have around its centre,
/// used to keep instances apart.
pub fn extent(class: Class) -> (f32, f32) {
    match class {
        Class::LongitudinalCrack => (0.8, 2.2),
        Class::TransverseCrack => (2.0, 0.6),
        Class::AlligatorCrack => (1.6, 2.1),
        Class::Pothole => (0.8, 0.8),
        Class::CrosswalkBlur => (8.0, 2.2),
        Class::WhiteLineBlur => (0.3, 4.0),
        Class::Manhole => (0.5, 0.5),
        Class::Repair => (1.8, 1.8),
    }
}

/// Paints one instance of `class` centred at `at` with instance mask value `id`. A
/// [`Class::WhiteLineBlur`] needs the marking quad it fades; the others ignore `marking`.
pub fn draw(
    world: &mut World,
    rng: &mut Rng,
    class: Class,
    at: Point,
    id: u16,
    marking: Option<Quad>,
) {
    match class {
        Class::LongitudinalCrack => {
            let len = rng.range(1.5, 4.0);
            let start = (at.0, at.1 - len / 2.0);
            crack(world, rng, start, core::f32::consts::FRAC_PI_2, len, id);
        }
        Class::TransverseCrack => {
            let len = rng.range(1.5, 3.6);
            let heading = if rng.chance(0.5) {
                0.0
            } else {
                core::f32::consts::PI
            };
            let start = (at.0 - heading.cos() * len / 2.0, at.1);
            crack(world, rng, start, heading, len, id);
        }
        Class::AlligatorCrack => alligator(world, rng, at, id),
        Class::Pothole => pothole(world, rng, at, id),
        Class::CrosswalkBlur => crosswalk(world, rng, at.1, id),
        Class::WhiteLineBlur => {
            if let Some(quad) = marking {
                let colour = world.layout.colour_of(&quad);
                let (alpha, seed) = (rng.range(0.3, 0.6), rng.next_u64());
                world.fill_convex(&quad, colour, alpha, id, |x, z| {
                    (fbm(seed, x * 6.0, z * 6.0, 3) * 1.8 - 0.4).clamp(0.0, 1.0)
                });
            }
        }
        Class::Manhole => manhole(world, rng, at, id),
        Class::Repair => repair(world, rng, at, id),
    }
}

/// A thin dark crack: a random walk of 8 cm steps that wanders around `heading` (radians,
/// 0 = +x), sometimes with a branch.
fn crack(world: &mut World, rng: &mut Rng, start: Point, heading: f32, length: f32, id: u16) {
    let width = rng.range(0.02, 0.05).max(world.metres_per_px * 0.8);
    let darkness = rng.range(0.25, 0.45);
    let (mut p, mut angle, step) = (start, heading, 0.08);
    let mut branch = None;
    let mut walked = 0.0;
    while walked < length {
        angle = (angle + rng.range(-0.35, 0.35)).clamp(heading - 0.45, heading + 0.45);
        let next = (p.0 + step * angle.cos(), p.1 + step * angle.sin());
        stroke(world, p, next, width, darkness, id);
        if branch.is_none() && rng.chance(0.015) {
            branch = Some((
                next,
                angle + rng.range(0.5, 1.0) * if rng.chance(0.5) { 1.0 } else { -1.0 },
            ));
        }
        p = next;
        walked += step;
    }
    if let Some((from, dir)) = branch {
        let mut p = from;
        for _ in 0..(rng.range(4.0, 10.0) as usize) {
            let next = (p.0 + step * dir.cos(), p.1 + step * dir.sin());
            stroke(world, p, next, width * 0.7, darkness, id);
            p = next;
        }
    }
}

/// Darkens a segment `width` metres wide (at least one raster pixel wide).
fn stroke(world: &mut World, a: Point, b: Point, width: f32, darkness: f32, id: u16) {
    let half = (width / 2.0).max(world.metres_per_px * 0.5);
    world.paint(bounds_of(&[a, b], half), id, |x, z, c| {
        let d = segment_distance(a, b, (x, z));
        if d > half {
            return false;
        }
        let k = darkness + (1.0 - darkness) * 0.5 * d / half;
        c.scale(k);
        true
    });
}

/// Alligator cracking: the boundaries of a jittered-grid Voronoi diagram inside an
/// irregular patch.
fn alligator(world: &mut World, rng: &mut Rng, at: Point, id: u16) {
    let (rx, rz) = (rng.range(0.6, 1.5), rng.range(0.8, 2.0));
    let cell = rng.range(0.18, 0.32);
    let width = rng.range(0.02, 0.04).max(world.metres_per_px * 0.8);
    let (seed, edge_seed) = (rng.next_u64(), rng.next_u64());
    let darkness = rng.range(0.25, 0.45);
    world.paint(
        (at.0 - rx, at.1 - rz, at.0 + rx, at.1 + rz),
        id,
        |x, z, c| {
            let (dx, dz) = ((x - at.0) / rx, (z - at.1) / rz);
            let r = (dx * dx + dz * dz).sqrt();
            if r > 0.75 + 0.35 * fbm(edge_seed, x * 1.5, z * 1.5, 2) {
                return false;
            }
            let (gx, gz) = ((x / cell).floor() as i32, (z / cell).floor() as i32);
            let (mut d1, mut d2) = (f32::MAX, f32::MAX);
            for j in -1..=1 {
                for i in -1..=1 {
                    let jx = super::rng::lattice(seed, gx + i, gz + j);
                    let jz = super::rng::lattice(seed ^ 0x77, gx + i, gz + j);
                    let (sx, sz) = (
                        (gx + i) as f32 + 0.15 + 0.7 * jx,
                        (gz + j) as f32 + 0.15 + 0.7 * jz,
                    );
                    let d = ((x / cell - sx).powi(2) + (z / cell - sz).powi(2)).sqrt() * cell;
                    if d < d1 {
                        d2 = d1;
                        d1 = d;
                    } else if d < d2 {
                        d2 = d;
                    }
                }
            }
            c.scale(0.92);
            if (d2 - d1) * 0.5 < width / 2.0 {
                c.scale(darkness);
                true
            } else {
                false
            }
        },
    );
}

/// A pothole: an irregular blob, dark and shaded by depth, with a lighter broken rim.
fn pothole(world: &mut World, rng: &mut Rng, at: Point, id: u16) {
    let radius = rng.range(0.2, 0.6);
    let phase: [f32; 3] = [
        rng.range(0.0, 6.3),
        rng.range(0.0, 6.3),
        rng.range(0.0, 6.3),
    ];
    let amp = [
        rng.range(0.08, 0.2),
        rng.range(0.05, 0.12),
        rng.range(0.02, 0.08),
    ];
    let seed = rng.next_u64();
    let water = rng.chance(0.2);
    let floor = rng.range(0.25, 0.4);
    let rim = radius * 1.3 + 0.05;
    world.paint(
        (at.0 - rim, at.1 - rim, at.0 + rim, at.1 + rim),
        id,
        |x, z, c| {
            let (dx, dz) = (x - at.0, z - at.1);
            let theta = dz.atan2(dx);
            let edge = radius
                * (1.0
                    + amp[0] * (2.0 * theta + phase[0]).sin()
                    + amp[1] * (3.0 * theta + phase[1]).sin()
                    + amp[2] * (5.0 * theta + phase[2]).sin());
            let r = (dx * dx + dz * dz).sqrt() / edge;
            let grain = fbm(seed, x * 12.0, z * 12.0, 2);
            if r < 1.0 {
                // The far wall (dz > 0) faces the camera and catches light; the floor is dark.
                let wall = (r * r) * (0.5 + 0.5 * dz.signum());
                let k = floor * (0.8 + 0.4 * grain) + 0.25 * wall;
                c.scale(k);
                if water {
                    c.blend([0.18, 0.2, 0.24], 0.6 * (1.0 - r));
                }
                true
            } else if r < 1.18 && grain > 0.35 {
                c.then([1.35; 3], [0.05; 3]);
                true
            } else {
                false
            }
        },
    );
}

/// A worn zebra crossing across the road at `z`: paint faded and broken up by noise.
fn crosswalk(world: &mut World, rng: &mut Rng, z: f32, id: u16) {
    let half = world.layout.road_half - 0.3;
    let (bar, depth) = (rng.range(0.4, 0.5), rng.range(3.0, 4.0));
    let alpha = rng.range(0.4, 0.75);
    let seed = rng.next_u64();
    let mut x = -half + bar / 2.0;
    while x + bar / 2.0 <= half {
        let quad = rect(x, z - depth / 2.0, bar, depth);
        world.fill_convex(&quad, [0.9, 0.9, 0.88], alpha, id, |x, z| {
            (fbm(seed, x * 4.0, z * 4.0, 3) * 2.0 - 0.5).clamp(0.0, 1.0)
        });
        x += 2.0 * bar;
    }
}

/// An iron manhole cover: a dark disc with a bright rim ring and a cross-hatched pattern.
fn manhole(world: &mut World, rng: &mut Rng, at: Point, id: u16) {
    let radius = rng.range(0.3, 0.42);
    let iron: Rgb = [
        rng.range(0.18, 0.28),
        rng.range(0.17, 0.24),
        rng.range(0.15, 0.2),
    ];
    let pitch = rng.range(0.04, 0.07);
    world.paint(
        (at.0 - radius, at.1 - radius, at.0 + radius, at.1 + radius),
        id,
        |x, z, c| {
            let r = ((x - at.0).powi(2) + (z - at.1).powi(2)).sqrt() / radius;
            if r > 1.0 {
                return false;
            }
            let ring = (0.82..0.92).contains(&r);
            let hatch = ((x / pitch).floor() as i32 + (z / pitch).floor() as i32) % 2 == 0;
            let k = if r > 0.95 {
                0.55
            } else if ring {
                1.5
            } else if hatch {
                1.25
            } else {
                0.9
            };
            c.blend(iron.map(|v| (v * k).min(1.0)), 1.0);
            true
        },
    );
}

/// A repair patch: a tilted rectangle of darker, smoother asphalt with a sealed dark edge.
fn repair(world: &mut World, rng: &mut Rng, at: Point, id: u16) {
    let (hw, hl) = (rng.range(0.4, 1.3), rng.range(0.4, 1.5));
    let tilt: f32 = rng.range(-0.2, 0.2);
    let (s, co) = tilt.sin_cos();
    let corners = [(-hw, -hl), (hw, -hl), (hw, hl), (-hw, hl)];
    let poly: Vec<Point> = corners
        .iter()
        .map(|&(dx, dz)| (at.0 + dx * co - dz * s, at.1 + dx * s + dz * co))
        .collect();
    let grey = rng.range(0.14, 0.24);
    let seed = rng.next_u64();
    let seal = 0.05;
    let bounds: Bounds = bounds_of(&poly, seal);
    world.paint(bounds, id, |x, z, c| {
        let outer = coverage(&poly, (x, z), seal * 2.0);
        if outer <= 0.0 {
            return false;
        }
        let inner = coverage(&poly, (x, z), 0.01);
        let v = grey * (0.9 + 0.2 * fbm(seed, x * 8.0, z * 8.0, 2));
        if inner >= 1.0 {
            c.blend([v * 1.02, v, v * 0.98], 1.0);
        } else {
            c.scale(0.45);
        }
        true
    });
}
