//! KITTI's 2D object detection benchmark: the label format, the folder layout, the official
//! evaluation, and a generated set in the same format.

mod object;

pub use object::{EVAL_CLASSES, Object, ObjectType};

pub mod eval;
mod label;
mod layout;
mod letterbox;
mod load;
mod synth;

pub use label::{format_result_line, parse_labels, read_labels, write_results};
pub use layout::{
    IMAGE_DIR, LABEL_DIR, TRAINING_DIR, image_ids, image_ids_in, image_path, is_id, label_path,
    read_split_file, split_ids,
};
pub use letterbox::{Letterbox, PAD_VALUE, read_letterboxed};
pub use load::{KittiSet, MAX_LOAD_BYTES, load, load_split_dir};
pub use synth::{
    FOCAL_PX, ITEM_THRESHOLD, MAX_BACKGROUND, MAX_IMAGES, SYNTH_HEIGHT, SYNTH_WIDTH, SynthSummary,
    generate,
};
