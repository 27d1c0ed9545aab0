//! IDX files (MNIST, Fashion-MNIST, KMNIST, ...), raw or gzipped.
//!
//! Layout (big-endian): a 4-byte magic `00 00 08 nd` (type 0x08 = unsigned
//! byte, `nd` dimensions), then `nd` u32 sizes, then the data. Images are
//! `0x00000803` (count, rows, cols), labels `0x00000801` (count). Files that
//! start with the gzip magic `1f 8b` are decompressed first; byte offsets in
//! errors then refer to the decompressed data.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DatasetError, Result};
use crate::set::{ImageSet, Normalization};

/// Magic number of an IDX file of unsigned-byte images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The content of an IDX images file: `count` grayscale images of
/// `height x width` bytes each, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// `count * height * width` pixels, row-major.
    pub pixels: Vec<u8>,
}

/// Reads a whole file, gunzipping it when it starts with `1f 8b`.
/// Returns the (decompressed) bytes and whether the file was gzipped.
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<(Vec<u8>, bool)> {
    let raw = std::fs::read(path).map_err(|e| DatasetError::io(path, "read", e))?;
    if raw.len() < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
        return Ok((raw, false));
    }
    // The gzip trailer's last 4 bytes hold the uncompressed size mod 2^32:
    // a capacity hint only (capped, since a corrupt file can claim anything).
    let isize_hint = raw
        .get(raw.len().saturating_sub(4)..)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u32::from_le_bytes(b) as usize);
    let mut out = Vec::with_capacity(isize_hint.min(raw.len().saturating_mul(64)));
    // MultiGzDecoder also rejects garbage after the last gzip member instead
    // of ignoring it.
    let mut decoder = MultiGzDecoder::new(raw.as_slice());
    match decoder.read_to_end(&mut out) {
        Ok(_) => Ok((out, true)),
        Err(source) => Err(DatasetError::Gzip {
            path: path.to_path_buf(),
            decompressed: out.len() as u64,
            source,
        }),
    }
}

fn be_u32(data: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        data[offset],
        data[offset + 1],
        data[offset + 2],
        data[offset + 3],
    ])
}

/// Checks the magic and the header length, then returns the `dims` sizes.
fn parse_header(
    path: &Path,
    data: &[u8],
    gz: bool,
    magic: u32,
    what: &'static str,
    names: &[&str],
) -> Result<Vec<u64>> {
    let header_len = 4 + 4 * names.len();
    if data.len() >= 4 {
        let found = be_u32(data, 0);
        if found != magic {
            return Err(DatasetError::BadMagic {
                path: path.to_path_buf(),
                expected: magic,
                found,
                what,
            });
        }
    }
    if data.len() < header_len {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: data.len() as u64,
            detail: format!(
                " at least, for the {header_len}-byte {what} header{}",
                if gz { " (after gunzip)" } else { "" }
            ),
        });
    }
    let mut dims = Vec::with_capacity(names.len());
    for (k, name) in names.iter().enumerate() {
        let offset = 4 + 4 * k;
        let v = be_u32(data, offset);
        if v == 0 {
            return Err(DatasetError::BadHeader {
                path: path.to_path_buf(),
                offset: offset as u64,
                message: format!("{name} is 0: expected at least 1"),
            });
        }
        dims.push(u64::from(v));
    }
    Ok(dims)
}

/// Checks that `data.len()` is exactly `header_len + body_len`.
fn check_length(
    path: &Path,
    data: &[u8],
    gz: bool,
    header_len: u64,
    body_len: u64,
    body_desc: String,
) -> Result<()> {
    let expected = header_len + body_len;
    let found = data.len() as u64;
    let detail = format!(
        " ({header_len}-byte header + {body_desc}){}",
        if gz { " after gunzip" } else { "" }
    );
    if found < expected {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
            detail,
        });
    }
    if found > expected {
        return Err(DatasetError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found,
            extra: found - expected,
            detail,
        });
    }
    Ok(())
}

