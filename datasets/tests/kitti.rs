//! KITTI object sets end to end: the generated set (`kitti-synth`) written, laid out, loaded
//! and re-parsed; its determinism and the label fields the evaluation depends on.

use std::path::Path;
use std::time::Instant;

use qbench_datasets::kitti::{
    self, EVAL_CLASSES, MAX_BACKGROUND, Object, ObjectType, SYNTH_HEIGHT, SYNTH_WIDTH,
};
use qbench_datasets::{
    DatasetError, FileStatus, Format, ImageSet, Normalization, Registry, Split, fetch, load_from,
    locate_in, verify_in,
};

/// A stand-in for Fashion-MNIST: 28 x 28 items of all ten classes, each a bright textured
/// shape whose size depends on the class (so tight boxes differ), on black.
fn fake_source() -> ImageSet {
    let (n_per, side) = (4usize, 28usize);
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for class in 0..10u16 {
        for k in 0..n_per {
            let c = usize::from(class);
            let (w, h) = (8 + (c * 5 + k * 3) % 18, 10 + (c * 7 + k) % 17);
            let (x0, y0) = ((side - w) / 2, (side - h) / 2);
            for y in 0..side {
                for x in 0..side {
                    let inside = (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y);
                    images.push(if inside {
                        150 + ((x * 7 + y * 13 + k * 31) % 100) as u8
                    } else {
                        0
                    });
                }
            }
            labels.push(class);
        }
    }
    ImageSet {
        images,
        labels,
        channels: 1,
        height: side,
        width: side,
        num_classes: 10,
        normalization: Normalization::identity(1),
        boxes: Vec::new(),
    }
}

/// The easiest KITTI difficulty level of an object (0 easy, 1 moderate, 2 hard, 3 none).
fn level(o: &Object) -> usize {
    let (h, occ, tr) = (o.height(), o.occluded, o.truncated);
    if h >= 40.0 && occ <= 0 && tr <= 0.15 {
        0
    } else if h >= 25.0 && occ <= 1 && tr <= 0.3 {
        1
    } else if h >= 25.0 && occ <= 2 && tr <= 0.5 {
        2
    } else {
        3
    }
}

fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in [kitti::IMAGE_DIR, kitti::LABEL_DIR] {
        let d = dir.join(kitti::TRAINING_DIR).join(sub);
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for n in names {
            let bytes = std::fs::read(d.join(&n)).unwrap();
            out.push((format!("{sub}/{n}"), bytes));
        }
    }
    out
}

#[test]
fn generated_set_loads_with_boxes_on_items() {
    let out = tempfile::tempdir().unwrap();
    let summary = kitti::generate(&fake_source(), out.path(), 12, 7, &|_| {}).unwrap();
    assert_eq!(summary.images, 12);
    // Nothing but the finished set is left in the output folder.
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("training")]);
    let ids = kitti::image_ids(out.path()).unwrap();
    assert_eq!(ids.len(), 12);
    assert_eq!(ids[0], "000000");
    let img = image::open(kitti::image_path(&out.path().join("training"), &ids[3])).unwrap();
    assert_eq!((img.width(), img.height()), (SYNTH_WIDTH, SYNTH_HEIGHT));
    assert!(matches!(img, image::DynamicImage::ImageLuma8(_)));

    // Half size: an exact 2x reduction, no padding.
    let set = kitti::load(out.path(), &ids, [1, 64, 192], &|_| {}).unwrap();
    assert!(set.images.check().is_ok());
    assert_eq!(set.images.boxes.len(), 12);
    assert_eq!((set.letterbox[0].scale, set.letterbox[0].pad_x), (0.5, 0.0));
    let mut boxes = 0;
    for (i, objects) in set.objects.iter().enumerate() {
        let evaluated: Vec<&Object> = objects
            .iter()
            .filter(|o| EVAL_CLASSES.contains(&o.kind))
            .collect();
        let objects_boxes: Vec<_> = set.images.boxes[i]
            .iter()
            .filter(|b| !b.is_ignore())
            .collect();
        assert_eq!(evaluated.len(), objects_boxes.len());
        let pixels = set.images.image(i);
        for (o, b) in evaluated.iter().zip(objects_boxes) {
            assert_eq!(EVAL_CLASSES[usize::from(b.class)], o.kind);
            assert!((b.x0 - o.bbox[0] / 2.0).abs() < 1e-4 && (b.y1 - o.bbox[3] / 2.0).abs() < 1e-4);
            // Some pixel inside the box is brighter than any background pixel can be.
            let brightest = (b.y0 as usize..b.y1.ceil() as usize)
                .flat_map(|y| (b.x0 as usize..b.x1.ceil() as usize).map(move |x| (x, y)))
                .map(|(x, y)| pixels[y * 192 + x])
                .max()
                .unwrap();
            assert!(
                brightest > MAX_BACKGROUND + 20,
                "image {i} box {b:?}: {brightest}"
            );
            boxes += 1;
        }
        // Every label line re-parses to what the loader holds.
        let text =
            std::fs::read_to_string(kitti::label_path(&out.path().join("training"), &ids[i]))
                .unwrap();
        assert_eq!(
            &kitti::parse_labels(&text, Path::new("x")).unwrap(),
            objects
        );
        assert!(text.lines().all(|l| l.split_whitespace().count() == 15));
    }
    assert!(boxes >= 12, "{boxes} boxes");
}

