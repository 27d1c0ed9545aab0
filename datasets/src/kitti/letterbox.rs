//! Letterboxing: an image resized to fit a model input `[c, h, w]` with its aspect ratio kept,
//! centred, the rest padded with [`PAD_VALUE`]; and the map of boxes between the two frames.
//!
//! Geometry: `scale = min(h / src_h, w / src_w)`; the resized content is
//! `round(src_w * scale) x round(src_h * scale)` pixels (at least 1, at most the input),
//! placed at `(pad_x, pad_y) = (floor((w - new_w) / 2), floor((h - new_h) / 2))`. A source
//! point `x` maps to `x * scale + pad_x` (and `y` likewise), so box edges on pixel boundaries
//! stay on the matching boundaries up to the rounding of the content size (under half an input
//! pixel). Pixels: decoded whatever the PNG holds (gray, gray+alpha, RGB, RGBA, 8 or 16 bits),
//! converted to 8-bit luminance (`c = 1`, the image crate's `to_luma8`, Rec. 709 weights) or
//! RGB (`c = 3`, `to_rgb8`); alpha is dropped, not composited. Resampling is the image crate's
//! `resize` with the triangle (bilinear, antialiased when shrinking) filter: deterministic.

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Pixel};

use crate::error::{DatasetError, Result};

/// The value of the padding pixels, in every channel: 0 (black). With the identity
/// normalization a float model sees 0.0 there, the same as a convolution's zero padding, and an
/// integer engine reads the byte 0.
pub const PAD_VALUE: u8 = 0;

/// Where a source image sits inside the letterboxed model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Source pixels to input pixels (the same along both axes).
    pub scale: f32,
    /// Columns of padding left of the content, in input pixels.
    pub pad_x: f32,
    /// Rows of padding above the content, in input pixels.
    pub pad_y: f32,
    /// Source image width in pixels.
    pub src_w: u32,
    /// Source image height in pixels.
    pub src_h: u32,
    /// Input width in pixels.
    pub dst_w: u32,
    /// Input height in pixels.
    pub dst_h: u32,
}

