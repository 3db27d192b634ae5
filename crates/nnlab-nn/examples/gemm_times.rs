use std::time::Instant;
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

// row-major dst m×n = a (m×k, strides ars, acs) · b (k×n, brs, bcs)
unsafe fn mm(m: usize, n: usize, k: usize, dst: &mut [f32], a: &[f32], ars: usize, acs: usize, b: &[f32], brs: usize, bcs: usize, par: Parallelism) {
    gemm(m, n, k, dst.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), acs as isize, ars as isize, b.as_ptr(), bcs as isize, brs as isize, 1.0, 1.0, false, false, false, par);
}

fn time(name: &str, flops: f64, mut f: impl FnMut()) {
    let mut v = Vec::new();
    f();
    for _ in 0..5 { let t = Instant::now(); f(); v.push(t.elapsed().as_secs_f64()); }
    v.sort_by(f64::total_cmp);
    println!("{name:60} {:8.2} ms {:6.1} GFLOPS", v[2]*1e3, flops / v[2] / 1e9);
}

fn main() {
    let (b, f, kk, hw) = (128usize, 64usize, 288usize, 576usize);
    let flops = 2.0 * (b * f * kk * hw) as f64;
    let w = vec![0.5f32; f * kk];
    let cols = vec![0.25f32; b * kk * hw];
    let mut out = vec![0f32; b * f * hw];
    let threads = rayon::current_num_threads();
    time("per item W·cols (F×HW), rayon over items", flops, || {
        out.par_chunks_mut(f * hw).zip(cols.par_chunks(kk * hw)).for_each(|(o, c)| unsafe { mm(f, hw, kk, o, &w, kk, 1, c, hw, 1, Parallelism::None) });
    });
    time("per item colsT·WT (HW×F), rayon over items", flops, || {
        out.par_chunks_mut(f * hw).zip(cols.par_chunks(kk * hw)).for_each(|(o, c)| unsafe { mm(hw, f, kk, o, c, 1, hw, &w, 1, kk, Parallelism::None) });
    });
    time("per item colsT(rowmajor HW×KK)·WT (HW×F), rayon over items", flops, || {
        out.par_chunks_mut(f * hw).zip(cols.par_chunks(kk * hw)).for_each(|(o, c)| unsafe { mm(hw, f, kk, o, c, kk, 1, &w, 1, kk, Parallelism::None) });
    });
    time("one big (B·HW×KK rowmajor)·WT, gemm rayon", flops, || unsafe {
        mm(b * hw, f, kk, &mut out, &cols, kk, 1, &w, 1, kk, Parallelism::Rayon(threads));
    });
    time("one big W·(KK×B·HW), gemm rayon", flops, || unsafe {
        mm(f, b * hw, kk, &mut out, &w, kk, 1, &cols, b * hw, 1, Parallelism::Rayon(threads));
    });
    time("per item W·cols sequential items, gemm rayon", flops, || {
        for (o, c) in out.chunks_mut(f * hw).zip(cols.chunks(kk * hw)) { unsafe { mm(f, hw, kk, o, &w, kk, 1, c, hw, 1, Parallelism::Rayon(threads)) } }
    });
    // kernel grad: dW (F×KK) += g (F×HW) · colsT
    let mut dw = vec![0f32; f * kk];
    let g = vec![0.1f32; b * f * hw];
    time("kgrad per item g·colsT single thread (one core)", flops, || {
        for (gg, c) in g.chunks(f * hw).zip(cols.chunks(kk * hw)) { unsafe { mm(f, kk, hw, &mut dw, gg, hw, 1, c, 1, hw, Parallelism::None) } }
    });
    // input grad: dcols (KK×HW) = WT · g
    let mut dcols = vec![0f32; b * kk * hw];
    time("igrad per item WT·g, rayon over items", flops, || {
        dcols.par_chunks_mut(kk * hw).zip(g.par_chunks(f * hw)).for_each(|(o, gg)| unsafe { mm(kk, hw, f, o, &w, 1, kk, gg, hw, 1, Parallelism::None) });
    });
    time("igrad per item gT·W (HW×KK), rayon over items", flops, || {
        dcols.par_chunks_mut(kk * hw).zip(g.par_chunks(f * hw)).for_each(|(o, gg)| unsafe { mm(hw, kk, f, o, gg, 1, hw, &w, kk, 1, Parallelism::None) });
    });
}
