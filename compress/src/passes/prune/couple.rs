//! How each op couples channels: the rules [`super::depgraph`] applies node by node.
//!
//! A rule joins the channel slots that must stay aligned through its op and records the
//! attributes that count channels ([`Fixup`]); it returns an error — the op keeps all its
//! tensors whole — for anything it cannot follow: unknown ops, channels moved to another
//! axis (Reshape, Flatten of a spatial map), normalised or reduced across channels
//! (Softmax on axis 1, LayerNorm), computed weights, grouped convs with uneven groups.

use super::depgraph::{Builder, Fixup, Handled, Producer};
use crate::graph;
use tract_onnx::pb::NodeProto;

/// Ops whose output channel c depends on input channel c alone (first input; the others
/// are scalars or, for pooling, absent).
const UNARY: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Softplus",
    "Softsign",
    "Mish",
    "Erf",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Not",
    "IsNaN",
    "IsInf",
    "Identity",
    "Cast",
    "Clip",
    "Dropout",
    "Shrink",
    "ThresholdedRelu",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "MaxPool",
];

/// Elementwise ops with numpy broadcasting.
const BROADCAST: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "PRelu",
    "Where",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Mod",
];

const REDUCE: &[&str] = &[
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceSum",
    "ReduceL1",
    "ReduceL2",
    "ReduceProd",
    "ReduceSumSquare",
    "ReduceLogSumExp",
];

