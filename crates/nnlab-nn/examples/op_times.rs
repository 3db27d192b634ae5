use std::time::Instant;
use candle_core::{Device, Tensor, DType, Var};
use nnlab_nn::kernels::conv::conv2d;

fn time<T>(name: &str, mut f: impl FnMut() -> T) -> T {
    let mut v = Vec::new();
    let mut out = f();
    for _ in 0..7 { let t = Instant::now(); out = f(); v.push(t.elapsed().as_secs_f64()*1e3); }
    v.sort_by(f64::total_cmp);
    println!("{name:40} {:8.2} ms", v[3]);
    out
}

fn main() {
    let d = Device::Cpu;
    let x1 = Tensor::randn(0f32, 1., (128, 32, 26, 26), &d).unwrap();
    let k2 = Tensor::randn(0f32, 1., (64, 32, 3, 3), &d).unwrap();
    let x0 = Tensor::randn(0f32, 1., (128, 1, 28, 28), &d).unwrap();
    let k1 = Tensor::randn(0f32, 1., (32, 1, 3, 3), &d).unwrap();
    let z = time("conv2 fwd", || conv2d(&x1, &k2, [0;4]).unwrap());
    time("conv1 fwd", || conv2d(&x0, &k1, [0;4]).unwrap());
    let kv = Var::from_tensor(&k2).unwrap();
    let xv = Var::from_tensor(&x1).unwrap();
    let g = Tensor::randn(0f32, 1., z.shape(), &d).unwrap();
    time("conv2 fwd+bwd (both grads)", || { let o = conv2d(xv.as_tensor(), kv.as_tensor(), [0;4]).unwrap(); (o * &g).unwrap().sum_all().unwrap().backward().unwrap() });
    let k1v = Var::from_tensor(&k1).unwrap();
    let g1 = Tensor::randn(0f32, 1., (128, 32, 26, 26), &d).unwrap();
    time("conv1 fwd+bwd (kernel grad)", || { let o = conv2d(&x0, k1v.as_tensor(), [0;4]).unwrap(); (o * &g1).unwrap().sum_all().unwrap().backward().unwrap() });
    time("mul+sum_all z-sized", || (&z * &g).unwrap().sum_all().unwrap());
    let b = Tensor::randn(0f32, 1., 64, &d).unwrap();
    time("bias broadcast_add", || z.broadcast_add(&b.reshape((1, (), 1, 1)).unwrap()).unwrap());
    time("bias grad sum(0,2,3)", || g.sum_keepdim(0).unwrap().sum_keepdim(2).unwrap().sum_keepdim(3).unwrap());
    time("relu", || z.relu().unwrap());
    time("relu bwd (ge, to_dtype, mul)", || (&g * z.ge(&z.zeros_like().unwrap()).unwrap().to_dtype(DType::F32).unwrap()).unwrap());
    time("zeros_like + add (grad accumulate)", || z.zeros_like().unwrap().add(&g).unwrap());
    let p = time("maxpool fwd", || z.max_pool2d(2).unwrap());
    let gp = Tensor::randn(0f32, 1., p.shape(), &d).unwrap();
    time("maxpool bwd (candle)", || {
        let up = p.upsample_nearest2d(24, 24).unwrap();
        let mask = z.eq(&up).unwrap().to_dtype(DType::F32).unwrap();
        let avg = mask.avg_pool2d(2).unwrap();
        ((&gp * avg).unwrap().upsample_nearest2d(24, 24).unwrap() * mask).unwrap()
    });
    let f = p.flatten_from(1).unwrap();
    let w = Tensor::randn(0f32, 1., (9216, 128), &d).unwrap();
    time("dense fwd 128x9216x128", || f.matmul(&w).unwrap());
    let gd = Tensor::randn(0f32, 1., (128, 128), &d).unwrap();
    time("dense bwd dW = f^T g", || f.t().unwrap().matmul(&gd).unwrap());
    time("dense bwd dX = g W^T", || gd.matmul(&w.t().unwrap()).unwrap());
}
