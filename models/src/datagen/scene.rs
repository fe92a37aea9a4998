//! Scenes: a road with damage, seen by a pinhole camera above the ground, under random
//! lighting and weather; still images for data sets and a driving camera for videos.
//!
//! The camera looks along +z with its image rows parallel to the horizon, so ground point
//! (x, z) at depth d = z - camera z projects to row `horizon + f·h/d` and column
//! `cx + f·(x - camera x - yaw·d)/d`: a homography between the ground and the image. The
//! renderer inverts it per pixel, samples the ground raster there, and collects each
//! instance's box from the pixels that see it.

use super::damage::{self, extent};
use super::rng::{lattice, Rng};
use super::world::{Bounds, Point, Quad, Rgb, World};
use super::{Class, Frame, Label, Split, Style};

/// Class weights when drawing a random damage instance, in class-id order.
/// Crosswalks and faded lines are up-weighted: they are often dropped for lack of room
/// or of a marking in view.
const CLASS_WEIGHTS: [f32; 8] = [1.0, 1.2, 1.0, 1.0, 0.9, 1.6, 0.8, 0.8];

/// Depth range (metres ahead of the camera's nearest visible ground) where damage is placed
/// in still images: near enough to be seen at a few pixels or more.
const PLACE_DEPTH: f32 = 12.0;

/// The pinhole camera.
#[derive(Clone, Copy, Debug)]
struct Camera {
    width: usize,
    height: usize,
    /// Height above the road, metres.
    mount: f32,
    /// Focal length, pixels.
    focal: f32,
    /// Image row of the horizon.
    horizon: f32,
    /// Lateral position, metres.
    x: f32,
    /// Heading to the side (small-angle, metres of lateral shift per metre of depth).
    yaw: f32,
}

impl Camera {
    fn random(rng: &mut Rng, style: &Style, width: usize, height: usize, lane: f32) -> Camera {
        let fov = rng.range(55.0f32, 70.0).to_radians();
        Camera {
            width,
            height,
            mount: rng.range(style.camera_height.0, style.camera_height.1),
            focal: width as f32 / (2.0 * (fov / 2.0).tan()),
            horizon: height as f32 * rng.range(0.28, 0.40),
            x: lane * rng.range(0.35, 0.65),
            yaw: rng.range(-0.04, 0.04),
        }
    }

    /// Depth of the ground seen by the bottom image row.
    fn nearest_depth(&self) -> f32 {
        self.focal * self.mount / (self.height as f32 - 0.5 - self.horizon)
    }

    /// The lateral ground range visible at depth `d`.
    fn lateral_at(&self, d: f32) -> (f32, f32) {
        let half = self.width as f32 / 2.0 * d / self.focal;
        (self.x + self.yaw * d - half, self.x + self.yaw * d + half)
    }
}

/// Lighting and weather, applied after perspective.
#[derive(Clone, Copy, Debug)]
struct Light {
    brightness: f32,
    contrast: f32,
    cast: Rgb,
    wet: bool,
    visibility: f32,
    sky: Rgb,
    noise_seed: u64,
}

impl Light {
    fn random(rng: &mut Rng, style: &Style) -> Light {
        let cast = [0; 3].map(|_| 1.0 + rng.range(-style.cast, style.cast));
        Light {
            brightness: rng.range(style.brightness.0, style.brightness.1),
            contrast: rng.range(style.contrast.0, style.contrast.1),
            cast,
            wet: rng.chance(style.wet),
            visibility: rng.range(style.visibility.0, style.visibility.1),
            sky: style.sky.map(|s| s * rng.range(0.9, 1.05)),
            noise_seed: rng.next_u64(),
        }
    }

