//! Accuracy against quantization operations per inference (log scale): the paper's hypothesis
//! that fewer quantization operations lose less. A method's structural variants (e.g. DJQ's unified
//! modules and its per-operation ablation) get one marker each, and rows that differ only in the
//! variant are joined by a grey line.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::scatter::{self, Dot, Frame, Marker};
use super::{DrawResult, Figure, de};
use crate::input::{FigureInput, MethodRow};

/// The accuracy-vs-quantization-operations figure.
#[derive(Debug, Clone)]
pub struct AccuracyVsQuantOps {
    rows: Vec<MethodRow>,
    families: Vec<String>,
    /// Every variant named by a row, in order of first appearance (the marker order).
    variants: Vec<String>,
    dataset: String,
    metric: crate::input::Metric,
    skipped: Vec<String>,
}

impl AccuracyVsQuantOps {
    /// Builds the figure; rows with zero quantization operations cannot sit on a log axis.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let skipped: Vec<String> = input
            .methods
            .iter()
            .filter(|m| m.quant_ops == 0)
            .map(|m| format!("{} (0 quantization operations, log axis)", m.label))
            .collect();
        let rows: Vec<MethodRow> = input
            .methods
            .iter()
            .filter(|m| m.quant_ops > 0)
            .cloned()
            .collect();
        if rows.is_empty() {
            return (None, skipped);
        }
        let mut variants: Vec<String> = Vec::new();
        for v in rows.iter().filter_map(|r| r.variant.as_ref()) {
            if !variants.contains(v) {
                variants.push(v.clone());
            }
        }
        let fig = Self {
            rows,
            variants,
            families: super::families(input),
            dataset: input.dataset.clone(),
            metric: input.metric,
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }

    /// Pairs of rows of the same family, model, bit widths and tuning in two different variants
    /// (the earlier variant first).
    pub fn pairs(&self) -> Vec<(&MethodRow, &MethodRow)> {
        let same = |a: &MethodRow, b: &MethodRow| {
            a.method == b.method
                && a.model == b.model
                && a.weight_bits == b.weight_bits
                && a.activation_bits == b.activation_bits
                && a.finetuned == b.finetuned
        };
        let mut out = Vec::new();
        let rank = |r: &MethodRow| {
            r.variant
                .as_ref()
                .and_then(|v| self.variants.iter().position(|x| x == v))
        };
        for a in &self.rows {
            for b in &self.rows {
                if let (Some(i), Some(j)) = (rank(a), rank(b))
                    && i < j
                    && same(a, b)
                {
                    out.push((a, b));
                }
            }
        }
        out
    }

    /// The marker of a variant: circle for the first variant named, triangle for the second,
    /// ring for any later one, cross where the method has no variants.
    fn marker(&self, variant: Option<&String>) -> Marker {
        match variant.and_then(|v| self.variants.iter().position(|x| x == v)) {
            Some(0) => Marker::Disc(9),
            Some(1) => Marker::Triangle(11),
            Some(_) => Marker::Ring(9),
            None => Marker::Cross(8),
        }
    }

    /// The markers in words, for the title.
    fn marker_key(&self) -> String {
        let shapes = ["circle", "triangle"];
        let mut key: Vec<String> = self
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{} = {v}", shapes.get(i).unwrap_or(&"ring")))
            .collect();
        key.push("cross = no variants".to_string());
        key.join(", ")
    }

    /// A row as drawn.
    fn dot<'r>(&self, r: &'r MethodRow) -> Dot<'r> {
        Dot {
            at: (r.quant_ops as f64, r.accuracy_mean),
            label: &r.label,
            marker: self.marker(r.variant.as_ref()),
            colour: super::family_colour(&self.families, &r.method),
        }
    }
}