impl Letterbox {
    /// The letterbox of a `src_w x src_h` image in a `dst_w x dst_h` input (all at least 1).
    pub fn new(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Letterbox {
        let (src_w, src_h) = (src_w.max(1), src_h.max(1));
        let (dst_w, dst_h) = (dst_w.max(1), dst_h.max(1));
        let scale = (f64::from(dst_w) / f64::from(src_w)).min(f64::from(dst_h) / f64::from(src_h));
        let mut lb = Letterbox {
            scale: scale as f32,
            pad_x: 0.0,
            pad_y: 0.0,
            src_w,
            src_h,
            dst_w,
            dst_h,
        };
        let (new_w, new_h) = lb.content_size();
        lb.pad_x = ((dst_w - new_w) / 2) as f32;
        lb.pad_y = ((dst_h - new_h) / 2) as f32;
        lb
    }

    /// Size `(width, height)` of the resized content inside the input.
    pub fn content_size(&self) -> (u32, u32) {
        let s = f64::from(self.scale);
        let fit = |src: u32, dst: u32| ((f64::from(src) * s).round() as u32).clamp(1, dst);
        (fit(self.src_w, self.dst_w), fit(self.src_h, self.dst_h))
    }

    /// A source box `[left, top, right, bottom]`, clipped to the source image, in input pixels
    /// (and within the input, against rounding).
    pub fn to_input(&self, b: [f32; 4]) -> [f32; 4] {
        let c = clip(b, self.src_w as f32, self.src_h as f32);
        clip(
            [
                c[0] * self.scale + self.pad_x,
                c[1] * self.scale + self.pad_y,
                c[2] * self.scale + self.pad_x,
                c[3] * self.scale + self.pad_y,
            ],
            self.dst_w as f32,
            self.dst_h as f32,
        )
    }

    /// An input box `[left, top, right, bottom]` (e.g. a detection) in source pixels, clipped
    /// to the source image (a box in the padding collapses onto the image's edge).
    pub fn to_source(&self, b: [f32; 4]) -> [f32; 4] {
        let back = |v: f32, pad: f32| (v - pad) / self.scale;
        clip(
            [
                back(b[0], self.pad_x),
                back(b[1], self.pad_y),
                back(b[2], self.pad_x),
                back(b[3], self.pad_y),
            ],
            self.src_w as f32,
            self.src_h as f32,
        )
    }
}

/// `b` clipped to `[0, w] x [0, h]` (NaN becomes 0).
fn clip(b: [f32; 4], w: f32, h: f32) -> [f32; 4] {
    let c = |v: f32, hi: f32| if v.is_nan() { 0.0 } else { v.clamp(0.0, hi) };
    [c(b[0], w), c(b[1], h), c(b[2], w), c(b[3], h)]
}

/// Checks a model input shape `[c, h, w]`: `c` 1 or 3, `h` and `w` at least 1.
pub(crate) fn check_input(path: &Path, input: [usize; 3]) -> Result<()> {
    let [c, h, w] = input;
    if !(c == 1 || c == 3) || h == 0 || w == 0 || u32::try_from(h.max(w)).is_err() {
        return Err(DatasetError::Unexpected {
            path: path.to_path_buf(),
            what: "letterbox input shape [channels, height, width]",
            expected: "1 or 3 channels and a non-zero height and width".into(),
            found: format!("{input:?}"),
        });
    }
    Ok(())
}

/// Decodes the image at `path` (PNG, or any format the crate reads, guessed from the content)
/// and letterboxes it into `input = [c, h, w]` (`c` 1 or 3): u8 CHW pixels and the letterbox.
pub fn read_letterboxed(path: &Path, input: [usize; 3]) -> Result<(Vec<u8>, Letterbox)> {
    check_input(path, input)?;
    let [c, h, w] = input;
    let mut out = vec![PAD_VALUE; c * h * w];
    let lb = read_letterboxed_into(path, input, &mut out)?;
    Ok((out, lb))
}

/// [`read_letterboxed`] into `out` (`c * h * w` bytes, `input` already checked).
pub(crate) fn read_letterboxed_into(
    path: &Path,
    input: [usize; 3],
    out: &mut [u8],
) -> Result<Letterbox> {
    let bad = |message: String| DatasetError::BadImage {
        path: path.to_path_buf(),
        message,
    };
    let img = image::ImageReader::open(path)
        .map_err(|e| DatasetError::io(path, "open", e))?
        .with_guessed_format()
        .map_err(|e| DatasetError::io(path, "read", e))?
        .decode()
        .map_err(|e| bad(e.to_string()))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(bad(format!("image is {}x{}", img.width(), img.height())));
    }
    Ok(letterbox_into(&img, input, out))
}

/// Letterboxes a decoded image into `out` (`c * h * w` bytes; `c` 1 or 3, checked by the
/// caller) and returns its letterbox.
pub(crate) fn letterbox_into(img: &DynamicImage, input: [usize; 3], out: &mut [u8]) -> Letterbox {
    let [c, h, w] = input;
    let lb = Letterbox::new(img.width(), img.height(), w as u32, h as u32);
    out.fill(PAD_VALUE);
    if c == 1 {
        paste(&img.to_luma8(), &lb, w, h, out);
    } else {
        paste(&img.to_rgb8(), &lb, w, h, out);
    }
    lb
}

