//! The clean, fp16 and layout passes on small graphs built here: each rewrite happens (the
//! node counts change as claimed) and changes nothing the model computes (outputs on our
//! runtime and on tract match the original's).

use crate::common::{abs_diff, compress, count, decode, nano, rel_diff, tract, vals};
use edgetrim_compress::build::{dt, tensor_i64, Attr, ModelBuilder};
use edgetrim_compress::passes::{layout, Context, Pass, Pipeline};
use edgetrim_compress::Error;

const CLEAN: &[Pass] = &[Pass::Clean];

fn bn_params(m: &mut ModelBuilder, prefix: &str, c: usize) {
    m.init_f32(&format!("{prefix}.scale"), &[c], &vals(c, 11, 1.5));
    m.init_f32(&format!("{prefix}.bias"), &[c], &vals(c, 12, 0.0));
    m.init_f32(&format!("{prefix}.mean"), &[c], &vals(c, 13, 0.0));
    m.init_f32(&format!("{prefix}.var"), &[c], &vals(c, 14, 1.5));
}

fn bn(m: &mut ModelBuilder, prefix: &str, x: &str, y: &str) {
    let p = |s: &str| format!("{prefix}.{s}");
    let (s, b, mean, var) = (p("scale"), p("bias"), p("mean"), p("var"));
    m.node(
        "BatchNormalization",
        &[x, &s, &b, &mean, &var],
        &[y],
        vec![("epsilon", Attr::Float(1e-3))],
    );
}

/// x → Conv(+bias) → BatchNorm → Relu → y, and a second Conv (no bias) → BatchNorm → z.
fn conv_bn() -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 2, 6, 6]);
    m.init_f32("w", &[4, 2, 3, 3], &vals(72, 1, 0.0));
    m.init_f32("b", &[4], &vals(4, 2, 0.0));
    m.init_f32("w2", &[3, 4, 1, 1], &vals(12, 3, 0.0));
    bn_params(&mut m, "bn1", 4);
    bn_params(&mut m, "bn2", 3);
    m.node(
        "Conv",
        &["x", "w", "b"],
        &["c"],
        vec![("pads", Attr::Ints(vec![1; 4]))],
    );
    bn(&mut m, "bn1", "c", "n");
    m.node("Relu", &["n"], &["y"], vec![]);
    m.node("Conv", &["y", "w2"], &["c2"], vec![]);
    bn(&mut m, "bn2", "c2", "z");
    m.output("y", dt::FLOAT);
    m.output("z", dt::FLOAT);
    m
}

const X: &[&[usize]] = &[&[1, 2, 6, 6]];

#[test]
fn batchnorm_folds_into_conv() {
    let original = conv_bn().build();
    let cleaned = compress(&original, CLEAN, &Context::default());
    assert_eq!(count(&cleaned, "BatchNormalization"), 0);
    assert_eq!(count(&cleaned, "Conv"), 2);
    let reference = nano(&original, X);
    assert!(abs_diff(&reference, &nano(&cleaned, X)) <= 1e-5);
    assert!(abs_diff(&reference, &tract(&cleaned, X)) <= 1e-5);
    // The BatchNorm parameters are gone with the nodes that read them.
    let g = decode(&cleaned).graph.unwrap();
    assert!(g.initializer.iter().all(|t| !t.name.starts_with("bn")));
    assert!(g.initializer.iter().all(|t| t.name != "w" && t.name != "b"));
}

#[test]
fn batchnorm_stays_when_conv_output_has_another_reader() {
    let mut m = conv_bn();
    m.node("Add", &["c", "c"], &["extra"], vec![]);
    m.output("extra", dt::FLOAT);
    let original = m.build();
    let cleaned = compress(&original, CLEAN, &Context::default());
    // bn1 reads c, which "extra" also reads: only bn2 folds.
    assert_eq!(count(&cleaned, "BatchNormalization"), 1);
    assert!(abs_diff(&nano(&original, X), &nano(&cleaned, X)) <= 1e-5);
}