#[test]
fn generator_is_deterministic() {
    let src = fake_source();
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sa = kitti::generate(&src, a.path(), 8, 42, &|_| {}).unwrap();
    let sb = kitti::generate(&src, b.path(), 8, 42, &|_| {}).unwrap();
    assert_eq!(sa, sb);
    let files = all_files(a.path());
    assert_eq!(files.len(), 16);
    assert!(files == all_files(b.path()), "same seed, different bytes");
    kitti::generate(&src, c.path(), 8, 43, &|_| {}).unwrap();
    assert!(files != all_files(c.path()));
    // On one thread: the same bytes.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    one.install(|| kitti::generate(&src, c.path(), 8, 42, &|_| {}))
        .unwrap();
    assert!(files == all_files(c.path()));
    // A rerun replaces the set in place: the same bytes, no leftovers.
    kitti::generate(&src, a.path(), 8, 42, &|_| {}).unwrap();
    assert!(files == all_files(a.path()));
    assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 1);
}

#[test]
fn generated_labels_exercise_truncation_occlusion_and_every_difficulty() {
    let out = tempfile::tempdir().unwrap();
    let count = 48;
    let s = kitti::generate(&fake_source(), out.path(), count, 1, &|_| {}).unwrap();
    let split = out.path().join("training");
    let mut levels = [0usize; 4];
    let (mut truncated, mut occluded, mut kinds) = (0, [0usize; 3], Vec::new());
    for id in kitti::image_ids(out.path()).unwrap() {
        for o in kitti::read_labels(&kitti::label_path(&split, &id)).unwrap() {
            kinds.push(o.kind);
            if o.kind == ObjectType::DontCare {
                assert_eq!((o.truncated, o.occluded, o.alpha), (-1.0, -1, -10.0));
                assert_eq!((o.location, o.rotation_y), ([-1000.0; 3], -10.0));
                continue;
            }
            assert!((0.0..=1.0).contains(&o.truncated) && (0..=2).contains(&o.occluded));
            assert!(o.bbox[0] >= 0.0 && o.bbox[2] <= SYNTH_WIDTH as f32 && o.bbox[3] <= 128.0);
            assert!(
                o.dimensions
                    .iter()
                    .chain(&o.location)
                    .all(|v| v.is_finite())
            );
            truncated += usize::from(o.truncated > 0.0);
            occluded[o.occluded as usize] += 1;
            if EVAL_CLASSES.contains(&o.kind) {
                levels[level(&o)] += 1;
            }
        }
    }
    assert_eq!(
        levels, s.difficulty,
        "the summary counts what the files say"
    );
    assert_eq!((truncated, occluded), (s.truncated, s.occluded));
    assert!(levels[..3].iter().all(|&n| n > 0), "{levels:?}");
    assert!(
        truncated > 0 && occluded[1] > 0 && occluded[2] > 0,
        "{occluded:?}"
    );
    for k in [
        ObjectType::Van,
        ObjectType::PersonSitting,
        ObjectType::Misc,
        ObjectType::DontCare,
    ] {
        assert!(kinds.contains(&k), "no {k:?} in {count} images");
    }
}

