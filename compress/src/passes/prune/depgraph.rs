//! Which tensor entries must disappear together when one output channel of a Conv goes.
//!
//! Every channel axis the analysis meets — axis 1 of an activation, an axis of a weight or
//! per-channel parameter — gets one *slot* per channel, and each op the analysis
//! understands joins the slots that must stay aligned: an activation's channel c with its
//! input's channel c; a Conv's output channel k with row k of its weight and entry k of its
//! bias; its input channel c with column c of its weight; the operands of a residual Add;
//! a Concat input's channel c with the output's channel `offset + c`; a Split output's
//! with the input's at its offset. The joined sets (union-find classes) are the units that
//! can be removed: each holds one channel of every tensor axis it touches.
//!
//! A class is *refused* — kept whole — when it reaches something whose meaning would change
//! without it: a graph input or output, an op the analysis does not know (Reshape,
//! Transpose and MatMul on activations, as in attention blocks; Softmax across channels),
//! a grouped conv, a weight that several nodes share. Unknown ops therefore make the
//! analysis conservative, never wrong.
//!
//! Classes are gathered into *layers* by their set of producers (the Conv/Gemm/MatMul whose
//! weight rows make the channel): a Conv's output channels form one layer; convs whose
//! outputs meet in residual Adds form one layer together.

use crate::error::{Error, Result};
use crate::exec;
use crate::graph::{self, Uses};
use std::collections::{BTreeMap, HashMap};
use tract_onnx::pb::{GraphProto, ModelProto};

use super::super::Context;

/// One channel axis of one tensor.
#[derive(Clone, Debug)]
pub struct Axis {
    /// The tensor (activation edge or initializer).
    pub tensor: String,
    /// Which axis of it.
    pub axis: usize,
    /// Channels on it.
    pub size: usize,
    /// Slot id of its channel 0.
    base: usize,
}

/// A node attribute or input that counts channels and must be rewritten after pruning.
#[derive(Clone, Debug)]
pub enum Fixup {
    /// Depthwise Conv: `group` = channels kept on `axis`.
    Group {
        /// Node index.
        node: usize,
        /// Axis id of its output channels.
        axis: usize,
    },
    /// Split along channels: one size per output axis.
    Split {
        /// Node index.
        node: usize,
        /// Axis ids of the outputs' channels.
        outputs: Vec<usize>,
    },
    /// Slice along channels: entry `pos` of starts/ends becomes the kept range.
    Slice {
        /// Node index.
        node: usize,
        /// Axis id of the input's channels.
        input: usize,
        /// Axis id of the output's channels.
        output: usize,
        /// Position of the channel axis in the node's `axes`.
        pos: usize,
        /// The original start (normalised).
        start: usize,
    },
    /// Resize with `sizes`: `sizes[1]` = channels kept on `output`.
    ResizeSizes {
        /// Node index.
        node: usize,
        /// Axis id of the output's channels.
        output: usize,
    },
}

/// A node whose weight rows make channels: row `k` of `weight` along `weight_axis` makes
/// channel `k` of `output`.
#[derive(Clone, Debug)]
pub struct Producer {
    /// Node index.
    pub node: usize,
    /// The weight initializer.
    pub weight: String,
    /// Its output-channel axis.
    pub weight_axis: usize,
    /// Axis id of the node's input channels.
    pub input: usize,
    /// Axis id of the node's output channels.
    pub output: usize,
}

/// One removable unit: the slots that go together.
#[derive(Clone, Debug)]
pub struct Class {
    /// Slot ids.
    pub slots: Vec<usize>,
    /// (producer index, channel) pairs making this channel.
    pub producers: Vec<(usize, usize)>,
    /// Why it must stay (index into [`DepGraph::reasons`]).
    pub refused: Option<usize>,
}

/// The prunable classes sharing one set of producers.
#[derive(Clone, Debug)]
pub struct Group {
    /// Producer indices.
    pub producers: Vec<usize>,
    /// Prunable class indices, in slot order.
    pub classes: Vec<usize>,
    /// A name for reports: the first producer node's.
    pub name: String,
}