#[test]
fn batchnorm_folds_into_gemm_both_layouts() {
    for trans_b in [0, 1] {
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &[2, 5]);
        let w_dims: &[usize] = if trans_b == 1 { &[3, 5] } else { &[5, 3] };
        m.init_f32("w", w_dims, &vals(15, 4, 0.0));
        m.init_f32("c", &[3], &vals(3, 5, 0.0));
        bn_params(&mut m, "bn", 3);
        m.node(
            "Gemm",
            &["x", "w", "c"],
            &["g"],
            vec![
                ("transB", Attr::Int(trans_b)),
                ("beta", Attr::Float(0.5)),
                ("alpha", Attr::Float(2.0)),
            ],
        );
        bn(&mut m, "bn", "g", "y");
        m.output("y", dt::FLOAT);
        let original = m.build();
        let cleaned = compress(&original, CLEAN, &Context::default());
        assert_eq!(count(&cleaned, "BatchNormalization"), 0, "transB={trans_b}");
        let shapes: &[&[usize]] = &[&[2, 5]];
        let d = abs_diff(&nano(&original, shapes), &tract(&cleaned, shapes));
        assert!(d <= 1e-5, "transB={trans_b}: {d}");
    }
}

/// x → Conv → Mul(s) → Add(t) → Relu → y with `s`, `t` of the given shapes (PP-LCNetV3's
/// learnable affine block is one value each), and a Gemm → Add(per column) → z.
fn conv_mul_add(s_dims: &[usize], t_dims: &[usize]) -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 2, 6, 6]);
    m.init_f32("w", &[4, 2, 3, 3], &vals(72, 1, 0.0));
    m.init_f32("b", &[4], &vals(4, 2, 0.0));
    let len = |d: &[usize]| d.iter().product::<usize>();
    m.init_f32("s", s_dims, &vals(len(s_dims), 3, 1.2));
    m.init_f32("t", t_dims, &vals(len(t_dims), 4, 0.0));
    m.node(
        "Conv",
        &["x", "w", "b"],
        &["c"],
        vec![("pads", Attr::Ints(vec![1; 4]))],
    );
    m.node("Mul", &["s", "c"], &["scaled"], vec![]);
    m.node("Add", &["scaled", "t"], &["shifted"], vec![]);
    m.node("Relu", &["shifted"], &["y"], vec![]);
    m.input("v", dt::FLOAT, &[2, 5]);
    m.init_f32("gw", &[5, 3], &vals(15, 5, 0.0));
    m.init_f32("gc", &[3], &vals(3, 6, 0.0));
    m.node("Gemm", &["v", "gw"], &["gy"], vec![]);
    m.node("Add", &["gy", "gc"], &["z"], vec![]);
    m.output("y", dt::FLOAT);
    m.output("z", dt::FLOAT);
    m
}

const XV: &[&[usize]] = &[&[1, 2, 6, 6], &[2, 5]];

#[test]
fn constant_mul_and_add_fold_into_conv_and_gemm() {
    for (s, t) in [
        (&[1][..], &[1][..]),
        (&[4, 1, 1], &[1, 4, 1, 1]),
        (&[], &[4, 1, 1]),
    ] {
        let original = conv_mul_add(s, t).build();
        let cleaned = compress(&original, CLEAN, &Context::default());
        assert_eq!(count(&cleaned, "Mul"), 0, "{s:?} {t:?}");
        assert_eq!(count(&cleaned, "Add"), 0, "{s:?} {t:?}");
        let reference = nano(&original, XV);
        assert!(
            abs_diff(&reference, &nano(&cleaned, XV)) <= 1e-5,
            "{s:?} {t:?}"
        );
        assert!(
            abs_diff(&reference, &tract(&cleaned, XV)) <= 1e-5,
            "{s:?} {t:?}"
        );
    }
}

#[test]
fn mul_and_add_that_vary_in_space_or_widen_the_output_stay() {
    // [1, 1, 6, 6] varies along H and W; [4, 1, 1, 1, 1] would make the output rank 5.
    for (s, t) in [
        (&[1, 1, 6, 6][..], &[1][..]),
        (&[1][..], &[4, 1, 1, 1, 1][..]),
    ] {
        let original = conv_mul_add(s, t).build();
        let cleaned = compress(&original, CLEAN, &Context::default());
        let left = count(&cleaned, "Mul") + count(&cleaned, "Add");
        assert!(left >= 1, "{s:?} {t:?}");
        assert!(
            abs_diff(&nano(&original, XV), &tract(&cleaned, XV)) <= 1e-5,
            "{s:?} {t:?}"
        );
    }
}