/// Reads an IDX images file (magic `0x00000803`), raw or gzipped, checking
/// the magic, that no dimension is 0, and that the length is exactly the
/// header plus `count * rows * cols` bytes.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let (mut data, gz) = read_maybe_gzip(path)?;
    let dims = parse_header(
        path,
        &data,
        gz,
        IDX_IMAGES_MAGIC,
        "IDX images: unsigned bytes, 3 dimensions",
        &["image count", "rows", "columns"],
    )?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let body = count
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .filter(|v| usize::try_from(*v).is_ok())
        .ok_or_else(|| DatasetError::BadHeader {
            path: path.to_path_buf(),
            offset: 4,
            message: format!("{count} x {rows} x {cols} pixels does not fit in memory"),
        })?;
    check_length(
        path,
        &data,
        gz,
        16,
        body,
        format!("{count} images x {rows} x {cols} pixels"),
    )?;
    data.drain(..16);
    Ok(IdxImages {
        count: count as usize,
        height: rows as usize,
        width: cols as usize,
        pixels: data,
    })
}

/// Reads an IDX labels file (magic `0x00000801`), raw or gzipped, checking
/// the magic, a non-zero count and that the length is exactly 8 + count bytes.
/// Label values are not range-checked here; see [`load_idx_pair`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let (mut data, gz) = read_maybe_gzip(path)?;
    let dims = parse_header(
        path,
        &data,
        gz,
        IDX_LABELS_MAGIC,
        "IDX labels: unsigned bytes, 1 dimension",
        &["label count"],
    )?;
    let count = dims[0];
    check_length(path, &data, gz, 8, count, format!("{count} labels"))?;
    data.drain(..8);
    Ok(data)
}