/// The result of the analysis.
#[derive(Clone, Debug, Default)]
pub struct DepGraph {
    /// Every channel axis met.
    pub axes: Vec<Axis>,
    /// Attributes to rewrite.
    pub fixups: Vec<Fixup>,
    /// Conv/Gemm/MatMul nodes making channels.
    pub producers: Vec<Producer>,
    /// Every class that has a producer.
    pub classes: Vec<Class>,
    /// Layers with prunable classes.
    pub groups: Vec<Group>,
    /// Refusal reasons.
    pub reasons: Vec<String>,
    /// Class index of each slot (`u32::MAX`: a class without producer).
    class_of: Vec<u32>,
    slot_axis: Vec<u32>,
}

impl DepGraph {
    /// Axis id and channel of a slot.
    pub fn slot(&self, slot: usize) -> (usize, usize) {
        let a = self.slot_axis[slot] as usize;
        (a, slot - self.axes[a].base)
    }

    /// Slot id of channel `k` of axis `a`.
    pub fn slot_of(&self, a: usize, k: usize) -> usize {
        self.axes[a].base + k
    }

    /// Class index of a slot, if it belongs to one with a producer.
    pub fn class_of(&self, slot: usize) -> Option<usize> {
        let c = self.class_of[slot];
        (c != u32::MAX).then_some(c as usize)
    }

    /// Total slot count.
    pub fn slot_count(&self) -> usize {
        self.slot_axis.len()
    }

    /// How many classes may be removed.
    pub fn prunable_count(&self) -> usize {
        self.groups.iter().map(|g| g.classes.len()).sum()
    }

    /// One line per kind of refusal, most channels first (at most four, then a count).
    pub fn refusals(&self) -> Vec<String> {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for c in &self.classes {
            if let Some(r) = c.refused {
                *counts.entry(r).or_default() += 1;
            }
        }
        let mut v: Vec<(usize, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: usize = v.iter().map(|x| x.1).sum();
        if total == 0 {
            return Vec::new();
        }
        let mut parts: Vec<String> = v
            .iter()
            .take(4)
            .map(|&(r, n)| format!("{n} {}", self.reasons[r]))
            .collect();
        if v.len() > 4 {
            parts.push(format!("{} more reasons", v.len() - 4));
        }
        vec![format!("{total} kept: {}", parts.join(", "))]
    }
}

/// Runs the analysis on `model` for the context's input shapes.
pub fn analyse(model: &ModelProto, ctx: &Context) -> Result<DepGraph> {
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::Decode("the model has no graph".into()))?;
    let mut names: Vec<String> = g.node.iter().flat_map(|n| n.output.clone()).collect();
    names.retain(|n| !n.is_empty());
    let planned = exec::edge_shapes(model, &ctx.shape_refs(), &names).ok_or_else(|| {
        Error::Unsupported(
            "prune: the runtime cannot plan this model, so its channel counts are unknown \
             (give --input-shape for free dims)"
                .into(),
        )
    })?;
    let mut shapes: HashMap<String, Vec<usize>> =
        planned.into_iter().map(|(k, (_, d))| (k, d)).collect();
    for v in graph::real_inputs(g) {
        if let Some(d) = graph::declared_dims(g, &v.name) {
            shapes.insert(v.name.clone(), d);
        }
    }
    for (k, v) in graph::real_inputs(g).iter().zip(ctx.shape_refs()) {
        shapes.insert(k.name.clone(), v.to_vec());
    }
    for t in &g.initializer {
        shapes.insert(
            t.name.clone(),
            t.dims.iter().map(|&d| d.max(0) as usize).collect(),
        );
    }
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let mut b = Builder {
        g,
        opset,
        shapes,
        inits: graph::initializer_index(g),
        dg: DepGraph::default(),
        index: HashMap::new(),
        parent: Vec::new(),
        fixed: Vec::new(),
    };
    for (i, n) in g.node.iter().enumerate() {
        if let Err(why) = b.node(i, n) {
            let sep = if why.is_empty() { "" } else { ": " };
            let r = b.reason(format!("reach {} {}{sep}{why}", n.op_type, graph::label(n)));
            for t in n.input.iter().chain(&n.output).filter(|t| !t.is_empty()) {
                b.fixed.push((t.clone(), r));
            }
        }
    }
    Ok(b.finish())
}

