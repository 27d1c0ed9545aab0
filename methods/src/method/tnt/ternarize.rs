//! The TNT cosine-similarity ternarizer (Zhang, Zhu, Zhao et al., arXiv 1912.09236).
//!
//! For a weight vector `w`, the ternary vector `t` in `{-1, 0, +1}^N` closest in angle to `w` puts
//! `sign(w_i)` on the `k` largest magnitudes and 0 elsewhere, for the `k` that maximises
//! `cos(w, t) = (sum of the k largest |w_i|) / (|w| sqrt(k))`. Sorting the magnitudes once and
//! scanning the prefix sums finds `k*` in `O(N log N)`. The scales are then the least-squares ones
//! for that pattern: `alpha+` the mean of the selected positive weights, `alpha-` the mean
//! magnitude of the selected negative ones (or, symmetric, one `alpha` = the mean selected
//! magnitude).

/// The ternary approximation of one weight vector: `w ≈ alpha_pos * [t = +1] - alpha_neg * [t = -1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ternary {
    /// `t`, in the order of the input weights.
    pub codes: Vec<i8>,
    /// Mean of the weights coded +1 (0 if none).
    pub alpha_pos: f64,
    /// Mean magnitude of the weights coded -1 (0 if none).
    pub alpha_neg: f64,
    /// Mean magnitude of all nonzero-coded weights, the least-squares scale of `t` when one scale
    /// serves both signs (0 if `t` is all zero).
    pub alpha: f64,
}

impl Ternary {
    /// Number of nonzero codes (`k*`).
    pub fn nonzeros(&self) -> usize {
        self.codes.iter().filter(|&&c| c != 0).count()
    }
}

/// Ternarizes `w` by maximal cosine similarity. Magnitude ties are broken by position (stable
/// order) and score ties by the smaller `k`, so the result is deterministic; a zero weight is never
/// selected (it cannot raise the score), and an all-zero vector gives all-zero codes.
pub fn ternarize(w: &[f32]) -> Ternary {
    let mag = |i: usize| f64::from(w[i]).abs();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.sort_by(|&a, &b| mag(b).total_cmp(&mag(a)).then(a.cmp(&b)));
    let (mut best_k, mut best_score, mut prefix) = (0, 0.0f64, 0.0f64);
    for (i, &j) in order.iter().enumerate() {
        prefix += mag(j);
        let score = prefix / ((i + 1) as f64).sqrt();
        if score > best_score {
            (best_k, best_score) = (i + 1, score);
        }
    }
    let mut codes = vec![0i8; w.len()];
    let (mut sum_pos, mut n_pos, mut sum_neg, mut n_neg) = (0.0, 0usize, 0.0, 0usize);
    for &j in &order[..best_k] {
        let v = f64::from(w[j]);
        if v > 0.0 {
            codes[j] = 1;
            (sum_pos, n_pos) = (sum_pos + v, n_pos + 1);
        } else {
            codes[j] = -1;
            (sum_neg, n_neg) = (sum_neg - v, n_neg + 1);
        }
    }
    let mean = |s: f64, n: usize| if n == 0 { 0.0 } else { s / n as f64 };
    Ternary {
        codes,
        alpha_pos: mean(sum_pos, n_pos),
        alpha_neg: mean(sum_neg, n_neg),
        alpha: mean(sum_pos + sum_neg, n_pos + n_neg),
    }
}

/// Cosine similarity of `w` and the codes `t` (0 when either is all zero).
pub fn cosine(w: &[f32], t: &[i8]) -> f64 {
    let (mut dot, mut ww, mut tt) = (0.0, 0.0, 0.0);
    for (&a, &b) in w.iter().zip(t) {
        let (a, b) = (f64::from(a), f64::from(b));
        (dot, ww, tt) = (dot + a * b, ww + a * a, tt + b * b);
    }
    if ww == 0.0 || tt == 0.0 {
        0.0
    } else {
        dot / (ww.sqrt() * tt.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_large_weights_and_their_signs() {
        let t = ternarize(&[0.9, -0.05, -1.0, 0.02, 0.8]);
        assert_eq!(t.codes, vec![1, 0, -1, 0, 1]);
        assert!((t.alpha_pos - 0.85).abs() < 1e-7);
        assert!((t.alpha_neg - 1.0).abs() < 1e-7);
        assert!((t.alpha - 2.7 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn zeros_are_never_selected_and_all_zero_stays_zero() {
        let t = ternarize(&[0.0, 0.0, 0.0]);
        assert_eq!(
            (t.codes, t.alpha_pos, t.alpha_neg),
            (vec![0, 0, 0], 0.0, 0.0)
        );
        let t = ternarize(&[0.0, 0.5, 0.0, 0.5]);
        assert_eq!(t.codes, vec![0, 1, 0, 1]);
        assert_eq!(ternarize(&[]).codes, Vec::<i8>::new());
    }

    #[test]
    fn equal_magnitudes_are_all_selected() {
        assert_eq!(ternarize(&[-0.3, 0.3, 0.3, -0.3]).codes, vec![-1, 1, 1, -1]);
    }
}
