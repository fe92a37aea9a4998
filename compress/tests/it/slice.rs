//! Supernet slicing against the Python exporter: `data/rnnt-tiny/full` is an untrained tiny
//! RNN-T supernet exported with its slicing rules and `data/rnnt-tiny/d2-w0.5` the same
//! weights exported directly as the subnet depth=2,width=0.5 (`data/rnnt-tiny/generate.sh`).
//! Cutting the subnet out of `full` must give exactly the direct export: same nodes,
//! inputs and outputs with shapes, bit-identical initializers, same metadata (the rules
//! compared as parsed JSON), as EXPORT.md's "Reference and comparison" defines.

use edgetrim_compress::pb::ModelProto;
use edgetrim_compress::slice::{self, Rules, Slice, RULES_KEY};
use edgetrim_compress::{passes, Error};
use edgetrim_runtime::{Model, Session};
use prost::Message;
use std::path::PathBuf;

const GRAPHS: [&str; 3] = ["encoder", "predictor", "joiner"];

fn folder(name: &str) -> Vec<ModelProto> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rnnt-tiny")
        .join(name);
    GRAPHS
        .iter()
        .map(|g| {
            let bytes = std::fs::read(dir.join(format!("{g}.onnx"))).expect("fixture");
            passes::decode(&bytes).expect("decode")
        })
        .collect()
}

fn cut(models: &[ModelProto], spec: &str) -> Vec<ModelProto> {
    let mut models = models.to_vec();
    slice::slice_all(&mut models, &spec.parse().unwrap()).expect("slice");
    models
}

/// The model with its rules text replaced by the parsed JSON re-serialised canonically, so
/// that two models compare equal exactly when everything else is equal and the rules are
/// the same JSON value.
fn canonical(m: &ModelProto) -> ModelProto {
    let mut m = m.clone();
    for p in &mut m.metadata_props {
        if p.key == RULES_KEY {
            let v: serde_json::Value = serde_json::from_str(&p.value).expect("rules JSON");
            p.value = v.to_string();
        }
    }
    m
}