pub(super) struct Builder<'a> {
    pub(super) g: &'a GraphProto,
    pub(super) opset: i64,
    pub(super) shapes: HashMap<String, Vec<usize>>,
    pub(super) inits: HashMap<&'a str, usize>,
    pub(super) dg: DepGraph,
    pub(super) index: HashMap<(String, usize), usize>,
    pub(super) parent: Vec<u32>,
    /// Tensors to keep whole, with the reason.
    pub(super) fixed: Vec<(String, usize)>,
}

pub(super) type Handled = std::result::Result<(), String>;

impl Builder<'_> {
    pub(super) fn dims(&self, name: &str) -> std::result::Result<&[usize], String> {
        self.shapes
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("shape of {name} unknown"))
    }

    pub(super) fn is_init(&self, name: &str) -> bool {
        self.inits.contains_key(name)
    }

    pub(super) fn reason(&mut self, text: String) -> usize {
        if let Some(i) = self.dg.reasons.iter().position(|r| *r == text) {
            return i;
        }
        self.dg.reasons.push(text);
        self.dg.reasons.len() - 1
    }

    /// The axis id of `name`'s axis `axis`, registered on first use.
    pub(super) fn axis(&mut self, name: &str, axis: usize) -> std::result::Result<usize, String> {
        if let Some(&a) = self.index.get(&(name.to_string(), axis)) {
            return Ok(a);
        }
        let size = *self
            .dims(name)?
            .get(axis)
            .ok_or_else(|| format!("{name} has no axis {axis}"))?;
        let id = self.dg.axes.len();
        let base = self.parent.len();
        self.dg.axes.push(Axis {
            tensor: name.to_string(),
            axis,
            size,
            base,
        });
        self.parent.extend((base..base + size).map(|s| s as u32));
        self.dg
            .slot_axis
            .extend(std::iter::repeat_n(id as u32, size));
        self.index.insert((name.to_string(), axis), id);
        Ok(id)
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            let p = self.parent[x] as usize;
            self.parent[x] = self.parent[p];
            x = p;
        }
        x
    }

    /// Joins channels `a_off..a_off+len` of axis `a` with `b_off..` of axis `b`.
    pub(super) fn join(
        &mut self,
        a: usize,
        a_off: usize,
        b: usize,
        b_off: usize,
        len: usize,
    ) -> Handled {
        let (sa, sb) = (&self.dg.axes[a], &self.dg.axes[b]);
        if a_off + len > sa.size || b_off + len > sb.size {
            return Err(format!("{} and {} do not line up", sa.tensor, sb.tensor));
        }
        let (ba, bb) = (sa.base + a_off, sb.base + b_off);
        for k in 0..len {
            let (x, y) = (self.find(ba + k), self.find(bb + k));
            let (lo, hi) = (x.min(y), x.max(y));
            self.parent[hi] = lo as u32;
        }
        Ok(())
    }

    /// Joins two whole axes of equal size.
    pub(super) fn join_all(&mut self, a: usize, b: usize) -> Handled {
        let (na, nb) = (self.dg.axes[a].size, self.dg.axes[b].size);
        if na != nb {
            let (ta, tb) = (&self.dg.axes[a].tensor, &self.dg.axes[b].tensor);
            return Err(format!("{ta} has {na} channels, {tb} {nb}"));
        }
        self.join(a, 0, b, 0, na)
    }

    /// Joins channel axis 1 of `x` with that of `y` when both have one.
    pub(super) fn pass(&mut self, x: &str, y: &str) -> Handled {
        let (rx, ry) = (self.dims(x)?.len(), self.dims(y)?.len());
        match (rx >= 2, ry >= 2) {
            (true, true) => {
                let (a, b) = (self.axis(x, 1)?, self.axis(y, 1)?);
                self.join_all(a, b)
            }
            (false, false) => Ok(()),
            _ => Err("changes rank".into()),
        }
    }

    pub(super) fn init_ints(&self, name: &str) -> std::result::Result<Vec<i64>, String> {
        let t = self
            .inits
            .get(name)
            .map(|&k| &self.g.initializer[k])
            .ok_or_else(|| format!("{name} is computed at run time"))?;
        graph::i64s(t).map_err(|e| e.to_string())
    }

    fn finish(mut self) -> DepGraph {
        let g = self.g;
        let uses = Uses::of(g);
        let mut always: Vec<(String, String)> = Vec::new();
        for v in &g.input {
            always.push((v.name.clone(), format!("graph input {}", v.name)));
        }
        for v in &g.output {
            always.push((v.name.clone(), format!("graph output {}", v.name)));
        }
        let mut pinned: Vec<&String> = uses.pinned.iter().collect();
        pinned.sort();
        for p in pinned {
            always.push((p.clone(), format!("read by a subgraph: {p}")));
        }
        for a in &self.dg.axes {
            if self.is_init(&a.tensor) && uses.readers(&a.tensor).len() > 1 {
                always.push((a.tensor.clone(), format!("shared weight {}", a.tensor)));
            }
        }
        for (t, why) in always {
            let r = self.reason(why);
            self.fixed.push((t, r));
        }
        let slots = self.parent.len();
        let mut fixed: Vec<Option<usize>> = vec![None; slots];
        let mut axes_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for (id, a) in self.dg.axes.iter().enumerate() {
            axes_of.entry(a.tensor.as_str()).or_default().push(id);
        }
        for (t, r) in &self.fixed {
            for &a in axes_of.get(t.as_str()).map_or(&[][..], Vec::as_slice) {
                let ax = &self.dg.axes[a];
                for f in &mut fixed[ax.base..ax.base + ax.size] {
                    f.get_or_insert(*r);
                }
            }
        }
        // Producers' channels, by root slot.
        let mut made: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for p in 0..self.dg.producers.len() {
            let out = self.dg.producers[p].output;
            let (base, size) = (self.dg.axes[out].base, self.dg.axes[out].size);
            for k in 0..size {
                let root = self.find(base + k);
                made.entry(root).or_default().push((p, k));
            }
        }
        let mut class_of = vec![u32::MAX; slots];
        let mut root_class: HashMap<usize, usize> = HashMap::new();
        for s in 0..slots {
            let root = self.find(s);
            let Some(producers) = made.get(&root) else {
                continue;
            };
            let c = *root_class.entry(root).or_insert_with(|| {
                self.dg.classes.push(Class {
                    slots: Vec::new(),
                    producers: producers.clone(),
                    refused: None,
                });
                self.dg.classes.len() - 1
            });
            let class = &mut self.dg.classes[c];
            class.slots.push(s);
            if class.refused.is_none() {
                class.refused = fixed[s];
            }
            class_of[s] = c as u32;
        }
        let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
        for (c, class) in self.dg.classes.iter().enumerate() {
            if class.refused.is_some() {
                continue;
            }
            let mut key: Vec<usize> = class.producers.iter().map(|p| p.0).collect();
            key.sort_unstable();
            key.dedup();
            groups.entry(key).or_default().push(c);
        }
        self.dg.groups = groups
            .into_iter()
            .map(|(producers, classes)| Group {
                name: graph::label(&g.node[self.dg.producers[producers[0]].node]).to_string(),
                producers,
                classes,
            })
            .collect();
        self.dg.class_of = class_of;
        self.dg
    }
}