#[test]
fn generator_rejects_a_source_without_a_needed_class() {
    let mut src = fake_source();
    for l in &mut src.labels {
        if *l == 8 {
            *l = 0;
        }
    }
    let out = tempfile::tempdir().unwrap();
    let e = kitti::generate(&src, out.path(), 2, 0, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("class 8 (Bag)"), "{e}");
    let e = kitti::generate(&fake_source(), out.path(), 0, 0, &|_| {}).unwrap_err();
    assert!(e.to_string().contains("0 images"), "{e}");
}

#[test]
fn registry_entries_locate_verify_and_load_a_kitti_folder() {
    let reg = Registry::embedded();
    let synth = reg.get("kitti-synth").unwrap();
    assert_eq!(
        (synth.format, synth.image_shape),
        (Format::Kitti, [1, 64, 192])
    );
    let real = reg.get("kitti").unwrap();
    assert_eq!(
        (real.format, real.image_shape),
        (Format::Kitti, [3, 96, 320])
    );
    assert!(
        real.files
            .iter()
            .all(|f| f.sha256.is_none() && f.url.is_some())
    );

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("kitti-synth");
    kitti::generate(&fake_source(), &dir, 12, 3, &|_| {}).unwrap();
    assert_eq!(locate_in(synth, Some(root.path())).unwrap(), dir);
    assert!(verify_in(synth, &dir).unwrap().is_empty());
    let set = load_from(synth, &dir, Split::Train).unwrap();
    assert_eq!(
        (set.len(), set.channels, set.height, set.width),
        (12, 1, 64, 192)
    );
    assert_eq!((set.num_classes, set.boxes.len()), (3, 12));
    assert!(set.boxes.iter().any(|b| !b.is_empty()));

    // The kitti entry's zip archives are listed only while present; its count is enforced.
    let mut real = real.clone();
    let e = verify_in(&real, &dir).unwrap_err();
    assert!(
        e.to_string().contains("number of images: expected 7481"),
        "{e}"
    );
    real.splits.train.as_mut().unwrap().count = None;
    assert!(verify_in(&real, &dir).unwrap().is_empty());
    std::fs::write(dir.join("data_object_label_2.zip"), b"zip").unwrap();
    let checks = verify_in(&real, &dir).unwrap();
    assert_eq!(checks.len(), 1);
    assert!(matches!(
        checks[0].status,
        FileStatus::NoPublishedChecksum { .. }
    ));

    // A label file gone: verify and load name its image.
    let split = dir.join("training");
    std::fs::remove_file(kitti::label_path(&split, "000005")).unwrap();
    for e in [
        verify_in(synth, &dir).unwrap_err(),
        load_from(synth, &dir, Split::Train).unwrap_err(),
    ] {
        assert!(
            e.to_string()
                .contains("image_2/000005.png has no label file"),
            "{e}"
        );
    }
    // The label folder gone: the user's folder is rejected, naming it.
    std::fs::remove_dir_all(split.join(kitti::LABEL_DIR)).unwrap();
    let e = locate_in(synth, Some(root.path())).unwrap_err();
    assert!(matches!(e, DatasetError::BadFolder { .. }), "{e}");
    assert!(
        e.to_string().contains("`training/label_2` is missing"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("or install it: qbench data generate kitti-synth"),
        "{e}"
    );
}

#[test]
fn real_kitti_cannot_be_fetched_and_says_how_to_install_it() {
    let entry = Registry::embedded().get("kitti").unwrap();
    let dest = tempfile::tempdir().unwrap();
    let e = fetch(entry, &dest.path().join("kitti"), &|_, _| {}).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DatasetError::Fetch { .. }), "{msg}");
    for needle in [
        "zip archive",
        "https://s3.eu-central-1.amazonaws.com/avg-kitti/data_object_image_2.zip",
        "unzip -o",
        "cvlibs.net",
        "training/image_2",
        "no published checksum",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0);
    // A missing folder's hint is the manual installation, not `qbench data fetch`.
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("kitti")).unwrap();
    let msg = locate_in(entry, Some(root.path())).unwrap_err().to_string();
    assert!(
        msg.contains("install it: no automatic download") && !msg.contains("data fetch"),
        "{msg}"
    );
}