fn assert_same(got: &[ModelProto], want: &[ModelProto], what: &str) {
    for ((g, w), name) in got.iter().zip(want).zip(GRAPHS) {
        let (gg, wg) = (g.graph.as_ref().unwrap(), w.graph.as_ref().unwrap());
        let nodes = |g: &edgetrim_compress::pb::GraphProto| {
            g.node
                .iter()
                .map(|n| (n.name.clone(), n.input.clone(), n.output.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(nodes(gg), nodes(wg), "{what}: {name} nodes");
        assert_eq!(gg.input, wg.input, "{what}: {name} inputs");
        assert_eq!(gg.output, wg.output, "{what}: {name} outputs");
        for (a, b) in gg.initializer.iter().zip(&wg.initializer) {
            assert_eq!(a, b, "{what}: {name} initializer {}", a.name);
        }
        assert_eq!(canonical(g), canonical(w), "{what}: {name}");
    }
}

#[test]
fn slice_of_the_supernet_equals_the_python_export_of_the_subnet() {
    let got = cut(&folder("full"), "depth=2,width=0.5");
    assert_same(&got, &folder("d2-w0.5"), "depth=2,width=0.5");
    // The check is not vacuous: the full supernet differs from the subnet.
    assert_ne!(canonical(&folder("full")[0]), canonical(&got[0]));
    let rules = Rules::of(&got[1]).unwrap().unwrap();
    assert_eq!(rules.dims["pred"], 3, "6 units at width 0.5");
}

#[test]
fn a_slice_can_be_sliced_again() {
    let full = folder("full");
    // 8 -> 4 -> 2 and 6 -> 3 -> 2 units equal one cut at 0.25 (8 -> 2, 6 -> 2).
    let twice = cut(&folder("d2-w0.5"), "depth=1,width=0.5");
    assert_same(&twice, &cut(&full, "depth=1,width=0.25"), "re-slice");
    // The full slice is the identity.
    assert_same(&cut(&full, "depth=3,width=1"), &full, "identity");
    assert_same(&cut(&full, "width=1"), &full, "identity without depth");
}

#[test]
fn sliced_graphs_load_and_run_on_the_runtime() {
    let sliced = cut(&folder("full"), "depth=2,width=0.5");
    let mut enc_out = Vec::new();
    for (m, name) in sliced.iter().zip(GRAPHS) {
        let bytes = m.encode_to_vec();
        let model = Model::parse(&bytes).expect(name);
        let report = Session::arena_report(&model, &[]).expect(name);
        let mut arena = vec![0u8; report.total + edgetrim_runtime::arena::ALIGN];
        let mut s = Session::new(&model, &[], &mut arena).expect(name);
        let dims: Vec<(String, Vec<usize>)> = s
            .outputs()
            .map(|o| (o.name.to_string(), o.shape.dims().to_vec()))
            .collect();
        s.run().expect(name);
        if name == "encoder" {
            enc_out = dims;
        }
    }
    let want: Vec<(String, Vec<usize>)> = [("enc", vec![1, 4, 8])]
        .into_iter()
        .chain(["h1_out", "c1_out", "h2_out", "c2_out"].map(|n| (n, vec![1, 1, 4])))
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    assert_eq!(enc_out, want);
}

/// `full` with the encoder's rules edited by `edit` on their JSON text.
fn with_rules(edit: impl Fn(&str) -> String) -> Vec<ModelProto> {
    let mut models = folder("full");
    let p = models[0]
        .metadata_props
        .iter_mut()
        .find(|p| p.key == RULES_KEY)
        .unwrap();
    let edited = edit(&p.value);
    assert_ne!(edited, p.value, "the edit must change the rules");
    p.value = edited;
    models
}

#[test]
fn malformed_rules_and_impossible_slices_are_refused_by_name() {
    let half: Slice = "depth=2,width=0.5".parse().unwrap();
    let cases: Vec<(Vec<ModelProto>, Slice, &str)> = vec![
        (
            with_rules(|r| r.replace("\"dims\": {\"enc\": 8}", "\"dims\": {\"enc\": 6}")),
            half,
            "tensor in.W: axis 1 (1 x 6 enc): the axis has 8 entries",
        ),
        (
            with_rules(|r| r.replace("\"name\": \"in.b\"", "\"name\": \"in.bias\"")),
            half,
            "tensor in.bias: named by edgetrim.slice, but the graph has no initializer",
        ),
        (
            with_rules(|r| r.replace("\"name\": \"l1.B\", \"axis\": 1", "\"name\": \"l1.B\", \"axis\": 5")),
            half,
            "tensor l1.B: axis 5 (8 x 8 enc): the tensor has 2 axes",
        ),
        (
            with_rules(|r| r.replace("{\"node\": \"l1.lstm\"", "{\"node\": \"l1.rnn\"")),
            half,
            "metadata edgetrim.slice: attribute hidden_size of node l1.rnn: no such node",
        ),
        (
            with_rules(|r| r.replace("\"nodes\": [\"l3.lstm\"", "\"nodes\": [\"l3.gru\"")),
            half,
            "metadata edgetrim.slice: depth layer 3: node l3.gru is not in the graph",
        ),
        (
            with_rules(|r| r.replace("\"post\": {\"node\": \"out.matmul\"", "\"post\": {\"node\": \"out.mm\"")),
            half,
            "metadata edgetrim.slice: depth post node out.mm: no such node",
        ),
        (
            with_rules(|r| r.replace("\"dim\": \"enc\"}]", "\"dim\": \"dec\"}]")),
            half,
            "metadata edgetrim.slice: the entry for attribute hidden_size of node l3.lstm names dim \"dec\"",
        ),
        (folder("full"), "depth=4".parse().unwrap(), "slice: depth=4 outside 1..=3"),
    ];
    for (mut models, s, want) in cases {
        let before = models.clone();
        let err = slice::slice_all(&mut models, &s).unwrap_err().to_string();
        assert!(err.contains(want), "want {want:?}, got {err:?}");
        assert_eq!(
            models, before,
            "{want}: a failed slice leaves the models alone"
        );
    }
    // A graph exported without rules cannot be sliced.
    let mut bare = folder("full");
    bare[2].metadata_props.retain(|p| p.key != RULES_KEY);
    let err = slice::slice_all(&mut bare, &half).unwrap_err();
    assert!(
        matches!(&err, Error::Metadata { key, .. } if key == RULES_KEY),
        "{err}"
    );
    assert!(err.to_string().contains("missing"), "{err}");
}
