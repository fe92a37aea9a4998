use edgetrim_compress::build::{dt, Attr, ModelBuilder};
use edgetrim_runtime::{Model, Session};
#[test]
fn bench() {
    for (shape, perm) in [
        (vec![1usize, 2, 32, 400], vec![0i64, 1, 3, 2]),
        (vec![1, 4, 64, 1600], vec![0, 1, 3, 2]),
        (vec![1, 400, 4, 32], vec![0, 2, 1, 3]),
        (vec![1, 256, 80, 80], vec![0, 2, 3, 1]),
    ] {
        let mut m = ModelBuilder::new(13);
        m.input("x", dt::FLOAT, &shape);
        m.node(
            "Transpose",
            &["x"],
            &["y"],
            vec![("perm", Attr::Ints(perm.clone()))],
        );
        m.output("y", dt::FLOAT);
        let bytes = m.build();
        let model = Model::parse(&bytes).unwrap();
        let mut arena = vec![0u8; 64 << 20];
        let mut s = Session::new(&model, &[&shape], &mut arena).unwrap();
        s.run().unwrap();
        let t = std::time::Instant::now();
        let n = 50;
        for _ in 0..n {
            s.run().unwrap();
        }
        let dt = t.elapsed().as_secs_f64() / n as f64;
        let bytes = shape.iter().product::<usize>() * 4;
        println!(
            "{shape:?} {perm:?}: {:.1} us, {:.2} GB/s",
            dt * 1e6,
            2.0 * bytes as f64 / dt / 1e9
        );
    }
}