    /// The final pixel: wetness, light, contrast, haze at depth `d` (infinite for sky),
    /// and a little sensor noise.
    fn finish(&self, mut c: Rgb, d: f32, noise: f32) -> [u8; 3] {
        if self.wet && d.is_finite() {
            let sheen = (-d / 30.0).exp().mul_add(-0.35, 0.35);
            c = [0, 1, 2].map(|i| c[i] * 0.6 + self.sky[i] * sheen);
        }
        let fog = if d.is_finite() {
            1.0 - (-d / self.visibility).exp()
        } else {
            1.0
        };
        [0, 1, 2].map(|i| {
            let lit = c[i] * self.brightness * self.cast[i];
            let v = (lit - 0.5) * self.contrast + 0.5;
            let v = v + (self.sky[i] - v) * fog + noise;
            (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
        })
    }
}

/// A road with damage, a camera and lighting.
#[derive(Clone, Debug)]
struct Scene {
    world: World,
    camera: Camera,
    light: Light,
    classes: Vec<Class>,
}

impl Scene {
    /// A random scene of a road `length_m` long with `count` damage instances placed in
    /// ground range `place` (z, metres; inside the first view if `in_view`), drawn in `style`.
    fn new(
        rng: &mut Rng,
        style: &Style,
        (width, height): (usize, usize),
        length_m: f32,
        place: (f32, f32),
        in_view: bool,
        count: usize,
    ) -> Scene {
        let metres_per_px = (0.03 * 320.0 / width as f32).clamp(0.012, 0.05);
        let mut world = World::new(rng, style, length_m, metres_per_px);
        let camera = Camera::random(rng, style, width, height, world.layout.lane_width);
        let light = Light::random(rng, style);
        let layout = world.layout;
        let mut markings = layout.markings(0.0, length_m);
        let mut taken: Vec<Bounds> = Vec::new();
        let mut planned = Vec::new();
        for _ in 0..count {
            let class = Class::ALL[rng.weighted(&CLASS_WEIGHTS)];
            let Some((at, marking)) = place_instance(
                rng,
                &camera,
                &world,
                class,
                place,
                in_view,
                &mut markings,
                &taken,
            ) else {
                continue;
            };
            let (ex, ez) = extent(class);
            taken.push((at.0 - ex, at.1 - ez, at.0 + ex, at.1 + ez));
            planned.push((class, at, marking));
        }
        // Intact paint first, so damage (cracks through a line, a faded dash) lies on top
        // of it and every instance's mask stays what is visible.
        for quad in &markings {
            let seed = rng.next_u64();
            world.fill_convex(quad, layout.colour_of(quad), 0.9, 0, |x, z| {
                0.75 + 0.25 * lattice(seed, (x * 20.0) as i32, (z * 20.0) as i32)
            });
        }
        let mut classes = Vec::new();
        for (class, at, marking) in planned {
            classes.push(class);
            damage::draw(&mut world, rng, class, at, classes.len() as u16, marking);
        }
        if rng.chance(style.shadows.0) {
            let n = 1 + rng.below(style.shadows.1);
            world.shadows(rng, place.0 - 5.0, place.1 + 10.0, n);
        }
        Scene {
            world,
            camera,
            light,
            classes,
        }
    }

