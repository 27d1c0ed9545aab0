//! `fetch` against a tiny HTTP server on 127.0.0.1 started by the test:
//! a good download lands under its final name, a bad mirror is skipped,
//! a checksum mismatch leaves nothing behind, and the result loads.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use flate2::{Compression, write::GzEncoder};
use qbench_datasets::{DatasetError, Registry, Split, fetch, load_from, verify_in};
use qbench_io::sha256_hex;

/// Serves `routes` (path -> body; any other path is 404) for at most
/// `max_requests` connections, then stops. Returns the base URL.
fn serve(routes: Vec<(&'static str, Vec<u8>)>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            let response = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Two 2x2 images labelled 1 and 0, as gzipped IDX files.
fn idx_files() -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    images.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 0];
    (gzip(&images), gzip(&labels))
}

fn registry(base: &str, images_sha: &str, labels_sha: &str, sizes: (usize, usize)) -> Registry {
    Registry::from_yaml_str(&format!(
        "\
datasets:
  - name: tiny
    description: two images
    format: idx
    num_classes: 2
    image_shape: [1, 2, 2]
    licence: test data
    files:
      - role: train-images
        name: i.gz
        url: {base}/missing/i.gz
        mirrors: [{base}/i.gz]
        sha256: {images_sha}
        size: {}
      - role: train-labels
        name: l.gz
        url: {base}/l.gz
        sha256: {labels_sha}
        size: {}
    splits:
      train: {{images: i.gz, labels: l.gz, count: 2}}
",
        sizes.0, sizes.1
    ))
    .unwrap()
}

#[test]
fn download_verifies_and_lands_atomically() {
    let (images, labels) = idx_files();
    let total = (images.len() + labels.len()) as u64;
    let base = serve(
        vec![("/i.gz", images.clone()), ("/l.gz", labels.clone())],
        3,
    );
    let reg = registry(
        &base,
        &sha256_hex(&images),
        &sha256_hex(&labels),
        (images.len(), labels.len()),
    );
    let entry = reg.get("tiny").unwrap();
    let dest = tempfile::tempdir().unwrap();
    let last = std::cell::Cell::new((0, None));
    let checks = fetch(entry, dest.path(), &|d, t| last.set((d, t))).unwrap();
    assert!(checks.iter().all(|c| c.is_ok()), "{checks:?}");
    assert_eq!(last.get(), (total, Some(total)));
    assert_eq!(std::fs::read(dest.path().join("i.gz")).unwrap(), images);
    let mut names: Vec<String> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["i.gz", "l.gz"]);
    assert!(
        verify_in(entry, dest.path())
            .unwrap()
            .iter()
            .all(|c| c.is_ok())
    );
    let set = load_from(entry, dest.path(), Split::Train).unwrap();
    assert_eq!(set.labels, vec![1, 0]);
    assert_eq!(set.image(1), &[5, 6, 7, 8]);
}

#[test]
fn checksum_mismatch_leaves_no_file() {
    let (images, labels) = idx_files();
    let base = serve(
        vec![("/i.gz", images.clone()), ("/l.gz", labels.clone())],
        4,
    );
    let wrong = sha256_hex(b"something else");
    let reg = registry(
        &base,
        &wrong,
        &sha256_hex(&labels),
        (images.len(), labels.len()),
    );
    let dest = tempfile::tempdir().unwrap();
    let e = fetch(reg.get("tiny").unwrap(), dest.path(), &|_, _| {}).unwrap_err();
    assert!(matches!(e, DatasetError::Fetch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("sha256 mismatch") && msg.contains(&wrong),
        "{msg}"
    );
    assert!(
        msg.contains("404"),
        "the failing first address is reported too: {msg}"
    );
    assert!(msg.contains("To install `tiny` by hand"), "{msg}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
}
