//! Pareto front for "more accuracy for less energy".

/// True if `a` dominates `b`: no more cost, no less value, and strictly better in one of them.
/// Points are `(cost, value)`, e.g. (energy per inference, accuracy).
pub fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 <= b.0 && a.1 >= b.1 && (a.0 < b.0 || a.1 > b.1)
}

/// Indices of the non-dominated points, ordered by increasing cost (ties by decreasing value).
/// Equal points are all kept: none dominates another. Quadratic, which is fine for the tens of
/// methods a run holds, and obviously correct.
pub fn front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len())
        .filter(|&i| !points.iter().any(|&p| dominates(p, points[i])))
        .collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_example() {
        // (energy, accuracy)
        let pts = [
            (1.0, 80.0),
            (2.0, 90.0),
            (3.0, 85.0),
            (0.5, 60.0),
            (2.0, 90.0),
        ];
        assert_eq!(front(&pts), vec![3, 0, 1, 4]);
    }

    proptest! {
        #[test]
        fn front_is_exactly_the_non_dominated_set(
            pts in prop::collection::vec((0u8..20, 0u8..20), 0..40)
        ) {
            // Small integer grids force ties, the hard case.
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(c, v)| (c.into(), v.into())).collect();
            let f = front(&pts);
            for &i in &f {
                prop_assert!(pts.iter().all(|&p| !dominates(p, pts[i])), "front point {i} dominated");
            }
            for i in (0..pts.len()).filter(|i| !f.contains(i)) {
                prop_assert!(f.iter().any(|&j| dominates(pts[j], pts[i])), "off-front point {i} not dominated by the front");
            }
            prop_assert!(f.windows(2).all(|w| pts[w[0]].0 <= pts[w[1]].0));
        }
    }
}
