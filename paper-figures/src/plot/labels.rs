//! Deterministic placement of point labels in pixel space, so labels in dense figures neither
//! overlap each other nor cover a marker.
//!
//! Labels are placed one after another in the caller's order. Each first tries eight spots right
//! next to its point (upper right first); failing those, spots on rings of growing radius around
//! the point, drawn with a leader line back to it. A label with no free spot inside the plotting
//! area is left out (its row is still in every table), never drawn over another.

/// An axis-aligned box in pixels: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBox {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl PixelBox {
    /// The box of a marker of `radius` centred on `at`.
    pub fn around(at: (i32, i32), radius: i32) -> Self {
        Self {
            x: at.0 - radius,
            y: at.1 - radius,
            w: 2 * radius,
            h: 2 * radius,
        }
    }

    /// Whether the two boxes share any area (touching edges do not count).
    pub fn intersects(&self, other: &Self) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }

    /// Whether the box lies wholly inside `outer`.
    pub fn within(&self, outer: &Self) -> bool {
        self.x >= outer.x
            && self.y >= outer.y
            && self.x + self.w <= outer.x + outer.w
            && self.y + self.h <= outer.y + outer.h
    }

    /// The point of the box nearest to `p` (`p` itself when inside): where a leader line ends.
    pub fn nearest(&self, p: (i32, i32)) -> (i32, i32) {
        (
            p.0.clamp(self.x, self.x + self.w),
            p.1.clamp(self.y, self.y + self.h),
        )
    }
}

/// One label to place: its point and the size of its text, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The point the label names (marker centre).
    pub anchor: (i32, i32),
    /// Text width and height.
    pub size: (i32, i32),
}

/// Where a label went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Right next to its point.
    Beside(PixelBox),
    /// Further out, joined to its point by a leader line.
    Leader(PixelBox),
    /// No free room inside the plotting area: not drawn.
    Omitted,
}

impl Placement {
    /// The text's box, if the label is drawn.
    pub fn text_box(&self) -> Option<PixelBox> {
        match self {
            Self::Beside(b) | Self::Leader(b) => Some(*b),
            Self::Omitted => None,
        }
    }
}

/// Rings tried for leader-line labels, each one label height further out.
const RINGS: i32 = 12;
/// Directions tried on each ring (evenly spaced, starting upper right, counter-clockwise).
const DIRECTIONS: i32 = 16;

/// Places every label of `requests`: no placed label box intersects another or any marker box
/// (`marker_radius` around every anchor), and every placed box lies inside `bounds`.
pub fn place(requests: &[Request], marker_radius: i32, bounds: PixelBox) -> Vec<Placement> {
    let mut taken: Vec<PixelBox> = requests
        .iter()
        .map(|r| PixelBox::around(r.anchor, marker_radius))
        .collect();
    let mut out = Vec::with_capacity(requests.len());
    for r in requests {
        let free = |b: &PixelBox| b.within(&bounds) && !taken.iter().any(|t| t.intersects(b));
        let placement = if let Some(b) = beside(r, marker_radius).into_iter().find(free) {
            Placement::Beside(b)
        } else if let Some(b) = rings(r, marker_radius).find(free) {
            Placement::Leader(b)
        } else {
            Placement::Omitted
        };
        if let Some(b) = placement.text_box() {
            taken.push(b);
        }
        out.push(placement);
    }
    out
}

/// The eight spots next to the point, best first: right of it (above, level, below), left of it
/// (above, level, below), then centred above and below.
fn beside(r: &Request, marker_radius: i32) -> [PixelBox; 8] {
    let (ax, ay) = r.anchor;
    let (w, h) = r.size;
    let gap = marker_radius + 4;
    let at = |x, y| PixelBox { x, y, w, h };
    [
        at(ax + gap, ay - h - 2),
        at(ax + gap, ay - h / 2),
        at(ax + gap, ay + 2),
        at(ax - gap - w, ay - h - 2),
        at(ax - gap - w, ay - h / 2),
        at(ax - gap - w, ay + 2),
        at(ax - w / 2, ay - gap - h),
        at(ax - w / 2, ay + gap),
    ]
}

