//! MaxPool, AveragePool and the global pools against tract.

use crate::common::*;
use proptest::prelude::*;

fn ints(v: &[i64]) -> Attr {
    Attr::Ints(v.to_vec())
}

fn pool(op: &str, shape: &[usize], attrs: Vec<(&str, Attr)>, what: &str) {
    let m = one_node(op, &[shape], &[], &[], 1, attrs, 13);
    check(what, &m, &[rand_f32(shape, 17)], TOL);
}

#[test]
fn yolo_pools_match_tract() {
    // SPPELAN: MaxPool k5 s1 p2; AConv: AveragePool k2 s1 p0.
    pool(
        "MaxPool",
        &[1, 8, 20, 20],
        vec![
            ("kernel_shape", ints(&[5, 5])),
            ("strides", ints(&[1, 1])),
            ("pads", ints(&[2, 2, 2, 2])),
        ],
        "SPPELAN max",
    );
    pool(
        "AveragePool",
        &[1, 8, 20, 20],
        vec![
            ("kernel_shape", ints(&[2, 2])),
            ("strides", ints(&[1, 1])),
            ("pads", ints(&[0, 0, 0, 0])),
        ],
        "AConv avg",
    );
}

#[test]
fn pool_attribute_combinations_match_tract() {
    for op in ["MaxPool", "AveragePool"] {
        for auto_pad in ["SAME_UPPER", "SAME_LOWER", "VALID"] {
            pool(
                op,
                &[2, 3, 9, 8],
                vec![
                    ("kernel_shape", ints(&[3, 2])),
                    ("strides", ints(&[2, 3])),
                    ("auto_pad", Attr::Str(auto_pad.into())),
                ],
                &format!("{op} {auto_pad}"),
            );
        }
        for ceil in [0, 1] {
            for include in [0, 1] {
                pool(
                    op,
                    &[1, 2, 10, 7],
                    vec![
                        ("kernel_shape", ints(&[3, 3])),
                        ("strides", ints(&[2, 2])),
                        ("pads", ints(&[1, 0, 1, 2])),
                        ("ceil_mode", Attr::Int(ceil)),
                        ("count_include_pad", Attr::Int(include)),
                    ],
                    &format!("{op} ceil {ceil} include {include}"),
                );
            }
        }
        pool(
            op,
            &[2, 3, 11],
            vec![
                ("kernel_shape", ints(&[3])),
                ("strides", ints(&[2])),
                ("pads", ints(&[1, 1])),
            ],
            &format!("{op} 1-D"),
        );
    }
    pool(
        "MaxPool",
        &[1, 2, 12, 11],
        vec![
            ("kernel_shape", ints(&[3, 2])),
            ("dilations", ints(&[2, 3])),
            ("pads", ints(&[1, 2, 2, 0])),
        ],
        "MaxPool dilated",
    );
}

#[test]
fn global_pools_match_tract() {
    for op in ["GlobalMaxPool", "GlobalAveragePool"] {
        pool(op, &[2, 5, 6, 7], vec![], op);
        pool(op, &[1, 4, 9], vec![], &format!("{op} 1-D"));
    }
}

#[test]
fn count_include_pad_divides_by_the_padded_window() {
    // Hand-computed (ONNX spec): 1-D, x = [1, 2, 3], k = 3, pads 1/1, stride 1.
    // Windows: [pad,1,2] [1,2,3] [2,3,pad]; with pads counted each divides by 3.
    let m = one_node(
        "AveragePool",
        &[&[1, 1, 3]],
        &[],
        &[],
        1,
        vec![
            ("kernel_shape", ints(&[3])),
            ("pads", ints(&[1, 1])),
            ("count_include_pad", Attr::Int(1)),
        ],
        13,
    );
    let y = run_nano(&m.build(), &[f32_tensor(&[1, 1, 3], &[1.0, 2.0, 3.0])]);
    let want = [1.0, 2.0, 5.0 / 3.0];
    for (got, want) in y[0].to_f32_vec().iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_pool_geometries_match_tract(
        max in any::<bool>(),
        h in 3usize..12, w in 3usize..12,
        kh in 1i64..4, kw in 1i64..4,
        sh in 1i64..4, sw in 1i64..4,
        pads in proptest::collection::vec(0i64..3, 4),
        ceil in 0i64..2,
        include in 0i64..2,
    ) {
        let pads: Vec<i64> = pads
            .iter()
            .enumerate()
            .map(|(i, &p)| p.min(if i % 2 == 0 { kh - 1 } else { kw - 1 }))
            .collect();
        let op = if max { "MaxPool" } else { "AveragePool" };
        let mut attrs = vec![
            ("kernel_shape", ints(&[kh, kw])),
            ("strides", ints(&[sh, sw])),
            ("pads", ints(&pads)),
            ("ceil_mode", Attr::Int(ceil)),
        ];
        if !max {
            attrs.push(("count_include_pad", Attr::Int(include)));
        }
        pool(op, &[1, 2, h, w], attrs, &format!("{op} {h}x{w} k{kh}x{kw} s{sh}x{sw} p{pads:?} ceil {ceil}"));
    }
}

fn plan_error(m: &ModelBuilder, shape: &[usize]) -> String {
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    format!(
        "{}",
        edgetrim_runtime::Session::arena_report(&model, &[shape]).unwrap_err()
    )
}

#[test]
fn max_pool_indices_output_is_refused() {
    let m = one_node(
        "MaxPool",
        &[&[1, 1, 4, 4]],
        &[],
        &[],
        2,
        vec![("kernel_shape", ints(&[2, 2]))],
        13,
    );
    let err = plan_error(&m, &[1, 1, 4, 4]);
    assert!(err.contains("optional output"), "{err}");
}

#[test]
fn pads_as_large_as_the_kernel_are_refused() {
    let m = one_node(
        "AveragePool",
        &[&[1, 1, 4, 4]],
        &[],
        &[],
        1,
        vec![
            ("kernel_shape", ints(&[2, 2])),
            ("pads", ints(&[2, 0, 0, 0])),
        ],
        13,
    );
    let err = plan_error(&m, &[1, 1, 4, 4]);
    assert!(err.contains("smaller than the kernel"), "{err}");
}
