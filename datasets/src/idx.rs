//! IDX files (MNIST, Fashion-MNIST, KMNIST, ...), raw or gzipped.
//!
//! Layout (big-endian): a 4-byte magic `00 00 08 nd` (type 0x08 = unsigned
//! byte, `nd` dimensions), then `nd` u32 sizes, then the data. Images are
//! `0x00000803` (count, rows, cols), labels `0x00000801` (count). Files that
//! start with the gzip magic `1f 8b` are decompressed first; byte offsets in
//! errors then refer to the decompressed data.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
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

/// An opened IDX file: its bytes (gunzipped when the file starts with
/// `1f 8b`), and for a raw file its length on disk.
struct Source<'a> {
    path: &'a Path,
    reader: Box<dyn Read>,
    gz: bool,
    raw_len: Option<u64>,
    read: u64,
}

impl<'a> Source<'a> {
    fn open(path: &'a Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| DatasetError::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| DatasetError::io(path, "read the metadata of", e))?
            .len();
        let mut magic = [0u8; 2];
        let n = read_full(&mut file, &mut magic).map_err(|e| DatasetError::io(path, "read", e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| DatasetError::io(path, "seek in", e))?;
        let gz = n == 2 && magic == [0x1f, 0x8b];
        let reader: Box<dyn Read> = if gz {
            // MultiGzDecoder also rejects garbage after the last gzip member
            // instead of ignoring it.
            Box::new(MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        Ok(Source {
            path,
            reader,
            gz,
            raw_len: (!gz).then_some(len),
            read: 0,
        })
    }

    /// Fills as much of `buf` as the data holds; returns how much.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = read_full(&mut self.reader, buf).map_err(|e| self.error(e))?;
        self.read += n as u64;
        Ok(n)
    }

    fn error(&self, source: std::io::Error) -> DatasetError {
        if self.gz {
            DatasetError::Gzip {
                path: self.path.to_path_buf(),
                decompressed: self.read,
                source,
            }
        } else {
            DatasetError::io(self.path, "read", source)
        }
    }

    /// Reads the rest of the data, but never more than `limit` bytes: memory
    /// grows with what actually arrives, up to `limit`, whatever a header claims.
    fn read_capped(&mut self, limit: u64) -> Result<Vec<u8>> {
        const STEP: usize = 1 << 16;
        let mut out = Vec::new();
        loop {
            let room = limit - out.len() as u64;
            if room == 0 {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                // Doubling, clamped to the limit (which fits in memory: it is
                // at most what the caller checked plus one byte).
                let grow = (out.capacity().max(STEP) as u64).min(room) as usize;
                out.reserve_exact(grow);
            }
            // At most STEP bytes zeroed per read, so the cost stays linear.
            let start = out.len();
            let take = ((out.capacity() - start).min(STEP) as u64).min(room) as usize;
            out.resize(start + take, 0);
            let result = self.reader.read(&mut out[start..]);
            out.truncate(start + *result.as_ref().unwrap_or(&0));
            match result {
                Ok(0) => return Ok(out),
                Ok(n) => self.read += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.error(e)),
            }
        }
    }
}

/// Reads until `buf` is full or the data ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn be_u32(data: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        data[offset],
        data[offset + 1],
        data[offset + 2],
        data[offset + 3],
    ])
}

/// What one kind of IDX file looks like.
struct Kind {
    magic: u32,
    what: &'static str,
    names: &'static [&'static str],
}

const IMAGES: Kind = Kind {
    magic: IDX_IMAGES_MAGIC,
    what: "IDX images: unsigned bytes, 3 dimensions",
    names: &["image count", "rows", "columns"],
};

const LABELS: Kind = Kind {
    magic: IDX_LABELS_MAGIC,
    what: "IDX labels: unsigned bytes, 1 dimension",
    names: &["label count"],
};

