//! Helpers of the model tests that compare a hand-written operation with candle's own.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};

/// A tensor of `shape` with values drawn uniformly from `lo..hi` (seeded).
pub fn uniform(shape: &[usize], seed: u64, lo: f32, hi: f32) -> Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// The largest absolute difference between two tensors of one shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The gradients of `sum(ours * probe)` and `sum(theirs * probe)`: two implementations of one
/// operation, differentiated along the same random direction.
pub fn probe_gradients(ours: &Tensor, theirs: &Tensor, probe: &Tensor) -> (GradStore, GradStore) {
    let grads = |t: &Tensor| (t * probe).unwrap().sum_all().unwrap().backward().unwrap();
    (grads(ours), grads(theirs))
}
