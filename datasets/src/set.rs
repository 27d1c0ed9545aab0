//! The in-memory batch type every reader returns: [`ImageSet`] and its
//! [`Normalization`].

use std::ops::Range;

/// How a float model sees a pixel: `x = (p / 255 - mean[c]) / std[c]`.
///
/// The pixels of an [`ImageSet`] stay raw `u8` so that an integer engine can
/// read them directly; float models apply this per-channel affine map. For
/// MNIST-like sets it is the identity on `p / 255` (mean 0, std 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Per-channel mean, in units of `p / 255`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, in units of `p / 255`.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Mean 0, std 1 for each of `channels` channels: the model sees `p / 255`.
    /// Used for MNIST-like sets.
    pub fn identity(channels: usize) -> Self {
        Normalization {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The ImageNet RGB statistics used by torchvision's pretrained models:
    /// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    pub fn imagenet() -> Self {
        Normalization {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// CIFAR-10 training-set RGB statistics: mean (0.4914, 0.4822, 0.4465),
    /// std (0.2470, 0.2435, 0.2616).
    pub fn cifar10() -> Self {
        Normalization {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// CIFAR-100 training-set RGB statistics: mean (0.5071, 0.4865, 0.4409),
    /// std (0.2673, 0.2564, 0.2762).
    pub fn cifar100() -> Self {
        Normalization {
            mean: vec![0.5071, 0.4865, 0.4409],
            std: vec![0.2673, 0.2564, 0.2762],
        }
    }

    /// The float value a model sees for pixel `p` of channel `c`.
    ///
    /// # Panics
    /// If `c` is not below the number of channels.
    pub fn apply(&self, c: usize, p: u8) -> f32 {
        (f32::from(p) / 255.0 - self.mean[c]) / self.std[c]
    }
}

/// Images as u8 NCHW (row-major, one image after another) with labels.
///
/// The one batch type of every reader: it holds the raw pixels the integer
/// engine consumes and carries, in [`ImageSet::normalization`], how float
/// models are to see them. Readers guarantee `images.len() == labels.len() *
/// channels * height * width` and every label `< num_classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Pixels, NCHW, `len() * channels * height * width` bytes.
    pub images: Vec<u8>,
    /// One label per image, each below `num_classes`.
    pub labels: Vec<u16>,
    /// Channels per image (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes of the dataset (not only those present here).
    pub num_classes: usize,
    /// How a float model maps a pixel to its input value.
    pub normalization: Normalization,
    /// Object boxes of a detection set, one list per image in the images' own pixel
    /// coordinates; empty for a classification set. A detection set's `labels` are all 0 and
    /// its `num_classes` counts the object classes. Boxes of class [`GtBox::IGNORE`] mark
    /// regions an evaluation ignores (KITTI's DontCare and neighbouring classes).
    pub boxes: Vec<Vec<GtBox>>,
}

/// One ground-truth object of a detection set, in the pixel coordinates of the [`ImageSet`] it
/// belongs to (after any resizing): a class below the set's `num_classes` (or
/// [`GtBox::IGNORE`]) and a box with `x0 <= x1`, `y0 <= y1`, edges at pixel boundaries (a box
/// covering pixel 0 only is 0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtBox {
    /// Object class.
    pub class: u16,
    /// Left edge.
    pub x0: f32,
    /// Top edge.
    pub y0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y1: f32,
}

impl GtBox {
    /// The class of a region that is neither an object to find nor background (KITTI's
    /// DontCare, and Van and Person_sitting, which the evaluation of Car and Pedestrian ignores):
    /// training should neither reward nor penalise detections there.
    pub const IGNORE: u16 = u16::MAX;

    /// True for an ignored region.
    pub fn is_ignore(&self) -> bool {
        self.class == Self::IGNORE
    }
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The CHW pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    /// Used with [`crate::train_val_split`] and [`crate::shuffled_indices`].
    ///
    /// # Panics
    /// If an index is `>= len()`; indices come from code, not from files.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let n = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        let boxes = if self.boxes.is_empty() {
            Vec::new()
        } else {
            indices.iter().map(|&i| self.boxes[i].clone()).collect()
        };
        ImageSet {
            images,
            labels,
            channels: self.channels,
            height: self.height,
            width: self.width,
            num_classes: self.num_classes,
            normalization: self.normalization.clone(),
            boxes,
        }
    }

    /// The images in `range` as normalised f32 NCHW, ready for a float model:
    /// each pixel becomes `(p / 255 - mean[c]) / std[c]`.
    ///
    /// # Panics
    /// If `range` reaches past `len()`.
    pub fn to_f32_normalized(&self, range: Range<usize>) -> Vec<f32> {
        let n = self.image_len();
        let plane = self.height * self.width;
        let pixels = &self.images[range.start * n..range.end * n];
        // One lookup table per channel: 256 entries instead of a divide per pixel.
        let tables: Vec<[f32; 256]> = (0..self.channels)
            .map(|c| std::array::from_fn(|p| self.normalization.apply(c, p as u8)))
            .collect();
        let mut out = Vec::with_capacity(pixels.len());
        for image in pixels.chunks_exact(n.max(1)) {
            for (c, channel) in image.chunks_exact(plane.max(1)).enumerate() {
                let table = &tables[c];
                out.extend(channel.iter().map(|&p| table[usize::from(p)]));
            }
        }
        out
    }

    /// Number of images of each class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(usize::from(l)) {
                *c += 1;
            }
        }
        counts
    }

    /// Checks the invariants readers guarantee (sizes agree, labels in range,
    /// one mean and std per channel). Returns a description of the first
    /// violation; useful for sets built by hand.
    pub fn check(&self) -> std::result::Result<(), String> {
        let expected = self.len().checked_mul(self.image_len());
        if expected != Some(self.images.len()) {
            return Err(format!(
                "{} pixel bytes for {} images of {}x{}x{}: expected {:?}",
                self.images.len(),
                self.len(),
                self.channels,
                self.height,
                self.width,
                expected
            ));
        }
        if let Some((i, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= self.num_classes)
        {
            return Err(format!(
                "label {l} of image {i} is out of range 0..{}",
                self.num_classes
            ));
        }
        if self.normalization.mean.len() != self.channels
            || self.normalization.std.len() != self.channels
        {
            return Err(format!(
                "normalization has {} means and {} stds for {} channels",
                self.normalization.mean.len(),
                self.normalization.std.len(),
                self.channels
            ));
        }
        if self
            .normalization
            .std
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err("normalization std must be finite and positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageSet {
        // Three 2-channel 1x2 images.
        ImageSet {
            images: vec![0, 255, 10, 20, 1, 2, 3, 4, 5, 6, 7, 8],
            labels: vec![0, 2, 1],
            channels: 2,
            height: 1,
            width: 2,
            num_classes: 3,
            normalization: Normalization {
                mean: vec![0.0, 0.5],
                std: vec![1.0, 0.5],
            },
            boxes: Vec::new(),
        }
    }

    #[test]
    fn image_and_subset() {
        let s = tiny();
        assert_eq!(s.len(), 3);
        assert_eq!(s.image(1), &[1, 2, 3, 4]);
        let sub = s.subset(&[2, 0]);
        assert_eq!(sub.labels, vec![1, 0]);
        assert_eq!(sub.images, vec![5, 6, 7, 8, 0, 255, 10, 20]);
        assert!(sub.check().is_ok());
        assert_eq!(s.class_counts(), vec![1, 1, 1]);
    }

    #[test]
    fn f32_normalisation() {
        let s = tiny();
        let x = s.to_f32_normalized(0..1);
        assert_eq!(x.len(), 4);
        assert_eq!(x[0], 0.0);
        assert_eq!(x[1], 1.0);
        assert!((x[2] - (10.0 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
        assert_eq!(s.to_f32_normalized(1..3).len(), 8);
        assert!(s.to_f32_normalized(3..3).is_empty());
    }

    #[test]
    fn check_finds_bad_label() {
        let mut s = tiny();
        s.labels[1] = 3;
        assert!(s.check().unwrap_err().contains("label 3 of image 1"));
    }
}
