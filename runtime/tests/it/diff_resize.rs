//! Resize against tract: nearest (every nearest_mode) and linear, every coordinate
//! transformation, with scales or sizes.

use crate::common::*;

fn resize(
    shape: &[usize],
    scales: Option<&[f32]>,
    sizes: Option<&[i64]>,
    attrs: Vec<(&str, Attr)>,
    opset: i64,
) {
    let what =
        format!("Resize {shape:?} scales {scales:?} sizes {sizes:?} {attrs:?} opset {opset}");
    let mut inits = vec![];
    let mut extra = vec![""];
    match (scales, sizes) {
        (Some(s), _) => {
            inits.push(("scales", f32_tensor(&[s.len()], s)));
            extra.push("scales");
        }
        (None, Some(s)) => {
            inits.push(("sizes", i64_tensor(&[s.len()], s)));
            // Opset 11/12 need the scales slot filled, even if empty.
            if opset < 13 {
                inits.push(("no_scales", f32_tensor(&[0], &[])));
                extra.push("no_scales");
            } else {
                extra.push("");
            }
            extra.push("sizes");
        }
        (None, None) => unreachable!(),
    }
    let m = one_node("Resize", &[shape], &inits, &extra, 1, attrs, opset);
    check(&what, &m, &[rand_f32(shape, 21)], TOL);
}

fn s(v: &str) -> Attr {
    Attr::Str(v.into())
}

#[test]
fn yolo_nearest_upsample_matches_tract() {
    resize(
        &[1, 4, 5, 6],
        Some(&[1.0, 1.0, 2.0, 2.0]),
        None,
        vec![
            ("mode", s("nearest")),
            ("coordinate_transformation_mode", s("asymmetric")),
            ("nearest_mode", s("floor")),
        ],
        13,
    );
}

#[test]
fn nearest_modes_and_coordinates_match_tract() {
    let coords = [
        "half_pixel",
        "asymmetric",
        "align_corners",
        "pytorch_half_pixel",
    ];
    let modes = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"];
    let geometries: &[(&[f32], &[i64])] = &[
        (&[1.0, 1.0, 2.0, 3.0], &[1, 2, 7, 5]),
        (&[1.0, 1.0, 0.5, 0.75], &[1, 2, 3, 4]),
    ];
    for coord in coords {
        for mode in modes {
            for (scales, sizes) in geometries {
                let attrs = vec![
                    ("coordinate_transformation_mode", s(coord)),
                    ("nearest_mode", s(mode)),
                ];
                resize(&[1, 2, 6, 5], Some(scales), None, attrs.clone(), 13);
                resize(&[1, 2, 6, 5], None, Some(sizes), attrs, 13);
            }
        }
    }
}

#[test]
fn linear_matches_tract() {
    let coords = [
        "half_pixel",
        "asymmetric",
        "align_corners",
        "pytorch_half_pixel",
    ];
    for coord in coords {
        let attrs = vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s(coord)),
        ];
        resize(
            &[2, 3, 4, 5],
            Some(&[1.0, 1.0, 2.0, 1.5]),
            None,
            attrs.clone(),
            13,
        );
        resize(
            &[2, 3, 8, 6],
            Some(&[1.0, 1.0, 0.5, 0.5]),
            None,
            attrs.clone(),
            13,
        );
        resize(&[1, 1, 4, 5], None, Some(&[1, 1, 1, 7]), attrs.clone(), 13);
        resize(&[1, 1, 4, 5], None, Some(&[1, 1, 9, 3]), attrs, 13);
    }
}

#[test]
fn opset_11_sizes_with_an_empty_scales_tensor_match_opset_13() {
    // tract fails to analyse opset 11's empty `scales` placeholder, so our opset-11 run is
    // compared with tract's run of the same resize written the opset-13 way.
    let shape: &[usize] = &[1, 1, 4, 5];
    let sizes = ("sizes", i64_tensor(&[4], &[1, 1, 9, 3]));
    let attrs = vec![("mode", s("linear"))];
    let old = one_node(
        "Resize",
        &[shape],
        &[("no_scales", f32_tensor(&[0], &[])), sizes.clone()],
        &["", "no_scales", "sizes"],
        1,
        attrs.clone(),
        11,
    );
    let new = one_node(
        "Resize",
        &[shape],
        &[sizes],
        &["", "", "sizes"],
        1,
        attrs,
        13,
    );
    let x = [rand_f32(shape, 4)];
    let ours = run_nano(&old.build(), &x);
    assert_close(
        "Resize opset 11 sizes",
        &ours,
        &run_tract(&new.build(), &x),
        TOL,
    );
}

#[test]
fn resizing_the_channel_dim_is_refused() {
    let m = one_node(
        "Resize",
        &[&[1, 2, 3, 3]],
        &[("scales", f32_tensor(&[4], &[1.0, 2.0, 1.0, 1.0]))],
        &["", "scales"],
        1,
        vec![],
        13,
    );
    let bytes = m.build();
    let model = edgetrim_runtime::Model::parse(&bytes).unwrap();
    let err = edgetrim_runtime::Session::arena_report(&model, &[&[1, 2, 3, 3]]).unwrap_err();
    assert!(format!("{err}").contains("last two dims"), "{err}");
}