impl Builder<'_> {
    /// Joins what node `i` couples, or says why it cannot.
    pub(super) fn node(&mut self, i: usize, n: &NodeProto) -> Handled {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") || graph::subgraphs(n).next().is_some() {
            return Err(String::new());
        }
        let op = n.op_type.as_str();
        match op {
            "Conv" | "ConvTranspose" => self.conv(i, n),
            "Gemm" | "MatMul" => self.gemm(i, n),
            "Concat" => self.concat(n),
            "Split" => self.split(i, n),
            "Slice" => self.slice(i, n),
            "BatchNormalization" | "InstanceNormalization" => self.norm(n),
            "Flatten" => {
                let d = self.dims(input(n, 0))?;
                let axis = graph::attr_int(n, "axis", 1);
                if (axis == 1 || axis == 1 - d.len() as i64)
                    && d[2.min(d.len())..].iter().product::<usize>() == 1
                {
                    self.pass(input(n, 0), output(n, 0))
                } else {
                    Err("mixes channels with other axes".into())
                }
            }
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                let rank = self.dims(input(n, 0))?.len() as i64;
                let default = if self.opset < 13 { 1 } else { -1 };
                let axis = graph::attr_int(n, "axis", default);
                if axis.rem_euclid(rank.max(1)) <= 1 {
                    return Err("normalises across channels".into());
                }
                self.pass(input(n, 0), output(n, 0))
            }
            "Resize" | "Upsample" => self.resize(i, n),
            "Pad" => self.pad(n),
            _ if REDUCE.contains(&op) => self.reduce(n),
            _ if UNARY.contains(&op) => {
                if op == "MaxPool" && n.output.get(1).is_some_and(|o| !o.is_empty()) {
                    return Err("indices output".into());
                }
                for o in n.output.iter().filter(|o| !o.is_empty()) {
                    self.pass(input(n, 0), o)?;
                }
                Ok(())
            }
            _ if BROADCAST.contains(&op) => self.broadcast(n),
            _ => Err(String::new()),
        }
    }

    fn conv(&mut self, i: usize, n: &NodeProto) -> Handled {
        let (x, w, y) = (input(n, 0), input(n, 1), output(n, 0));
        let b = input(n, 2);
        if !self.is_init(w) || !(b.is_empty() || self.is_init(b)) {
            return Err("weights computed at run time".into());
        }
        let (xd, wd) = (self.dims(x)?.to_vec(), self.dims(w)?.to_vec());
        if xd.len() < 3 || wd.len() != xd.len() {
            return Err("unexpected ranks".into());
        }
        let group = graph::attr_int(n, "group", 1);
        let transpose = n.op_type == "ConvTranspose";
        let (x1, y1) = (self.axis(x, 1)?, self.axis(y, 1)?);
        let depthwise =
            !transpose && group > 1 && group as usize == xd[1] && wd[1] == 1 && wd[0] == xd[1];
        let g = group.max(1) as usize;
        let grouped =
            !transpose && !depthwise && xd[1] % g == 0 && wd[0] % g == 0 && wd[1] == xd[1] / g;
        if group == 1 || grouped {
            let (w_in, w_out) = if transpose { (0, 1) } else { (1, 0) };
            let (a, o) = (self.axis(w, w_in)?, self.axis(w, w_out)?);
            // With groups, weight column c serves input channel c of every group, and
            // the groups must stay equal: local channel k goes from all groups at once.
            let (cin, cout) = (xd[1] / g, wd[w_out] / g);
            for k in 0..g {
                self.join(x1, k * cin, a, 0, cin)?;
                self.join(y1, k * cout, y1, 0, cout)?;
            }
            self.join_all(y1, o)?;
            self.dg.producers.push(Producer {
                node: i,
                weight: w.to_string(),
                weight_axis: w_out,
                input: x1,
                output: y1,
            });
        } else if depthwise {
            let w0 = self.axis(w, 0)?;
            self.join_all(x1, y1)?;
            self.join_all(w0, y1)?;
            self.dg.fixups.push(Fixup::Group { node: i, axis: y1 });
        } else {
            return Err(format!("group {group}"));
        }
        if !b.is_empty() {
            let b0 = self.axis(b, 0)?;
            self.join_all(b0, y1)?;
        }
        Ok(())
    }

    /// Gemm (`transA = 0`) and MatMul of a 2-D activation by a 2-D weight.
    fn gemm(&mut self, i: usize, n: &NodeProto) -> Handled {
        let (a, w, c, y) = (input(n, 0), input(n, 1), input(n, 2), output(n, 0));
        let gemm = n.op_type == "Gemm";
        if !self.is_init(w) || self.is_init(a) || (gemm && graph::attr_int(n, "transA", 0) != 0) {
            return Err("not an activation times a weight".into());
        }
        if self.dims(a)?.len() != 2 || self.dims(w)?.len() != 2 {
            return Err("not 2-D".into());
        }
        let k_axis = usize::from(gemm && graph::attr_int(n, "transB", 0) != 0);
        let (a1, y1) = (self.axis(a, 1)?, self.axis(y, 1)?);
        let (wk, wn) = (self.axis(w, k_axis)?, self.axis(w, 1 - k_axis)?);
        self.join_all(a1, wk)?;
        self.join_all(y1, wn)?;
        if gemm && !c.is_empty() {
            if !self.is_init(c) {
                return Err("bias computed at run time".into());
            }
            let cd = self.dims(c)?.to_vec();
            let n_out = self.dg.axes[y1].size;
            match cd.as_slice() {
                [len] if *len == n_out && n_out > 1 => {
                    let c0 = self.axis(c, 0)?;
                    self.join_all(c0, y1)?;
                }
                [_, len] if *len == n_out && n_out > 1 => {
                    let c1 = self.axis(c, 1)?;
                    self.join_all(c1, y1)?;
                }
                d if d.iter().all(|&x| x == 1) => {}
                _ => return Err("bias broadcast".into()),
            }
        }
        self.dg.producers.push(Producer {
            node: i,
            weight: w.to_string(),
            weight_axis: 1 - k_axis,
            input: a1,
            output: y1,
        });
        Ok(())
    }

    fn broadcast(&mut self, n: &NodeProto) -> Handled {
        let y = output(n, 0);
        let rank = self.dims(y)?.len();
        if rank < 2 {
            return Ok(());
        }
        let channels = self.dims(y)?[1];
        let y1 = self.axis(y, 1)?;
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            let d = self.dims(x)?;
            let Some(a) = (1 + d.len()).checked_sub(rank) else {
                continue; // lower rank: broadcast over channels
            };
            match d[a] {
                c if c == channels && channels > 1 => {
                    if a != 1 && !self.is_init(x) {
                        return Err("channels on another axis".into());
                    }
                    let xa = self.axis(x, a)?;
                    self.join_all(xa, y1)?;
                }
                1 => {}
                _ if channels == 1 => {}
                _ => return Err("unexpected broadcast".into()),
            }
        }
        Ok(())
    }

    fn concat(&mut self, n: &NodeProto) -> Handled {
        let y = output(n, 0);
        let rank = self.dims(y)?.len() as i64;
        if rank < 2 {
            return Ok(());
        }
        let y1 = self.axis(y, 1)?;
        let along = graph::attr_int(n, "axis", 0).rem_euclid(rank) == 1;
        let mut offset = 0;
        for x in n.input.iter().filter(|x| !x.is_empty()) {
            let x1 = self.axis(x, 1)?;
            if along {
                let len = self.dg.axes[x1].size;
                self.join(x1, 0, y1, offset, len)?;
                offset += len;
            } else {
                self.join_all(x1, y1)?;
            }
        }
        Ok(())
    }

    fn split(&mut self, i: usize, n: &NodeProto) -> Handled {
        let x = input(n, 0);
        let d = self.dims(x)?.to_vec();
        let rank = d.len() as i64;
        if rank < 2 {
            return Ok(());
        }
        let axis = graph::attr_int(n, "axis", 0).rem_euclid(rank) as usize;
        let outs: Vec<&String> = n.output.iter().filter(|o| !o.is_empty()).collect();
        if outs.len() != n.output.len() {
            return Err("an output is omitted".into());
        }
        let x1 = self.axis(x, 1)?;
        if axis != 1 {
            for o in outs {
                let o1 = self.axis(o, 1)?;
                self.join_all(x1, o1)?;
            }
            return Ok(());
        }
        let mut offset = 0;
        let mut axes = Vec::new();
        for o in outs {
            let o1 = self.axis(o, 1)?;
            let len = self.dg.axes[o1].size;
            self.join(x1, offset, o1, 0, len)?;
            offset += len;
            axes.push(o1);
        }
        if offset != d[1] {
            return Err("sizes do not cover the input".into());
        }
        self.dg.fixups.push(Fixup::Split {
            node: i,
            outputs: axes,
        });
        Ok(())
    }

    fn slice(&mut self, i: usize, n: &NodeProto) -> Handled {
        let (x, y) = (input(n, 0), output(n, 0));
        let d = self.dims(x)?.to_vec();
        let rank = d.len() as i64;
        if rank < 2 {
            return Ok(());
        }
        if self.opset < 10 {
            return Err("opset < 10".into());
        }
        let starts = self.init_ints(input(n, 1))?;
        let ends = self.init_ints(input(n, 2))?;
        let axes = match input(n, 3) {
            "" => (0..starts.len() as i64).collect(),
            a => self.init_ints(a)?,
        };
        let steps = match input(n, 4) {
            "" => vec![1; starts.len()],
            s => self.init_ints(s)?,
        };
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let Some(pos) = axes.iter().position(|&a| a.rem_euclid(rank) == 1) else {
            return self.pass(x, y);
        };
        if steps.get(pos) != Some(&1) {
            return Err("steps other than 1 on channels".into());
        }
        let clamp = |v: i64| {
            let v = if v < 0 { v + d[1] as i64 } else { v };
            v.clamp(0, d[1] as i64) as usize
        };
        let (start, end) = (clamp(starts[pos]), clamp(ends[pos]));
        let (x1, y1) = (self.axis(x, 1)?, self.axis(y, 1)?);
        self.join(x1, start, y1, 0, end.saturating_sub(start))?;
        self.dg.fixups.push(Fixup::Slice {
            node: i,
            input: x1,
            output: y1,
            pos,
            start,
        });
        Ok(())
    }

    fn norm(&mut self, n: &NodeProto) -> Handled {
        if n.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err("training outputs".into());
        }
        let (x, y) = (input(n, 0), output(n, 0));
        self.pass(x, y)?;
        let y1 = self.axis(y, 1)?;
        for p in n.input.iter().skip(1) {
            if !self.is_init(p) || self.dims(p)?.len() != 1 {
                return Err(format!("parameter {p} is not a constant vector"));
            }
            let p0 = self.axis(p, 0)?;
            self.join_all(p0, y1)?;
        }
        Ok(())
    }

    fn reduce(&mut self, n: &NodeProto) -> Handled {
        let x = input(n, 0);
        let rank = self.dims(x)?.len() as i64;
        let from_input = self.opset >= 18 || (n.op_type == "ReduceSum" && self.opset >= 13);
        let axes: Vec<i64> = match (from_input, input(n, 1)) {
            (true, "") => Vec::new(),
            (true, a) => self.init_ints(a)?,
            (false, _) => graph::attr(n, "axes").map_or(Vec::new(), |a| a.ints.clone()),
        };
        let axes: Vec<i64> = axes.iter().map(|a| a.rem_euclid(rank.max(1))).collect();
        let keep = graph::attr_int(n, "keepdims", 1) != 0;
        if axes.is_empty() || axes.contains(&1) || (!keep && axes.contains(&0)) {
            return Err("reduces over channels".into());
        }
        self.pass(x, output(n, 0))
    }

    fn resize(&mut self, i: usize, n: &NodeProto) -> Handled {
        if graph::attr(n, "axes").is_some() {
            return Err("axes attribute".into());
        }
        let scales = match (n.op_type.as_str(), self.opset) {
            ("Resize", v) if v >= 11 => input(n, 2),
            _ => input(n, 1),
        };
        if !scales.is_empty() {
            let t = self
                .inits
                .get(scales)
                .map(|&k| &self.g.initializer[k])
                .ok_or("scales computed at run time")?;
            let s = graph::f32s(t).map_err(|e| e.to_string())?;
            if s.len() >= 2 && s[1] != 1.0 {
                return Err("scales channels".into());
            }
        } else if graph::attr(n, "scales")
            .is_some_and(|a| a.floats.get(1).is_some_and(|&s| s != 1.0))
        {
            return Err("scales channels".into());
        }
        let sizes = input(n, 3);
        if n.op_type == "Resize" && !sizes.is_empty() {
            self.init_ints(sizes)?;
            let y1 = self.axis(output(n, 0), 1)?;
            self.dg.fixups.push(Fixup::ResizeSizes {
                node: i,
                output: y1,
            });
        }
        self.pass(input(n, 0), output(n, 0))
    }

    fn pad(&mut self, n: &NodeProto) -> Handled {
        let x = input(n, 0);
        let rank = self.dims(x)?.len();
        let pads = if self.opset >= 11 {
            if !input(n, 3).is_empty() {
                return Err("axes input".into());
            }
            self.init_ints(input(n, 1))?
        } else {
            graph::attr(n, "pads").map_or(Vec::new(), |a| a.ints.clone())
        };
        if rank >= 2 && (pads.get(1) != Some(&0) || pads.get(rank + 1) != Some(&0)) {
            return Err("pads channels".into());
        }
        self.pass(x, output(n, 0))
    }
}

/// Input `k` of `n`, or "" when absent.
pub(super) fn input(n: &NodeProto, k: usize) -> &str {
    n.input.get(k).map_or("", String::as_str)
}

/// Output `k` of `n`, or "" when absent.
pub(super) fn output(n: &NodeProto, k: usize) -> &str {
    n.output.get(k).map_or("", String::as_str)
}
