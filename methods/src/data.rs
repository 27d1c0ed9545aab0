//! From dataset bytes to float tensors the way a float model sees them:
//! `x = (p / 255 - mean[c]) / std[c]`, NCHW f32.

use candle_core::{Device, Tensor};
use qbench_datasets::ImageSet;

use crate::error::Result;

/// The images at `indices` as a normalised (N, C, H, W) f32 tensor and their labels as u32 (N).
pub fn batch(set: &ImageSet, indices: &[usize]) -> Result<(Tensor, Tensor)> {
    let (c, h, w) = (set.channels, set.height, set.width);
    let plane = h * w;
    let per_image = c * plane;
    let scale: Vec<f32> = (0..c)
        .map(|ch| 1.0 / (255.0 * set.normalization.std[ch]))
        .collect();
    let offset: Vec<f32> = (0..c)
        .map(|ch| set.normalization.mean[ch] / set.normalization.std[ch])
        .collect();
    let mut pixels = Vec::with_capacity(indices.len() * per_image);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        let img = &set.images[i * per_image..(i + 1) * per_image];
        for ch in 0..c {
            let (s, o) = (scale[ch], offset[ch]);
            pixels.extend(
                img[ch * plane..(ch + 1) * plane]
                    .iter()
                    .map(|&p| f32::from(p) * s - o),
            );
        }
        labels.push(u32::from(set.labels[i]));
    }
    let x = Tensor::from_vec(pixels, (indices.len(), c, h, w), &Device::Cpu)?;
    let y = Tensor::from_vec(labels, indices.len(), &Device::Cpu)?;
    Ok((x, y))
}
