//! Procedural pavement-damage scenes with exact bounding boxes, for training and measuring
//! road-damage detectors (YOLO9tr) without a downloaded data set.
//!
//! A scene is built on the ground plane in metres ([`world`]): an asphalt texture, lane
//! markings, damage instances ([`damage`]) painted with an instance-id mask, and soft
//! shadows. A pinhole camera above the road ([`scene`]) renders it through the ground-plane
//! homography (the road vanishes towards a horizon) and applies lighting and weather. Every
//! label box is the tight bound of the image pixels whose ground point belongs to that
//! instance, so the boxes are exact by construction, whatever the perspective.
//!
//! Everything is a pure function of `(split, seed, index)`: the same arguments give
//! byte-identical images on every machine. The splits draw from disjoint seed streams, and
//! [`Split::Shifted`] also uses another [`Style`] (lighting, palette, texture) to measure
//! generalisation. [`write`] turns scenes into YOLO-format folders and Y4M road videos.
//!
//! [`speech`] is the audio counterpart: a road inspector's spoken commands synthesised by
//! espeak-ng, for the streaming speech recogniser.

pub mod damage;
pub mod rng;
pub mod scene;
pub mod speech;
pub mod world;
pub mod write;

pub use scene::{generate_image, RoadVideo};

/// The damage classes, in class-id order (RDD2022's codes plus extended classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// D00: longitudinal crack, along the driving direction.
    LongitudinalCrack,
    /// D10: transverse crack, across the road.
    TransverseCrack,
    /// D20: alligator crack, a network of polygonal cells.
    AlligatorCrack,
    /// D40: pothole.
    Pothole,
    /// D43: crosswalk blur (worn zebra markings).
    CrosswalkBlur,
    /// D44: white-line blur (a faded lane marking).
    WhiteLineBlur,
    /// D50: manhole cover.
    Manhole,
    /// A repair patch of differently textured asphalt.
    Repair,
}

impl Class {
    /// All classes, in class-id order.
    pub const ALL: [Class; 8] = [
        Class::LongitudinalCrack,
        Class::TransverseCrack,
        Class::AlligatorCrack,
        Class::Pothole,
        Class::CrosswalkBlur,
        Class::WhiteLineBlur,
        Class::Manhole,
        Class::Repair,
    ];

    /// The class id written into label files.
    pub fn id(self) -> usize {
        self as usize
    }

    /// The short name written into `data.yaml` (RDD2022 codes where they exist).
    pub fn name(self) -> &'static str {
        ["D00", "D10", "D20", "D40", "D43", "D44", "D50", "Repair"][self.id()]
    }
}

/// Which part of a data set an image belongs to; each split has its own seed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training images.
    Train,
    /// Validation images.
    Val,
    /// Held-out test images, same style as training.
    Test,
    /// Held-out test images in the shifted style.
    Shifted,
}

impl Split {
    /// The name used on the command line and in folder names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Shifted => "shifted",
        }
    }

    /// Parses a split name.
    pub fn parse(name: &str) -> Option<Split> {
        [Split::Train, Split::Val, Split::Test, Split::Shifted]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// The style its scenes are drawn in.
    pub fn style(self) -> Style {
        match self {
            Split::Shifted => Style::shifted(),
            _ => Style::standard(),
        }
    }

    /// The seed of image `index` of this split: a hash of (split, seed, index), so the
    /// splits' streams never share an image.
    pub fn image_seed(self, seed: u64, index: u64) -> u64 {
        rng::combine(&[0x5eed_0000 + self as u64, seed, index])
    }
}

/// An inclusive-exclusive range `[lo, hi)` a parameter is drawn from.
pub type Range = (f32, f32);

/// The look of a split: palette, texture and lighting ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Style {
    /// Base asphalt grey level (0..1).
    pub asphalt: Range,
    /// Per-channel tint of the asphalt added to the grey (warm > 0).
    pub asphalt_tint: Range,
    /// Size of the large texture blobs, metres.
    pub texture_scale: Range,
    /// Fraction of world pixels that are bright or dark aggregate stones.
    pub aggregate: Range,
    /// Overall brightness multiplier.
    pub brightness: Range,
    /// Contrast around mid-grey.
    pub contrast: Range,
    /// Strength of a random colour cast.
    pub cast: f32,
    /// Probability of a wet road (darker, with sky reflection).
    pub wet: f32,
    /// Visibility distance for haze, metres.
    pub visibility: Range,
    /// Probability that a shadow falls across the road; shadows per scene.
    pub shadows: (f32, usize),
    /// Sky colour at the horizon.
    pub sky: [f32; 3],
    /// Camera height above the road, metres.
    pub camera_height: Range,
}

impl Style {
    /// The style of the train, val and test splits: daylight grey asphalt.
    pub fn standard() -> Style {
        Style {
            asphalt: (0.30, 0.48),
            asphalt_tint: (-0.02, 0.02),
            texture_scale: (0.8, 2.0),
            aggregate: (0.04, 0.12),
            brightness: (0.85, 1.15),
            contrast: (0.85, 1.15),
            cast: 0.05,
            wet: 0.15,
            visibility: (120.0, 400.0),
            shadows: (0.6, 3),
            sky: [0.70, 0.80, 0.92],
            camera_height: (1.3, 1.8),
        }
    }

    /// The style-shifted split: pale, coarse, warm-lit pavement at dusk with more haze and a
    /// higher camera, none of which the training split shows.
    pub fn shifted() -> Style {
        Style {
            asphalt: (0.50, 0.62),
            asphalt_tint: (0.03, 0.07),
            texture_scale: (0.3, 0.6),
            aggregate: (0.15, 0.25),
            brightness: (0.60, 0.80),
            contrast: (0.70, 0.90),
            cast: 0.12,
            wet: 0.35,
            visibility: (40.0, 90.0),
            shadows: (0.8, 4),
            sky: [0.95, 0.72, 0.55],
            camera_height: (1.9, 2.3),
        }
    }
}

/// One labelled instance in an image: a class and its pixel box `[x0, x1) × [y0, y1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    /// The damage class.
    pub class: Class,
    /// Left column (inclusive).
    pub x0: u32,
    /// Top row (inclusive).
    pub y0: u32,
    /// Right column (exclusive).
    pub x1: u32,
    /// Bottom row (exclusive).
    pub y1: u32,
}

/// A rendered RGB8 image and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major RGB8 pixels, `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// The visible damage instances.
    pub labels: Vec<Label>,
}