/// Through whichever label parser the crate has: an error names the file and the line.
#[test]
fn malformed_label_file_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000042.txt");
    for (text, line) in [
        (
            "Car 0.00 0 1.5 1 2 3 4 1.5 1.6 3.9 1 1 1 0\nCar 0.00 0 1.5 1 2 x 4 1.5 1.6 3.9 1 1 1 0\n",
            2,
        ),
        (
            "Car 0 0 0 1 2 3 4 1 1 1 1 1 1 0\n\nTruck 0 0 0 1 2 3 4\n",
            3,
        ),
        ("Bus 0 0 0 1 2 3 4 1 1 1 1 1 1 0\n", 1),
    ] {
        std::fs::write(&path, text).unwrap();
        let msg = kitti::read_labels(&path).unwrap_err().to_string();
        assert!(msg.contains("000042.txt"), "{msg}");
        assert!(
            msg.contains(&format!(":{line}")) || msg.contains(&format!("line {line}")),
            "line {line}: {msg}"
        );
    }
    let ok = kitti::parse_labels(
        "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n",
        &path,
    )
    .unwrap();
    assert_eq!(ok[0].kind, ObjectType::Pedestrian);
    assert_eq!(ok[0].bbox, [712.40, 143.00, 810.73, 307.92]);
}

/// The generator's statistics over 1000 images and its speed over 4000, on the real
/// Fashion-MNIST training images (skipped when they are not installed). Run with
/// `cargo test -p qbench-datasets --test kitti -- --ignored --nocapture`.
#[test]
#[ignore = "needs Fashion-MNIST; prints statistics and timings"]
fn synth_statistics_and_speed_on_fashion_mnist() {
    let Ok(source) = qbench_datasets::load("fashion-mnist", Split::Train) else {
        eprintln!("Fashion-MNIST not found; skipped");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let s = kitti::generate(&source, out.path(), 1000, 0, &|_| {}).unwrap();
    let eval: usize = s.difficulty.iter().sum();
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d as f64;
    eprintln!("1000 images: {s:?}");
    eprintln!(
        "evaluated objects {eval}: easy {:.1} %, moderate {:.1} %, hard {:.1} %, none {:.1} %; \
         heights >= 40: {:.1} %, 25..40: {:.1} %, < 25: {:.1} %",
        pct(s.difficulty[0], eval),
        pct(s.difficulty[1], eval),
        pct(s.difficulty[2], eval),
        pct(s.difficulty[3], eval),
        pct(s.heights[0], eval),
        pct(s.heights[1], eval),
        pct(s.heights[2], eval),
    );
    let start = Instant::now();
    let s = kitti::generate(&source, out.path(), 4000, 0, &|_| {}).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let bytes: u64 = all_files(out.path()).iter().map(|f| f.1.len() as u64).sum();
    eprintln!(
        "4000 images in {secs:.1} s ({} threads), {:.1} MB; per type {:?}",
        rayon::current_num_threads(),
        bytes as f64 / 1e6,
        s.per_type
    );
    let entry = Registry::embedded().get("kitti-synth").unwrap();
    let start = Instant::now();
    let set = qbench_datasets::load_from(entry, out.path(), Split::Train).unwrap();
    eprintln!(
        "loaded and letterboxed to [1, 64, 192] in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(set.len(), 4000);
}