/// Spots centred on rings around the point, nearest ring first.
fn rings(r: &Request, marker_radius: i32) -> impl Iterator<Item = PixelBox> + use<> {
    let (ax, ay) = r.anchor;
    let (w, h) = r.size;
    let step = h.max(1);
    (1..=RINGS).flat_map(move |ring| {
        // The ring clears the label's half-diagonal, so no spot on it touches the point.
        let radius = f64::from(marker_radius + (w.max(h) / 2) + ring * step);
        (0..DIRECTIONS).map(move |k| {
            let angle = std::f64::consts::FRAC_PI_4
                + f64::from(k) * std::f64::consts::TAU / f64::from(DIRECTIONS);
            let cx = ax + (radius * angle.cos()).round() as i32;
            // Pixel y grows downwards: a positive angle points up.
            let cy = ay - (radius * angle.sin()).round() as i32;
            PixelBox {
                x: cx - w / 2,
                y: cy - h / 2,
                w,
                h,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: PixelBox = PixelBox {
        x: 0,
        y: 0,
        w: 1000,
        h: 700,
    };

    /// A deterministic cloud of `n` points in a `spread`-pixel square around the middle.
    fn cloud(n: usize, spread: i32) -> Vec<Request> {
        let mut state: u32 = 12345;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as i32
        };
        (0..n)
            .map(|i| Request {
                anchor: (
                    500 - spread / 2 + next() % spread,
                    350 - spread / 2 + next() % spread,
                ),
                size: (60 + (i as i32 * 37) % 120, 20),
            })
            .collect()
    }

    fn check_no_overlaps(requests: &[Request], placed: &[Placement], radius: i32) {
        let boxes: Vec<PixelBox> = placed.iter().filter_map(Placement::text_box).collect();
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.within(&BOUNDS), "{a:?} leaves the plotting area");
            for b in &boxes[i + 1..] {
                assert!(!a.intersects(b), "{a:?} overlaps {b:?}");
            }
            for r in requests {
                let marker = PixelBox::around(r.anchor, radius);
                assert!(
                    !a.intersects(&marker),
                    "{a:?} covers the marker at {:?}",
                    r.anchor
                );
            }
        }
    }

    #[test]
    fn a_lone_label_sits_upper_right_of_its_point() {
        let r = Request {
            anchor: (100, 100),
            size: (50, 20),
        };
        let placed = place(&[r], 8, BOUNDS);
        assert_eq!(
            placed,
            [Placement::Beside(PixelBox {
                x: 112,
                y: 78,
                w: 50,
                h: 20
            })]
        );
    }

    #[test]
    fn labels_at_the_edge_move_inside() {
        let r = Request {
            anchor: (995, 5),
            size: (80, 20),
        };
        let b = place(&[r], 8, BOUNDS)[0].text_box().expect("placed");
        assert!(b.within(&BOUNDS), "{b:?}");
    }

    #[test]
    fn dense_labels_never_overlap_and_most_are_drawn() {
        let requests = cloud(60, 240);
        let placed = place(&requests, 10, BOUNDS);
        check_no_overlaps(&requests, &placed, 10);
        let leaders = placed
            .iter()
            .filter(|p| matches!(p, Placement::Leader(_)))
            .count();
        let omitted = placed
            .iter()
            .filter(|p| matches!(p, Placement::Omitted))
            .count();
        // So many labels cannot all sit beside their points, yet the area has room for them.
        assert!(leaders > 0, "{placed:?}");
        assert_eq!(omitted, 0, "{placed:?}");
        // Deterministic: the same input gives the same layout.
        assert_eq!(place(&requests, 10, BOUNDS), placed);
    }

    #[test]
    fn identical_points_get_separate_labels() {
        let requests = vec![
            Request {
                anchor: (400, 300),
                size: (90, 20),
            };
            12
        ];
        let placed = place(&requests, 8, BOUNDS);
        check_no_overlaps(&requests, &placed, 8);
        assert!(placed.iter().all(|p| p.text_box().is_some()), "{placed:?}");
    }

    #[test]
    fn without_room_a_label_is_left_out_not_overlapped() {
        let small = PixelBox {
            x: 0,
            y: 0,
            w: 120,
            h: 60,
        };
        let requests = vec![
            Request {
                anchor: (60, 30),
                size: (50, 20),
            };
            6
        ];
        let placed = place(&requests, 6, small);
        let boxes: Vec<PixelBox> = placed.iter().filter_map(Placement::text_box).collect();
        assert!(boxes.len() < requests.len(), "{placed:?}");
        for (i, a) in boxes.iter().enumerate() {
            assert!(a.within(&small));
            assert!(boxes[i + 1..].iter().all(|b| !a.intersects(b)));
        }
    }

    #[test]
    fn a_leader_ends_on_its_box() {
        let b = PixelBox {
            x: 10,
            y: 10,
            w: 20,
            h: 10,
        };
        assert_eq!(b.nearest((0, 0)), (10, 10));
        assert_eq!(b.nearest((15, 50)), (15, 20));
        assert_eq!(b.nearest((15, 15)), (15, 15));
    }
}