/// Reads one IDX file: the header (magic, no zero dimension), then `check`
/// on the dimensions, then exactly the `product(dims)` data bytes the header
/// promises. A raw file's length is compared with that before its data is
/// read; a gzipped one is inflated only up to one byte past it, so neither a
/// header claiming huge dimensions nor a gzip bomb costs more memory than the
/// header's own size (see `read_capped`). Returns the dimensions and the data.
fn read_idx(
    path: &Path,
    kind: &Kind,
    check: impl FnOnce(&[u64]) -> Result<()>,
) -> Result<(Vec<u64>, Vec<u8>)> {
    let mut src = Source::open(path)?;
    let gz = src.gz;
    let header_len = 4 + 4 * kind.names.len();
    let mut header = vec![0u8; header_len];
    let n = src.fill(&mut header)?;
    if n >= 4 {
        let found = be_u32(&header, 0);
        if found != kind.magic {
            return Err(DatasetError::BadMagic {
                path: path.to_path_buf(),
                expected: kind.magic,
                found,
                what: kind.what,
            });
        }
    }
    if n < header_len {
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected: header_len as u64,
            found: n as u64,
            detail: format!(
                " at least, for the {header_len}-byte {} header{}",
                kind.what,
                if gz { " (after gunzip)" } else { "" }
            ),
        });
    }
    let mut dims = Vec::with_capacity(kind.names.len());
    for (k, name) in kind.names.iter().enumerate() {
        let offset = 4 + 4 * k;
        let v = be_u32(&header, offset);
        if v == 0 {
            return Err(DatasetError::BadHeader {
                path: path.to_path_buf(),
                offset: offset as u64,
                message: format!("{name} is 0: expected at least 1"),
            });
        }
        dims.push(u64::from(v));
    }
    let shown = dims
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(" x ");
    let body = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        // The data and one byte past it must be addressable.
        .filter(|v| usize::try_from(*v).is_ok_and(|v| v < isize::MAX as usize))
        .ok_or_else(|| DatasetError::BadHeader {
            path: path.to_path_buf(),
            offset: 4,
            message: format!("{shown} bytes does not fit in memory"),
        })?;
    check(&dims)?;
    let body_desc = match dims.as_slice() {
        [count, rows, cols] => format!("{count} images x {rows} x {cols} pixels"),
        _ => format!("{shown} labels"),
    };
    let header_len = header_len as u64;
    let expected = header_len + body;
    let detail = format!(
        " ({header_len}-byte header + {body_desc}){}",
        if gz { " after gunzip" } else { "" }
    );
    let found = match src.raw_len {
        Some(len) => len,
        None => {
            let data = src.read_capped(body + 1)?;
            if data.len() as u64 > body {
                return Err(DatasetError::Oversized {
                    path: path.to_path_buf(),
                    expected,
                    detail,
                });
            }
            if data.len() as u64 == body {
                return Ok((dims, data));
            }
            header_len + data.len() as u64
        }
    };
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
    let data = src.read_capped(body)?;
    if (data.len() as u64) < body {
        // The file shrank while being read.
        return Err(DatasetError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: header_len + data.len() as u64,
            detail,
        });
    }
    Ok((dims, data))
}

/// Reads an IDX images file (magic `0x00000803`), raw or gzipped, checking
/// the magic, that no dimension is 0, and that the length is exactly the
/// header plus `count * rows * cols` bytes. Decompression stops one byte
/// past that length ([`DatasetError::Oversized`]).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    read_images_checked(path.as_ref(), |_| Ok(()))
}

fn read_images_checked(path: &Path, check: impl FnOnce(&[u64]) -> Result<()>) -> Result<IdxImages> {
    let (dims, pixels) = read_idx(path, &IMAGES, check)?;
    Ok(IdxImages {
        count: dims[0] as usize,
        height: dims[1] as usize,
        width: dims[2] as usize,
        pixels,
    })
}

/// Reads an IDX labels file (magic `0x00000801`), raw or gzipped, checking
/// the magic, a non-zero count and that the length is exactly 8 + count bytes
/// (decompression stops one byte past that). Label values are not
/// range-checked here; see [`load_idx_pair`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    Ok(read_idx(path.as_ref(), &LABELS, |_| Ok(()))?.1)
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
    // Labels first: the images header's count is then checked before any
    // pixel is read.
    let labels = read_idx_labels(labels_path)?;
    let mismatch = |image_count: u64| DatasetError::CountMismatch {
        images: images_path.to_path_buf(),
        image_count,
        labels: labels_path.to_path_buf(),
        label_count: labels.len() as u64,
    };
    let images = read_images_checked(images_path, |dims| {
        if dims[0] == labels.len() as u64 {
            Ok(())
        } else {
            Err(mismatch(dims[0]))
        }
    })?;
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
        boxes: Vec::new(),
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
    fn gzip_inflating_past_the_header_stops_there() {
        let (mut img, lab, _) = valid();
        img.extend(std::iter::repeat_n(0u8, 1 << 20));
        let e = err(&gzip(&img), &gzip(&lab), 10);
        assert!(
            matches!(&e, DatasetError::Oversized { path, expected: 34, .. } if path.ends_with("images.idx")),
            "{e}"
        );
        assert!(e.to_string().contains("stopped reading"), "{e}");
        // A labels file counting other images than the images file is caught
        // from the two headers.
        let (img, _, _) = valid();
        let mut huge = images_bytes(u32::MAX, u32::MAX, u32::MAX, &[]);
        huge.truncate(16);
        let e = err(&gzip(&huge), &labels_bytes(&[1]), 10);
        assert!(matches!(e, DatasetError::BadHeader { .. }), "{e}");
        let e = err(&gzip(&img), &labels_bytes(&[1]), 10);
        assert!(
            matches!(
                e,
                DatasetError::CountMismatch {
                    image_count: 3,
                    label_count: 1,
                    ..
                }
            ),
            "{e}"
        );
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