    /// Renders the view from camera position `z` with an extra lateral offset `sway`.
    fn render(&self, z: f32, sway: f32) -> Frame {
        let cam = Camera {
            x: self.camera.x + sway,
            ..self.camera
        };
        let (w, h) = (cam.width, cam.height);
        let mut rgb = Vec::with_capacity(w * h * 3);
        let mut boxes = vec![(u32::MAX, u32::MAX, 0u32, 0u32, 0usize); self.classes.len()];
        for row in 0..h {
            let dv = row as f32 + 0.5 - cam.horizon;
            for col in 0..w {
                let noise = (lattice(
                    self.light.noise_seed,
                    col as i32,
                    row as i32 + (z * 97.0) as i32,
                ) - 0.5)
                    * 0.02;
                if dv <= 0.5 {
                    let t = (-dv / cam.horizon.max(1.0)).clamp(0.0, 1.0);
                    let sky = [0, 1, 2].map(|i| self.light.sky[i] * (1.0 - 0.35 * t));
                    rgb.extend_from_slice(&self.light.finish(sky, f32::INFINITY, noise));
                    continue;
                }
                let d = cam.focal * cam.mount / dv;
                let x = cam.x + cam.yaw * d + (col as f32 + 0.5 - w as f32 / 2.0) * d / cam.focal;
                let (c, id) = self.world.sample(x, z + d);
                if id != 0 {
                    let b = &mut boxes[id as usize - 1];
                    *b = (
                        b.0.min(col as u32),
                        b.1.min(row as u32),
                        b.2.max(col as u32 + 1),
                        b.3.max(row as u32 + 1),
                        b.4 + 1,
                    );
                }
                rgb.extend_from_slice(&self.light.finish(c, d, noise));
            }
        }
        let min_area = (w * h / 2500).max(12);
        let labels = boxes
            .iter()
            .zip(&self.classes)
            .filter(|(b, _)| b.4 >= min_area && b.2 - b.0 >= 3 && b.3 - b.1 >= 3)
            .map(|(b, &class)| Label {
                class,
                x0: b.0,
                y0: b.1,
                x1: b.2,
                y1: b.3,
            })
            .collect();
        Frame {
            width: w,
            height: h,
            rgb,
            labels,
        }
    }
}

/// Finds a free spot for `class` within ground range `place` (and, if `in_view`, inside
/// the view of the camera at z = 0); a
/// [`Class::WhiteLineBlur`] takes one of `markings` out of the list (it is drawn faded
/// instead of normally). `None` when no spot was found in a few tries.
#[allow(clippy::too_many_arguments)]
fn place_instance(
    rng: &mut Rng,
    camera: &Camera,
    world: &World,
    class: Class,
    place: (f32, f32),
    in_view: bool,
    markings: &mut Vec<Quad>,
    taken: &[Bounds],
) -> Option<(Point, Option<Quad>)> {
    let (ex, ez) = extent(class);
    let road = world.layout.road_half;
    for _ in 0..12 {
        // Uniform in inverse depth is uniform in image rows: near damage is as common in the
        // picture as far damage, as in dashboard footage.
        let z = if in_view {
            1.0 / rng.range(1.0 / place.1, 1.0 / place.0)
        } else {
            rng.range(place.0, place.1)
        };
        let (lo, hi) = if in_view {
            camera.lateral_at(z.max(camera.nearest_depth()))
        } else {
            (-road, road)
        };
        let (lo, hi) = (lo.max(-road + 0.3), hi.min(road - 0.3));
        let mut at = (rng.range(lo.min(hi), hi.max(lo)), z);
        let mut marking = None;
        match class {
            Class::CrosswalkBlur => at.0 = 0.0,
            Class::WhiteLineBlur => {
                let near: Vec<usize> = (0..markings.len())
                    .filter(|&i| {
                        let q = markings[i];
                        q[0].1 >= place.0
                            && q[2].1 <= place.1 + 2.0
                            && q[0].0 > lo - 0.5
                            && q[1].0 < hi + 0.5
                    })
                    .collect();
                if near.is_empty() {
                    continue;
                }
                let quad = markings.remove(near[rng.below(near.len())]);
                at = ((quad[0].0 + quad[1].0) / 2.0, (quad[0].1 + quad[2].1) / 2.0);
                marking = Some(quad);
            }
            _ => {}
        }
        let free = taken
            .iter()
            .all(|t| at.0 + ex < t.0 || at.0 - ex > t.2 || at.1 + ez < t.1 || at.1 - ez > t.3);
        if free {
            return Some((at, marking));
        }
        if let Some(quad) = marking {
            markings.push(quad);
        }
    }
    None
}

/// Renders image `index` of `split` for `seed`: a `size`×`size` road scene with 1 to 5
/// damage instances and its exact labels. A pure function of its arguments.
pub fn generate_image(split: Split, seed: u64, index: u64, size: usize) -> Frame {
    let mut rng = Rng::new(split.image_seed(seed, index));
    let style = split.style();
    let count = 1 + rng.below(5);
    // Place damage between the nearest visible ground and PLACE_DEPTH metres beyond it.
    let probe = Camera::random(&mut rng.clone(), &style, size, size, 3.5);
    let near = probe.nearest_depth();
    let scene = Scene::new(
        &mut rng,
        &style,
        (size, size),
        60.0,
        (near + 0.2, near + PLACE_DEPTH),
        true,
        count,
    );
    scene.render(0.0, 0.0)
}

/// A camera driving along one long road: yields `frames` consecutive frames of
/// `width`×`height`, 0.4 m apart (about 43 km/h at 30 fps), with gentle lateral sway.
#[derive(Clone, Debug)]
pub struct RoadVideo {
    scene: Scene,
    next: usize,
    frames: usize,
    step: f32,
}

impl RoadVideo {
    /// The video of `split`'s style for `seed`. `width` and `height` must be even (YUV 4:2:0).
    pub fn new(split: Split, seed: u64, frames: usize, width: usize, height: usize) -> RoadVideo {
        // Index u64::MAX is never an image index, so videos never repeat an image's scene.
        let mut rng = Rng::new(split.image_seed(seed, u64::MAX));
        let style = split.style();
        let step = 0.4;
        let length = frames as f32 * step + 70.0;
        let count = (length / 5.0) as usize;
        let scene = Scene::new(
            &mut rng,
            &style,
            (width, height),
            length,
            (3.0, length - 40.0),
            false,
            count,
        );
        RoadVideo {
            scene,
            next: 0,
            frames,
            step,
        }
    }
}

impl Iterator for RoadVideo {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.next >= self.frames {
            return None;
        }
        let t = self.next as f32;
        self.next += 1;
        Some(self.scene.render(t * self.step, 0.25 * (t * 0.02).sin()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.frames - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for RoadVideo {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders one pothole on a plain road, and the same road without it.
    fn with_and_without_pothole() -> (Frame, Frame) {
        let style = Style::standard();
        let mut rng = Rng::new(42);
        let world = World::new(&mut rng, &style, 30.0, 0.03);
        let camera = Camera::random(&mut rng, &style, 160, 160, world.layout.lane_width);
        let light = Light::random(&mut rng, &style);
        let plain = Scene {
            world: world.clone(),
            camera,
            light,
            classes: vec![],
        };
        let mut damaged = Scene {
            world,
            camera,
            light,
            classes: vec![Class::Pothole],
        };
        let at = (camera.x, camera.nearest_depth() + 3.0);
        damage::draw(&mut damaged.world, &mut rng, Class::Pothole, at, 1, None);
        (damaged.render(0.0, 0.0), plain.render(0.0, 0.0))
    }

    #[test]
    fn pothole_box_is_the_tight_bound_of_the_changed_pixels() {
        let (damaged, plain) = with_and_without_pothole();
        assert_eq!(damaged.labels.len(), 1);
        let l = damaged.labels[0];
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        let (mut darker, mut changed) = (0, 0);
        for (i, (a, b)) in damaged.rgb.chunks(3).zip(plain.rgb.chunks(3)).enumerate() {
            let luma = |p: &[u8]| p.iter().map(|&v| f32::from(v)).sum::<f32>();
            if a != b {
                let (x, y) = ((i % 160) as u32, (i / 160) as u32);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                changed += 1;
                darker += usize::from(luma(a) < luma(b));
            }
        }
        assert_eq!((l.x0, l.y0, l.x1, l.y1), (x0, y0, x1, y1));
        assert!(changed > 50, "{changed} pixels changed");
        assert!(darker * 10 > changed * 7, "{darker} of {changed} darker");
    }

    #[test]
    fn nothing_drawn_means_no_labels_and_a_sky_above_the_horizon() {
        let (_, plain) = with_and_without_pothole();
        assert!(plain.labels.is_empty());
        let top = &plain.rgb[..3];
        assert!(top[2] > top[0], "sky is blue-ish: {top:?}");
    }
}