impl Figure for AccuracyVsQuantOps {
    fn stem(&self) -> &'static str {
        "accuracy_vs_quant_ops"
    }

    fn title(&self) -> String {
        format!(
            "{} ({}, integer engine) vs quantization operations per inference (log scale); \
             {}",
            self.metric.short(),
            self.dataset,
            self.marker_key()
        )
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let area = super::with_footer(root, &self.skipped)?;
        let at = |r: &MethodRow| (r.quant_ops as f64, r.accuracy_mean);
        let coords: Vec<(f64, f64)> = self.rows.iter().map(at).collect();
        let caption = format!(
            "{} vs quantization operations ({})",
            self.metric.short(),
            self.dataset
        );
        let frame = Frame {
            caption: &caption,
            x_desc: "Quantization operations per inference (count, log scale)",
            y_desc: self.metric.axis(),
        };
        let mut chart = scatter::chart(&area, &frame, &coords)?;
        for (u, n) in self.pairs() {
            chart
                .draw_series(LineSeries::new(
                    [at(u), at(n)],
                    BLACK.mix(0.4).stroke_width(2),
                ))
                .map_err(de)?;
        }
        let dot = |r| self.dot(r);
        for family in &self.families {
            let c = super::family_colour(&self.families, family);
            let variants = self.variants.iter().map(Some).chain([None]);
            for variant in variants {
                let dots: Vec<Dot> = self
                    .rows
                    .iter()
                    .filter(|r| &r.method == family && r.variant.as_ref() == variant)
                    .map(dot)
                    .collect();
                if dots.is_empty() {
                    continue;
                }
                let name = match variant {
                    Some(v) => format!("{family}, {v}"),
                    None => family.clone(),
                };
                scatter::draw_series(&mut chart, &name, &dots, self.marker(variant), c)?;
            }
        }
        let dots: Vec<Dot> = self.rows.iter().map(dot).collect();
        scatter::draw_labels(&mut chart, &dots)?;
        super::draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(label: &str, method: &str, bits: u32, variant: Option<&str>) -> MethodRow {
        MethodRow {
            label: label.into(),
            method: method.into(),
            model: "m".into(),
            weight_bits: bits,
            activation_bits: bits,
            variant: variant.map(str::to_string),
            finetuned: false,
            seeds: 1,
            float_accuracy: None,
            accuracy_mean: 80.0,
            accuracy_std: 0.0,
            fake_accuracy: 80.0,
            agreement: 1.0,
            quant_ops: 100,
            weight_bits_total: 1,
            energy_per_inference_nj: None,
            energy_breakdown_nj: Default::default(),
            area_um2: None,
            runtime_agreement: None,
            runtime_max_logit_diff: None,
        }
    }

    #[test]
    fn rows_of_one_method_that_differ_only_in_their_variant_are_paired() {
        let input = FigureInput {
            methods: vec![
                row("X fused 4", "x", 4, Some("fused")),
                row("X split 4", "x", 4, Some("split")),
                row("X split 8", "x", 8, Some("split")),
                row("Y 4", "y", 4, None),
                row("Z split 4", "z", 4, Some("split")),
            ],
            run_id: "r".into(),
            title: "t".into(),
            dataset: "d".into(),
            metric: Default::default(),
            hw_units: Vec::new(),
            layer_energy: None,
            claims: Vec::new(),
            provenance: Default::default(),
            energy_note: None,
        };
        let (fig, _) = AccuracyVsQuantOps::new(&input);
        let fig = fig.unwrap();
        let pairs: Vec<(&str, &str)> = fig
            .pairs()
            .into_iter()
            .map(|(a, b)| (a.label.as_str(), b.label.as_str()))
            .collect();
        assert_eq!(pairs, [("X fused 4", "X split 4")]);
        assert_eq!(fig.marker(Some(&"fused".to_string())), Marker::Disc(9));
        assert_eq!(fig.marker(Some(&"split".to_string())), Marker::Triangle(11));
        assert_eq!(fig.marker(None), Marker::Cross(8));
        assert!(
            fig.title()
                .ends_with("circle = fused, triangle = split, cross = no variants")
        );
    }
}
