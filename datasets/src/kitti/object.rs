//! One object of KITTI's 2D/3D object benchmark, as a line of a `label_2` file (or of a result
//! file, which adds a score) describes it.

/// The object types KITTI labels (the first field of a label line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// `Car`.
    Car,
    /// `Van`: ignored (neither a miss nor a false positive) when evaluating `Car`.
    Van,
    /// `Truck`.
    Truck,
    /// `Pedestrian`.
    Pedestrian,
    /// `Person_sitting`: ignored when evaluating `Pedestrian`.
    PersonSitting,
    /// `Cyclist`.
    Cyclist,
    /// `Tram`.
    Tram,
    /// `Misc`.
    Misc,
    /// `DontCare`: a region where objects were not labelled; detections in it are ignored.
    DontCare,
}

impl ObjectType {
    /// Every type, in the order above.
    pub const ALL: [ObjectType; 9] = [
        ObjectType::Car,
        ObjectType::Van,
        ObjectType::Truck,
        ObjectType::Pedestrian,
        ObjectType::PersonSitting,
        ObjectType::Cyclist,
        ObjectType::Tram,
        ObjectType::Misc,
        ObjectType::DontCare,
    ];

    /// The type's name as label files spell it.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Car => "Car",
            ObjectType::Van => "Van",
            ObjectType::Truck => "Truck",
            ObjectType::Pedestrian => "Pedestrian",
            ObjectType::PersonSitting => "Person_sitting",
            ObjectType::Cyclist => "Cyclist",
            ObjectType::Tram => "Tram",
            ObjectType::Misc => "Misc",
            ObjectType::DontCare => "DontCare",
        }
    }

    /// The type a label file's name spells, if any.
    pub fn from_name(name: &str) -> Option<ObjectType> {
        ObjectType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The three classes the benchmark evaluates, in this order everywhere (class index 0, 1, 2 of a
/// detector's outputs and of [`crate::GtBox::class`]).
pub const EVAL_CLASSES: [ObjectType; 3] =
    [ObjectType::Car, ObjectType::Pedestrian, ObjectType::Cyclist];

/// One labelled object (or one detection, in a result file), every field of the label format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    /// Object type.
    pub kind: ObjectType,
    /// Truncation: 0 (fully inside the image) to 1 (leaving it); -1 for `DontCare`.
    pub truncated: f32,
    /// Occlusion: 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown; -1 for
    /// `DontCare`.
    pub occluded: i8,
    /// Observation angle, -pi..pi.
    pub alpha: f32,
    /// 2D box in image pixels: left, top, right, bottom.
    pub bbox: [f32; 4],
    /// 3D size in metres: height, width, length.
    pub dimensions: [f32; 3],
    /// 3D centre of the bottom face in camera coordinates (metres): x, y, z.
    pub location: [f32; 3],
    /// Rotation about the camera's Y axis, -pi..pi.
    pub rotation_y: f32,
    /// Detection confidence (result files only; higher is more confident).
    pub score: Option<f32>,
}

impl Object {
    /// Height of the 2D box in pixels (the difficulty levels' size criterion).
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
}
