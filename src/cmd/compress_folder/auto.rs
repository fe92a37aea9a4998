//! `--slice auto --budget ...`: the largest slice of a supernet that fits a device.
//!
//! The grid is every depth 1..=L with every width of [`WIDTHS`]. A supernet is only good at
//! the subnets it was trained as (a width it never sampled transcribes garbage), so when its
//! export says which those were (`edgetrim.train.widths` and `edgetrim.train.min_depth`,
//! relative to `edgetrim.asr.supernet`) the candidates are the grid slices of those sizes;
//! without these keys every grid slice is one. "Largest" is by parameters, then depth: in a
//! supernet trained with sandwich sampling the larger subnet is the more accurate one, and
//! parameters are what slicing trades away. Candidates are
//! compressed and measured exactly as the final model would be (same passes, same
//! calibration), largest first, and the first that fits is the answer; when none does,
//! the command fails naming the nearest miss (the smallest worst-case overshoot).

use super::{build, meta, Built, Folder, Plan};
use crate::human;
use anyhow::{anyhow, bail, Context as _, Result};
use edgetrim_compress::budget::{Budget, Cost};
use edgetrim_compress::graph;
use edgetrim_compress::pb::ModelProto;
use edgetrim_compress::slice::{self, Slice};
use serde::Serialize;
use std::io::Write;

/// Width fractions of the grid.
pub const WIDTHS: [f64; 7] = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0];

/// The sizes of the subnets a supernet was trained as: at least `min_depth` layers, and
/// the (hidden, pred_hidden) of one trained width.
struct Trained {
    min_depth: usize,
    widths: Vec<(usize, usize)>,
}

impl Trained {
    /// From the encoder's metadata; `None` when it does not say.
    fn of(encoder: &ModelProto, file: &str) -> Result<Option<Trained>> {
        let (Some(widths), Some(min_depth), Some(supernet)) = (
            meta(encoder, "edgetrim.train.widths"),
            meta(encoder, "edgetrim.train.min_depth"),
            meta(encoder, "edgetrim.asr.supernet"),
        ) else {
            return Ok(None);
        };
        let bad = |key: &str, v: &str| anyhow!("{file}: metadata {key} = {v:?} is malformed");
        let size = |key: &str| {
            supernet
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| bad("edgetrim.asr.supernet", supernet))
        };
        let (hidden, pred) = (size("hidden")?, size("pred_hidden")?);
        let widths = widths
            .split(',')
            .map(|w| {
                let w: f64 = w
                    .trim()
                    .parse()
                    .map_err(|_| bad("edgetrim.train.widths", widths))?;
                Ok((slice::width_units(w, hidden), slice::width_units(w, pred)))
            })
            .collect::<Result<_>>()?;
        let min_depth = min_depth
            .parse()
            .map_err(|_| bad("edgetrim.train.min_depth", min_depth))?;
        Ok(Some(Trained { min_depth, widths }))
    }

    /// Whether slice `s` of a folder whose encoder is `encoder` is a trained subnet.
    fn contains(&self, encoder: &ModelProto, s: &Slice) -> bool {
        let num = |k: &str| meta(encoder, k).and_then(|v| v.parse::<usize>().ok());
        let (Some(layers), Some(hidden), Some(pred)) = (
            num("edgetrim.asr.layers"),
            num("edgetrim.asr.hidden"),
            num("edgetrim.asr.pred_hidden"),
        ) else {
            return false;
        };
        let kept = (
            slice::width_units(s.width, hidden),
            slice::width_units(s.width, pred),
        );
        s.depth.unwrap_or(layers) >= self.min_depth && self.widths.contains(&kept)
    }
}

/// One slice tried.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// `depth=D,width=W`.
    pub slice: String,
    /// Parameters of the three graphs after slicing (before quantization).
    pub params: u64,
    /// Flash bytes after the passes.
    pub flash_bytes: u64,
    /// MACs per second of audio.
    pub macs_per_second: u64,
    /// The recogniser's arena bytes.
    pub arena_bytes: u64,
    /// Whether it is within the budget.
    pub fits: bool,
}

fn costs(c: &Cost) -> String {
    format!(
        "flash {}, {} MAC/s, arena {}",
        human::bytes(c.flash),
        human::count(c.macs),
        human::bytes(c.ram)
    )
}

