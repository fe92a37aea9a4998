//! `cpu::limit` caps the kernels planned after it. Its own test binary: the cap is
//! process-wide, and the other tests' kernel choices must not move under them.

#![cfg(all(feature = "std", target_arch = "x86_64"))]

use edgetrim_runtime::cpu::{limit, Level};
use edgetrim_runtime::ops::gemm::Kernel;
use edgetrim_runtime::ops::qgemm::QKernel;

#[test]
fn each_cap_plans_only_kernels_at_or_below_it() {
    limit(Level::Portable);
    assert_eq!(QKernel::best(), QKernel::Portable);
    assert_eq!(Kernel::best(), Kernel::Portable);
    assert!(!edgetrim_runtime::widen::f16c_available());

    // Whether the int8 GEMM planned now is `want`, as the CPU says it should be.
    let int8_kernel_is = |want: QKernel, expected: bool| {
        assert_eq!(QKernel::best() == want, expected, "{:?}", QKernel::best());
    };

    limit(Level::Avx2);
    let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    int8_kernel_is(QKernel::Avx2, avx2);
    assert_eq!(Kernel::best() == Kernel::Avx2Fma, avx2);

    limit(Level::Native);
    let vnni = avx2
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx512vl");
    int8_kernel_is(QKernel::Vnni, vnni);
    assert_eq!(Kernel::best() == Kernel::Avx2Fma, avx2);
}