/// Loads an IDX images file and its labels file as one grayscale
/// [`ImageSet`] (1 channel, identity normalisation).
///
/// Both files may be raw or gzipped. Besides what [`read_idx_images`] and
/// [`read_idx_labels`] check, the two counts must agree and every label must
/// be below `num_classes` (the error gives the label's byte offset).
pub fn load_idx_pair(
    images_path: impl AsRef<Path>,
    labels_path: impl AsRef<Path>,
    num_classes: usize,
) -> Result<ImageSet> {
    let (images_path, labels_path) = (images_path.as_ref(), labels_path.as_ref());
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    if images.count != labels.len() {
        return Err(DatasetError::CountMismatch {
            images: images_path.to_path_buf(),
            image_count: images.count as u64,
            labels: labels_path.to_path_buf(),
            label_count: labels.len() as u64,
        });
    }
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= num_classes)
    {
        return Err(DatasetError::LabelOutOfRange {
            path: labels_path.to_path_buf(),
            offset: 8 + i as u64,
            index: i as u64,
            label: u64::from(l),
            num_classes,
        });
    }
    Ok(ImageSet {
        images: images.pixels,
        labels: labels.into_iter().map(u16::from).collect(),
        channels: 1,
        height: images.height,
        width: images.width,
        num_classes,
        normalization: Normalization::identity(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    use std::path::PathBuf;

    fn images_bytes(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut v = IDX_IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [count, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(pixels);
        v
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut v = IDX_LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Three 2x3 images with distinct pixels and labels 0, 9, 4.
    fn valid() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..18).map(|i| (i * 13) as u8).collect();
        (
            images_bytes(3, 2, 3, &pixels),
            labels_bytes(&[0, 9, 4]),
            pixels,
        )
    }

    #[test]
    fn raw_and_gzip_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lab, pixels) = valid();
        for gz in [false, true] {
            let (i, l) = if gz {
                (gzip(&img), gzip(&lab))
            } else {
                (img.clone(), lab.clone())
            };
            let ip = write(dir.path(), &format!("i{gz}"), &i);
            let lp = write(dir.path(), &format!("l{gz}"), &l);
            let set = load_idx_pair(&ip, &lp, 10).unwrap();
            assert_eq!(set.len(), 3);
            assert_eq!((set.channels, set.height, set.width), (1, 2, 3));
            assert_eq!(set.images, pixels);
            assert_eq!(set.labels, vec![0, 9, 4]);
            assert_eq!(set.image(1), &pixels[6..12]);
            assert_eq!(set.normalization, Normalization::identity(1));
            assert!(set.check().is_ok());
        }
    }

    fn err(images: &[u8], labels: &[u8], num_classes: usize) -> DatasetError {
        let dir = tempfile::tempdir().unwrap();
        let ip = write(dir.path(), "images.idx", images);
        let lp = write(dir.path(), "labels.idx", labels);
        load_idx_pair(&ip, &lp, num_classes).unwrap_err()
    }

    #[test]
    fn bad_magic() {
        let (mut img, lab, _) = valid();
        img[3] = 0x01;
        let e = err(&img, &lab, 10);
        assert!(
            matches!(
                e,
                DatasetError::BadMagic {
                    expected: 0x803,
                    found: 0x801,
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("images.idx") && msg.contains("0x00000803") && msg.contains("0x00000801"),
            "{msg}"
        );
        // Swapped files: the labels file read as images.
        let (img, lab, _) = valid();
        let e = err(&lab, &img, 10);
        assert!(matches!(e, DatasetError::BadMagic { .. }), "{e}");
    }

    #[test]
    fn zero_dimension() {
        let (_, lab, _) = valid();
        let e = err(&images_bytes(3, 0, 3, &[]), &lab, 10);
        assert!(
            matches!(e, DatasetError::BadHeader { offset: 8, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("rows is 0"), "{e}");
    }

    #[test]
    fn wrong_dims_make_length_disagree() {
        // Header says 3 images of 3x3 but holds 3 of 2x3: truncated.
        let (_, lab, pixels) = valid();
        let e = err(&images_bytes(3, 3, 3, &pixels), &lab, 10);
        match e {
            DatasetError::Truncated {
                expected, found, ..
            } => {
                assert_eq!((expected, found), (16 + 27, 16 + 18))
            }
            e => panic!("wrong error {e}"),
        }
    }

    #[test]
    fn truncated_images() {
        let (img, lab, _) = valid();
        let e = err(&img[..img.len() - 1], &lab, 10);
        let msg = e.to_string();
        assert!(
            matches!(
                e,
                DatasetError::Truncated {
                    expected: 34,
                    found: 33,
                    ..
                }
            ),
            "{msg}"
        );
        assert!(msg.contains("3 images x 2 x 3 pixels"), "{msg}");
        // Shorter than the header itself.
        let e = err(&img[..10], &lab, 10);
        assert!(
            matches!(
                e,
                DatasetError::Truncated {
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn trailing_bytes() {
        let (mut img, lab, _) = valid();
        img.extend_from_slice(&[1, 2]);
        let e = err(&img, &lab, 10);
        assert!(
            matches!(e, DatasetError::TrailingBytes { extra: 2, .. }),
            "{e}"
        );
        let (img, mut lab, _) = valid();
        lab.push(0);
        let e = err(&img, &lab, 10);
        assert!(
            matches!(&e, DatasetError::TrailingBytes { path, extra: 1, .. } if path.ends_with("labels.idx")),
            "{e}"
        );
    }

    #[test]
    fn label_out_of_range() {
        let (img, lab, _) = valid();
        let e = err(&img, &lab, 9);
        assert!(
            matches!(
                e,
                DatasetError::LabelOutOfRange {
                    offset: 9,
                    index: 1,
                    label: 9,
                    num_classes: 9,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("at byte 9"), "{e}");
    }

    #[test]
    fn count_mismatch() {
        let (img, _, _) = valid();
        let e = err(&img, &labels_bytes(&[0, 1]), 10);
        assert!(
            matches!(
                e,
                DatasetError::CountMismatch {
                    image_count: 3,
                    label_count: 2,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn truncated_gzip() {
        let (img, lab, _) = valid();
        let gz = gzip(&img);
        let e = err(&gz[..gz.len() - 6], &gzip(&lab), 10);
        assert!(matches!(e, DatasetError::Gzip { .. }), "{e}");
        assert!(e.to_string().contains("images.idx"), "{e}");
    }

    #[test]
    fn garbage_after_gzip_member() {
        let (img, lab, _) = valid();
        let mut gz = gzip(&img);
        gz.extend_from_slice(b"junk");
        let e = err(&gz, &lab, 10);
        assert!(matches!(e, DatasetError::Gzip { .. }), "{e}");
    }

    #[test]
    fn missing_file() {
        let e = read_idx_labels("/nonexistent/labels.idx").unwrap_err();
        assert!(matches!(e, DatasetError::Io(_)), "{e}");
        assert!(e.to_string().contains("/nonexistent/labels.idx"), "{e}");
    }
}