/// Resizes `src` to the letterbox's content size and writes it, CHW, at the padding offsets.
fn paste<P>(src: &ImageBuffer<P, Vec<u8>>, lb: &Letterbox, w: usize, h: usize, out: &mut [u8])
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (nw, nh) = lb.content_size();
    let resized;
    let img = if (nw, nh) == src.dimensions() {
        src
    } else {
        resized = image::imageops::resize(src, nw, nh, FilterType::Triangle);
        &resized
    };
    let channels = usize::from(P::CHANNEL_COUNT);
    let plane = h * w;
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    for (x, y, p) in img.enumerate_pixels() {
        let i = (py + y as usize) * w + px + x as usize;
        for (ch, &v) in p.channels().iter().enumerate().take(channels) {
            out[ch * plane + i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn kitti_frame_geometry_by_hand() {
        // 1242 x 375 into 320 x 96: scale = min(96/375, 320/1242) = min(0.256, 0.25765) = 0.256;
        // content 1242 * 0.256 = 317.95 -> 318 wide, 96 high; padding (320 - 318) / 2 = 1
        // column on each side, no rows.
        let lb = Letterbox::new(1242, 375, 320, 96);
        assert_eq!(lb.scale, 0.256);
        assert_eq!((lb.pad_x, lb.pad_y), (1.0, 0.0));
        assert_eq!(lb.content_size(), (318, 96));
        // A car at (600, 180)-(700, 250): 600 * 0.256 + 1 = 154.6, 180 * 0.256 = 46.08, ...
        let b = lb.to_input([600.0, 180.0, 700.0, 250.0]);
        for (got, want) in b.iter().zip([154.6, 46.08, 180.2, 64.0]) {
            assert!((got - want).abs() < 1e-3, "{b:?}");
        }
        // The whole image maps onto the content, the padding collapses onto the edges.
        let all = lb.to_input([0.0, 0.0, 1242.0, 375.0]);
        assert!((all[2] - 318.952).abs() < 1e-3 && all[3] == 96.0, "{all:?}");
        assert_eq!(lb.to_source([0.0, 0.0, 1.0, 96.0])[..3], [0.0, 0.0, 0.0]);
        // Tall images pad rows instead.
        let lb = Letterbox::new(100, 400, 320, 96);
        assert_eq!((lb.scale, lb.content_size()), (0.24, (24, 96)));
        assert_eq!((lb.pad_x, lb.pad_y), (148.0, 0.0));
    }

    #[test]
    fn boxes_round_trip_within_half_a_pixel() {
        for (sw, sh, dw, dh) in [
            (1242, 375, 320, 96),
            (1224, 370, 320, 96),
            (384, 128, 192, 64),
            (384, 128, 320, 96),
            (97, 41, 64, 64),
            (40, 300, 50, 20),
        ] {
            let lb = Letterbox::new(sw, sh, dw, dh);
            for k in 0..50u32 {
                let (fw, fh) = (sw as f32, sh as f32);
                let x0 = (k * 37 % 100) as f32 / 100.0 * fw;
                let y0 = (k * 53 % 100) as f32 / 100.0 * fh;
                let b = [
                    x0,
                    y0,
                    (x0 + 5.5 + k as f32).min(fw),
                    (y0 + 3.0 + k as f32).min(fh),
                ];
                let back = lb.to_source(lb.to_input(b));
                for (a, z) in b.iter().zip(back) {
                    assert!((a - z).abs() <= 0.5, "{sw}x{sh}->{dw}x{dh}: {b:?} {back:?}");
                }
                let inp = lb.to_input(b);
                assert!(inp[0] >= 0.0 && inp[2] <= dw as f32 + 1e-3, "{inp:?}");
                assert!(inp[1] >= 0.0 && inp[3] <= dh as f32 + 1e-3, "{inp:?}");
            }
            // Out-of-image parts are clipped both ways.
            let c = lb.to_input([-10.0, -10.0, 1e6, 1e6]);
            assert_eq!(c, lb.to_input([0.0, 0.0, sw as f32, sh as f32]));
            let s = lb.to_source([-50.0, -50.0, 1e6, 1e6]);
            assert_eq!(s, [0.0, 0.0, sw as f32, sh as f32]);
        }
    }

    /// A 12 x 4 image: left half (value 200 / colour [200, 100, 50]) and right half dark.
    fn save_variants(dir: &Path) -> Vec<std::path::PathBuf> {
        let half = |x: u32| x < 6;
        let gray = GrayImage::from_fn(12, 4, |x, _| Luma([if half(x) { 200 } else { 10 }]));
        let rgb = RgbImage::from_fn(12, 4, |x, _| {
            Rgb(if half(x) {
                [200, 100, 50]
            } else {
                [10, 10, 10]
            })
        });
        let rgba = RgbaImage::from_fn(12, 4, |x, _| {
            Rgba(if half(x) {
                [200, 100, 50, 128]
            } else {
                [10, 10, 10, 255]
            })
        });
        let rgb16 = DynamicImage::ImageRgb8(rgb.clone()).to_rgb16();
        let gray16 = DynamicImage::ImageLuma8(gray.clone()).to_luma16();
        let paths: Vec<_> = ["gray", "rgb", "rgba", "rgb16", "gray16"]
            .iter()
            .map(|n| dir.join(format!("{n}.png")))
            .collect();
        gray.save(&paths[0]).unwrap();
        rgb.save(&paths[1]).unwrap();
        rgba.save(&paths[2]).unwrap();
        rgb16.save(&paths[3]).unwrap();
        gray16.save(&paths[4]).unwrap();
        paths
    }

    #[test]
    fn png_kinds_convert_to_one_and_three_channels() {
        let dir = tempfile::tempdir().unwrap();
        let paths = save_variants(dir.path());
        // 12 x 4 into 8 x 6 (h 6, w 8): scale min(6/4, 8/12) = 2/3, content 8 x 3 (2.67 -> 3),
        // pad_y = 1: rows 0 and 4..6 padding.
        for path in &paths {
            let name = path.file_stem().unwrap().to_str().unwrap();
            let is_gray = name.starts_with("gray");
            let (rgb, lb) = read_letterboxed(path, [3, 6, 8]).unwrap();
            assert_eq!((lb.pad_x, lb.pad_y, lb.content_size()), (0.0, 1.0, (8, 3)));
            assert_eq!(rgb.len(), 3 * 48);
            let want = if is_gray {
                [200, 200, 200]
            } else {
                [200, 100, 50]
            };
            for (ch, &v) in want.iter().enumerate() {
                let plane = &rgb[ch * 48..(ch + 1) * 48];
                assert!(plane[..8].iter().all(|&p| p == PAD_VALUE), "{name}");
                assert!(plane[32..].iter().all(|&p| p == PAD_VALUE), "{name}");
                // Leftmost content column: the bright half; rightmost: the dark half.
                assert!(plane[8].abs_diff(v) <= 2, "{name} ch {ch}: {}", plane[8]);
                assert!(plane[15].abs_diff(10) <= 2, "{name} ch {ch}: {}", plane[15]);
            }
            let (luma, _) = read_letterboxed(path, [1, 6, 8]).unwrap();
            assert_eq!(luma.len(), 48);
            // Rec. 709 luminance of [200, 100, 50]: 0.2126*200 + 0.7152*100 + 0.0722*50 = 117.6.
            let want = if is_gray { 200 } else { 118 };
            assert!(luma[8].abs_diff(want) <= 2, "{name}: {}", luma[8]);
            assert!(luma[..8].iter().all(|&p| p == PAD_VALUE), "{name}");
        }
    }

    #[test]
    fn bad_shape_and_bad_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let paths = save_variants(dir.path());
        let e = read_letterboxed(&paths[0], [2, 6, 8]).unwrap_err();
        assert!(e.to_string().contains("[2, 6, 8]"), "{e}");
        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"\x89PNG not really").unwrap();
        let e = read_letterboxed(&junk, [1, 6, 8]).unwrap_err();
        assert!(
            matches!(&e, DatasetError::BadImage { path, .. } if *path == junk),
            "{e}"
        );
    }
}
