//! What a detector's head channels mean, read from its model's metadata.
//!
//! A head output is only numbers: whether boxes are DFL bins or decoded, over which strides,
//! whether scores are logits, and what the classes are called is written into the ONNX
//! metadata by the exporter (`edgetrim.yolo.*` by `models/train/yolo9tr`; `names` by
//! Ultralytics, whose exports decode boxes and apply the sigmoid in the graph). The host
//! CLI and the firmware read it here, with the same rules, without allocating: class names
//! are served straight out of the metadata text.

use super::{ScoreFormat, STRIDES};
use crate::Error;

/// Most detection levels a head may list in `edgetrim.yolo.strides`.
pub const MAX_LEVELS: usize = 8;

/// The head layout of a YOLO model.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadMeta<'a> {
    /// DFL bins per box side; `None` when the head outputs decoded `cx, cy, w, h`.
    pub reg_max: Option<usize>,
    /// Strides of the output levels.
    pub strides: heapless::Vec<usize, MAX_LEVELS>,
    /// Whether class channels are logits or probabilities.
    pub scores: ScoreFormat,
    names: Names<'a>,
}

/// Where the class names are, in the metadata's own text.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Names<'a> {
    /// `D00,D10,...` (`edgetrim.yolo.names`).
    List(&'a str),
    /// `{0: 'person', 1: "bicycle"}` (Ultralytics' `names`).
    Dict(&'a str),
}

impl<'a> HeadMeta<'a> {
    /// Reads the layout through `meta` (metadata value by key): `edgetrim.yolo.reg_max`
    /// (with `strides`, `scores`, `names`) when present, otherwise an Ultralytics export
    /// (decoded boxes, probabilities, `names`), both with strides 8, 16, 32 by default.
    ///
    /// Errors with [`Error::Metadata`] naming the key whose value does not parse.
    pub fn from_metadata(meta: impl Fn(&str) -> Option<&'a str>) -> Result<HeadMeta<'a>, Error> {
        let default_strides = || heapless::Vec::from_slice(&STRIDES).unwrap_or_default();
        let Some(reg_max) = meta("edgetrim.yolo.reg_max") else {
            return Ok(HeadMeta {
                reg_max: None,
                strides: default_strides(),
                scores: ScoreFormat::Probabilities,
                names: Names::Dict(meta("names").unwrap_or("")),
            });
        };
        let bad = |key| Error::Metadata { key };
        let reg_max = reg_max
            .trim()
            .parse()
            .ok()
            .filter(|&r| r > 0)
            .ok_or(bad("edgetrim.yolo.reg_max"))?;
        let strides = match meta("edgetrim.yolo.strides") {
            Some(list) => {
                let mut strides = heapless::Vec::new();
                for s in list.split(',') {
                    let s = s.trim().parse().ok().filter(|&s: &usize| s > 0);
                    strides
                        .push(s.ok_or(bad("edgetrim.yolo.strides"))?)
                        .map_err(|_| bad("edgetrim.yolo.strides"))?;
                }
                strides
            }
            None => default_strides(),
        };
        Ok(HeadMeta {
            reg_max: Some(reg_max),
            strides,
            scores: match meta("edgetrim.yolo.scores") {
                Some("probabilities") => ScoreFormat::Probabilities,
                _ => ScoreFormat::Logits,
            },
            names: Names::List(meta("edgetrim.yolo.names").unwrap_or("")),
        })
    }

    /// Box channels before the class channels.
    pub fn box_channels(&self) -> usize {
        self.reg_max.map_or(4, |r| 4 * r)
    }

    /// The class names by index (none when the metadata has none).
    pub fn names(&self) -> impl Iterator<Item = &'a str> + Clone {
        let (text, dict) = match self.names {
            Names::List(text) => (text, false),
            Names::Dict(text) => (text.trim_matches(|c| c == '{' || c == '}'), true),
        };
        text.split(',')
            .filter(|entry| !entry.trim().is_empty())
            .filter_map(move |entry| {
                if !dict {
                    return Some(entry);
                }
                let (_, name) = entry.split_once(':')?;
                Some(name.trim().trim_matches(|c| c == '\'' || c == '"'))
            })
    }

    /// The name of class `class`, when the metadata has one.
    pub fn class_name(&self, class: u16) -> Option<&'a str> {
        self.names().nth(usize::from(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a>(pairs: &'a [(&'a str, &'a str)]) -> Result<HeadMeta<'a>, Error> {
        HeadMeta::from_metadata(|key| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v))
    }

    #[test]
    fn reads_edgetrim_metadata() {
        let head = parse(&[
            ("edgetrim.yolo.reg_max", "8"),
            ("edgetrim.yolo.strides", "8, 16,32"),
            ("edgetrim.yolo.names", "D00,D10,Repair"),
        ])
        .unwrap();
        assert_eq!(head.reg_max, Some(8));
        assert_eq!(head.strides, [8, 16, 32]);
        assert_eq!(head.scores, ScoreFormat::Logits);
        assert_eq!(head.box_channels(), 32);
        assert_eq!(head.class_name(2), Some("Repair"));
        assert_eq!(head.class_name(3), None);
    }

    #[test]
    fn reads_ultralytics_class_names() {
        let head =
            parse(&[("names", "{0: 'person', 1: \"bicycle\", 2: 'traffic light'}")]).unwrap();
        assert_eq!(head.reg_max, None);
        assert_eq!(head.scores, ScoreFormat::Probabilities);
        assert!(head.names().eq(["person", "bicycle", "traffic light"]));
        assert_eq!(parse(&[]).unwrap().names().count(), 0);
    }

    #[test]
    fn names_the_key_that_does_not_parse() {
        for (pairs, key) in [
            (
                &[("edgetrim.yolo.reg_max", "0")][..],
                "edgetrim.yolo.reg_max",
            ),
            (
                &[
                    ("edgetrim.yolo.reg_max", "16"),
                    ("edgetrim.yolo.strides", "8,x"),
                ][..],
                "edgetrim.yolo.strides",
            ),
            (
                &[
                    ("edgetrim.yolo.reg_max", "16"),
                    ("edgetrim.yolo.strides", "1,2,3,4,5,6,7,8,9"),
                ][..],
                "edgetrim.yolo.strides",
            ),
        ] {
            assert_eq!(parse(pairs), Err(Error::Metadata { key }));
        }
    }
}