/// Every slice of the grid (depths 1..=L, [`WIDTHS`]) with its parameters, largest first
/// (by parameters, then depth).
pub fn grid(folder: &Folder) -> Result<Vec<(u64, Slice)>> {
    let rules = folder
        .graphs
        .iter()
        .enumerate()
        .map(|(i, g)| slice::rules_of(g).with_context(|| folder.file(i)))
        .collect::<Result<Vec<_>>>()?;
    let Some(layers) = slice::max_depth(&rules.iter().collect::<Vec<_>>()) else {
        bail!("no graph of {} has depth rules", folder.dir.display());
    };
    let mut grid = Vec::new();
    for depth in 1..=layers {
        for width in WIDTHS {
            let s = Slice {
                depth: Some(depth),
                width,
            };
            let (graphs, _) = folder.sliced(&s)?;
            let params: u64 = graphs
                .iter()
                .filter_map(|m| m.graph.as_ref())
                .map(|g| graph::params(g).0)
                .sum();
            grid.push((params, s));
        }
    }
    grid.sort_by(|(pa, a), (pb, b)| pb.cmp(pa).then(b.depth.cmp(&a.depth)));
    Ok(grid)
}

/// Tries the grid largest first; returns the first slice within `budget` (`text` is the
/// flag as given, for messages), printing one line per candidate into `table`.
pub fn search<W: Write + ?Sized>(
    folder: &Folder,
    plan: &Plan,
    budget: &Budget,
    text: &str,
    mut table: Option<&mut W>,
) -> Result<Built> {
    let mut grid = grid(folder).context("--slice auto")?;
    let all = grid.len();
    let trained = Trained::of(&folder.graphs[0], &folder.file(0))?;
    if let Some(t) = &trained {
        grid.retain(|(_, s)| t.contains(&folder.graphs[0], s));
        if grid.is_empty() {
            bail!("--slice auto: no slice of the grid is a subnet the supernet was trained as (edgetrim.train.* metadata)");
        }
    }
    if let Some(t) = table.as_mut() {
        let scope = match trained {
            Some(_) => format!(
                "the subnets the supernet was trained as, {} other grid slices skipped",
                all - grid.len()
            ),
            None => "the whole grid: the metadata does not say which subnets were trained".into(),
        };
        writeln!(
            t,
            "--slice auto --budget {text}: {} candidates ({scope}), largest first",
            grid.len()
        )?;
        writeln!(
            t,
            "{:<22} {:>10} {:>10} {:>10} {:>10}  fits",
            "slice", "params", "flash", "MACs/s", "arena"
        )?;
    }
    let mut tried: Vec<Candidate> = Vec::new();
    let mut nearest: Option<(f64, String, Cost)> = None;
    for (params, s) in grid {
        let mut built = build(folder, Some(&s), plan)?;
        let Some(cost) = built.totals.cost() else {
            bail!("--slice auto: {s} cannot be measured on the runtime (see `edgetrim compress --slice {s}`)");
        };
        let fits = budget.fits(&cost);
        if let Some(t) = table.as_mut() {
            writeln!(
                t,
                "{:<22} {:>10} {:>10} {:>10} {:>10}  {}",
                s.to_string(),
                human::count(params),
                human::bytes(cost.flash),
                human::count(cost.macs),
                human::bytes(cost.ram),
                if fits { "yes" } else { "no" }
            )?;
        }
        tried.push(Candidate {
            slice: s.to_string(),
            params,
            flash_bytes: cost.flash,
            macs_per_second: cost.macs,
            arena_bytes: cost.ram,
            fits,
        });
        if fits {
            if let Some(t) = table.as_mut() {
                writeln!(t, "\nchose {s}: the largest slice within {text}\n")?;
            }
            built.candidates = tried;
            return Ok(built);
        }
        let over = budget.overshoot(&cost);
        if nearest.as_ref().is_none_or(|(o, _, _)| over < *o) {
            nearest = Some((over, s.to_string(), cost));
        }
    }
    match nearest {
        Some((over, s, cost)) => bail!(
            "--budget {text}: no slice fits; the nearest is {s} ({}), {:.0}% over",
            costs(&cost),
            (over - 1.0) * 100.0
        ),
        None => bail!("--slice auto: no candidate slices"),
    }
}