#[test]
fn identity_chains_go_and_graph_output_names_stay() {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.init_f32("w", &[4], &[1.0, -2.0, 3.0, 0.5]);
    m.node("Identity", &["w"], &["w1"], vec![]);
    m.node("Identity", &["w1"], &["w2"], vec![]);
    m.node("Mul", &["x", "w2"], &["a"], vec![]);
    m.node("Identity", &["a"], &["b"], vec![]);
    m.node("Relu", &["b"], &["r"], vec![]);
    m.node("Identity", &["r"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let original = m.build();
    let cleaned = compress(&original, CLEAN, &Context::default());
    assert_eq!(crate::common::ops(&cleaned), ["Mul", "Relu"]);
    let g = decode(&cleaned).graph.unwrap();
    assert_eq!(g.output[0].name, "y");
    assert_eq!(g.node[1].output, ["y"]);
    let shapes: &[&[usize]] = &[&[1, 4]];
    assert_eq!(nano(&original, shapes), nano(&cleaned, shapes));
}

#[test]
fn constants_become_initializers_and_dead_code_goes() {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    let k = edgetrim_compress::build::tensor_f32("k", &[4], &[0.5, 1.0, 1.5, 2.0]);
    m.node("Constant", &[], &["k"], vec![("value", Attr::Tensor(k))]);
    m.node(
        "Constant",
        &[],
        &["s"],
        vec![("value_float", Attr::Float(3.0))],
    );
    m.init_f32("unused", &[64], &[0.0; 64]);
    m.node("Mul", &["x", "k"], &["a"], vec![]);
    m.node("Add", &["a", "s"], &["y"], vec![]);
    m.node("Sub", &["x", "k"], &["dead"], vec![]);
    m.node("Relu", &["dead"], &["dead2"], vec![]);
    m.output("y", dt::FLOAT);
    let original = m.build();
    let cleaned = compress(&original, CLEAN, &Context::default());
    assert_eq!(crate::common::ops(&cleaned), ["Mul", "Add"]);
    let g = decode(&cleaned).graph.unwrap();
    let mut names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["k", "s"]);
    let shapes: &[&[usize]] = &[&[1, 4]];
    assert_eq!(nano(&original, shapes), nano(&cleaned, shapes));
    assert_eq!(nano(&original, shapes), tract(&cleaned, shapes));
}

/// x → Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): shape arithmetic.
fn shape_subgraph() -> ModelBuilder {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[2, 3, 4]);
    m.init_i64("zero", &[], &[0]);
    m.init_i64("axes", &[1], &[0]);
    m.init_i64("minus1", &[1], &[-1]);
    m.node("Shape", &["x"], &["shape"], vec![]);
    m.node(
        "Gather",
        &["shape", "zero"],
        &["n"],
        vec![("axis", Attr::Int(0))],
    );
    m.node("Unsqueeze", &["n", "axes"], &["n1"], vec![]);
    m.node(
        "Concat",
        &["n1", "minus1"],
        &["target"],
        vec![("axis", Attr::Int(0))],
    );
    m.node(
        "Cast",
        &["target"],
        &["target64"],
        vec![("to", Attr::Int(dt::INT64 as i64))],
    );
    m.node("Reshape", &["x", "target64"], &["r"], vec![]);
    m.node("Relu", &["r"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    m
}

#[test]
fn shape_arithmetic_folds_for_fixed_input_shapes() {
    let original = shape_subgraph().build();
    let cleaned = compress(&original, CLEAN, &Context::default());
    assert_eq!(crate::common::ops(&cleaned), ["Reshape", "Relu"]);
    let g = decode(&cleaned).graph.unwrap();
    let target = g
        .initializer
        .iter()
        .find(|t| t.name == "target64")
        .expect("folded shape");
    assert_eq!(target.raw_data, tensor_i64("", &[2], &[2, -1]).raw_data);
    let shapes: &[&[usize]] = &[&[2, 3, 4]];
    assert_eq!(nano(&original, shapes), nano(&cleaned, shapes));
}

#[test]
fn shape_folding_with_an_input_shape_pins_it() {
    let mut m = shape_subgraph();
    // Same graph, but the model only fixes the rank.
    let mut p = m.proto();
    let g = p.graph.as_mut().unwrap();
    g.input[0] = edgetrim_compress::build::value_info("x", dt::FLOAT, None);
    let original = prost::Message::encode_to_vec(&p);
    let loose = compress(&original, CLEAN, &Context::default());
    assert_eq!(
        count(&loose, "Shape"),
        1,
        "no shapes known: nothing to fold"
    );
    let ctx = Context {
        input_shapes: Some(vec![vec![5, 2, 2]]),
        ..Context::default()
    };
    let pinned = compress(&original, CLEAN, &ctx);
    assert_eq!(crate::common::ops(&pinned), ["Reshape", "Relu"]);
    let dims = edgetrim_compress::graph::declared_dims(&decode(&pinned).graph.unwrap(), "x");
    assert_eq!(dims, Some(vec![5, 2, 2]));
    let out = decode(&pinned).graph.unwrap().output[0].clone();
    let probe = edgetrim_compress::pb::GraphProto {
        input: vec![out],
        ..Default::default()
    };
    assert_eq!(
        edgetrim_compress::graph::declared_dims(&probe, "y"),
        Some(vec![5, 4])
    );
    let shapes: &[&[usize]] = &[&[5, 2, 2]];
    assert_eq!(nano(&original, shapes), nano(&pinned, shapes));
    m.input("unused", dt::FLOAT, &[1]); // keep the builder used
}

#[test]
fn unknown_ops_pass_through_clean() {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.node("Identity", &["x"], &["a"], vec![]);
    m.node("FancyOp", &["a"], &["y"], vec![]);
    let mut p = m.proto();
    p.graph.as_mut().unwrap().node[1].domain = "com.example".into();
    p.graph
        .as_mut()
        .unwrap()
        .output
        .push(edgetrim_compress::build::value_info("y", dt::FLOAT, None));
    let original = prost::Message::encode_to_vec(&p);
    let cleaned = compress(&original, CLEAN, &Context::default());
    let g = decode(&cleaned).graph.unwrap();
    assert_eq!(g.node.len(), 1);
    assert_eq!(
        (g.node[0].op_type.as_str(), g.node[0].domain.as_str()),
        ("FancyOp", "com.example")
    );
    assert_eq!(g.node[0].input, ["x"]);
}

#[test]
fn a_node_reading_an_undefined_edge_is_refused_by_name() {
    let mut m = ModelBuilder::new(17);
    m.input("x", dt::FLOAT, &[1, 4]);
    m.node("Add", &["x", "nowhere"], &["y"], vec![]);
    m.output("y", dt::FLOAT);
    let err = Pipeline::new(vec![Pass::Clean])
        .run(&m.build(), &Context::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Node { node, op, .. } if node == "Add_0" && op == "Add"),
        "{err}"
    );
    assert!(err.to_string().contains("nowhere"), "{err}");
    let err = Pipeline::new(vec![Pass::Clean]).run(b"\x08\x07garbage", &Context::default());
    assert!(matches!(err, Err(Error::Decode(_))), "{err:?}");
}

#[test]
fn fp16_halves_weights_and_stays_close() {
    let original = conv_bn().build();
    let f32_clean = compress(&original, CLEAN, &Context::default());
    let half = compress(&original, &[Pass::Clean, Pass::Fp16], &Context::default());
    let g = decode(&half).graph.unwrap();
    // The 4x2x3x3 weights become float16 behind a Cast; the 4- and 3-element biases and the
    // 12-element 1x1 weights stay float32.
    let f16: Vec<&str> = g
        .initializer
        .iter()
        .filter(|t| t.data_type == dt::FLOAT16)
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(f16.len(), 1, "{f16:?}");
    assert_eq!(count(&half, "Cast"), 1);
    let w = g
        .initializer
        .iter()
        .find(|t| t.data_type == dt::FLOAT16)
        .unwrap();
    assert_eq!(w.raw_data.len(), 72 * 2);
    assert!(
        half.len() < f32_clean.len(),
        "{} vs {}",
        half.len(),
        f32_clean.len()
    );
    let reference = nano(&original, X);
    assert!(rel_diff(&reference, &nano(&half, X)) <= 1e-2);
    assert!(rel_diff(&reference, &tract(&half, X)) <= 1e-2);
    // Clean again keeps the Cast: the file stays half-size.
    let again = compress(&half, CLEAN, &Context::default());
    assert_eq!(count(&again, "Cast"), 1);
}

#[test]
fn layout_aligns_every_raw_payload() {
    let mut m = conv_bn();
    // Odd sizes and names, and data in typed fields, to shift offsets around.
    m.init_f32("odd", &[3], &[1.0, 2.0, 3.0]);
    let mut p = m.proto();
    let g = p.graph.as_mut().unwrap();
    g.initializer.push(edgetrim_compress::pb::TensorProto {
        name: "typed_with_a_longer_name".into(),
        data_type: dt::FLOAT,
        dims: vec![5],
        float_data: vec![1.0, 2.0, 3.0, 4.0, 5.0],
        ..Default::default()
    });
    g.node.push(edgetrim_compress::pb::NodeProto {
        op_type: "Add".into(),
        input: vec!["odd".into(), "odd".into()],
        output: vec!["o".into()],
        ..Default::default()
    });
    g.node.push(edgetrim_compress::pb::NodeProto {
        op_type: "Neg".into(),
        input: vec!["typed_with_a_longer_name".into()],
        output: vec!["t".into()],
        ..Default::default()
    });
    g.output
        .push(edgetrim_compress::build::value_info("o", dt::FLOAT, None));
    g.output
        .push(edgetrim_compress::build::value_info("t", dt::FLOAT, None));
    let original = prost::Message::encode_to_vec(&p);
    let unaligned = layout::raw_data_offsets(&original);
    assert!(
        unaligned.iter().any(|(_, o)| o % 16 != 0),
        "the test needs misaligned input"
    );
    for list in [
        &[Pass::Layout][..],
        &[Pass::Clean, Pass::Fp16, Pass::Layout],
    ] {
        let aligned = compress(&original, list, &Context::default());
        let offsets = layout::raw_data_offsets(&aligned);
        assert_eq!(
            offsets.len(),
            decode(&aligned).graph.unwrap().initializer.len()
        );
        for (name, offset) in &offsets {
            assert_eq!(offset % 16, 0, "{name} at {offset}");
        }
        // Offsets point at the data itself.
        let m = decode(&aligned);
        for (t, (name, offset)) in m.graph.unwrap().initializer.iter().zip(&offsets) {
            assert_eq!(&t.name, name);
            assert_eq!(
                &aligned[*offset..offset + t.raw_data.len()],
                &t.raw_data[..]
            );
        }
        let reference = nano(&original, X);
        assert!(rel_diff(&reference, &nano(&aligned, X)) <= 1e-2);
        assert!(rel_diff(&reference, &tract(&aligned, X)) <= 1e-2);
        // A second layout changes nothing: padding is recognised and replaced.
        assert_eq!(
            compress(&aligned, &[Pass::Layout], &Context::default()),
            aligned
        );
    }
}

#[test]
fn layout_orders_initializers_by_first_use() {
    let original = conv_bn().build();
    let laid = compress(&original, &[Pass::Layout], &Context::default());
    let names: Vec<String> = decode(&laid)
        .graph
        .unwrap()
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "w",
            "b",
            "bn1.scale",
            "bn1.bias",
            "bn1.mean",
            "bn1.var",
            "w2",
            "bn2.scale",
            "bn2.bias",
            "bn2.mean",
            "bn2.var"
        ]
    );
}

#[test]
fn output_is_deterministic_and_keeps_metadata() {
    let mut m = conv_bn();
    m.metadata("edgetrim.task", "detect");
    m.metadata("edgetrim.yolo.strides", "8,16,32");
    let original = m.build();
    let all = [Pass::Clean, Pass::Fp16, Pass::Layout];
    let a = compress(&original, &all, &Context::default());
    let b = compress(&original, &all, &Context::default());
    assert_eq!(a, b);
    let props: Vec<(String, String)> = decode(&a)
        .metadata_props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    assert_eq!(
        props,
        [
            ("edgetrim.task".to_string(), "detect".to_string()),
            ("edgetrim.yolo.strides".into(), "8,16,32".into())
        ]
    );
}

#[test]
fn folding_never_duplicates_large_weights() {
    // Transpose(w) folds when w dies with it, but not when w has another reader: the
    // file would then hold both copies.
    for shared in [false, true] {
        let mut m = ModelBuilder::new(17);
        m.input("x", dt::FLOAT, &[2, 64]);
        m.init_f32("w", &[64, 64], &vals(64 * 64, 9, 0.0));
        m.node(
            "Transpose",
            &["w"],
            &["wt"],
            vec![("perm", Attr::Ints(vec![1, 0]))],
        );
        m.node("MatMul", &["x", "wt"], &["y"], vec![]);
        m.output("y", dt::FLOAT);
        if shared {
            m.node("MatMul", &["x", "w"], &["z"], vec![]);
            m.output("z", dt::FLOAT);
        }
        let original = m.build();
        let cleaned = compress(&original, CLEAN, &Context::default());
        assert_eq!(
            count(&cleaned, "Transpose"),
            usize::from(shared),
            "shared={shared}"
        );
        assert!(cleaned.len() < original.len() + 100, "shared={shared}");
        let shapes: &[&[usize]] = &[&[2, 64]];
        assert!(abs_diff(&nano(&original, shapes), &nano(&cleaned, shapes)) <= 1e-5);
    }
}
