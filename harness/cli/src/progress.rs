//! Progress bars for long work, and the Ctrl-C flag that stops it cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use qbench_methods::train::TrainObserver;

/// A byte-count bar for downloads.
pub fn bytes_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// A counting bar with a label, for images or cells.
pub fn count_bar(label: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:<24} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar
}

/// Prints a line above `multi`'s bars, or plainly to stderr when the bars are hidden (stderr is
/// not a terminal, as in logs and CI), where indicatif would drop it.
pub fn say(multi: &MultiProgress, line: &str) {
    if multi.is_hidden() {
        eprintln!("{line}");
    } else {
        let _ = multi.println(line);
    }
}

/// Set once by Ctrl-C; long loops poll it and stop at a safe point.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        // If a handler cannot be installed, Ctrl-C simply kills the process: checkpoints are
        // written atomically, so nothing already saved is lost either way.
        let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
        flag
    })
    .clone()
}

/// Draws one bar per training epoch with the running loss and accuracy.
pub struct TrainBars {
    bar: Option<ProgressBar>,
    multi: Option<MultiProgress>,
    label: String,
    epochs: usize,
    stop: Arc<AtomicBool>,
    loss_ema: f32,
}

impl TrainBars {
    /// Bars for a run of `epochs` epochs (0 when the caller does not know).
    pub fn new(epochs: usize) -> Self {
        TrainBars {
            bar: None,
            multi: None,
            label: String::new(),
            epochs,
            stop: interrupt_flag(),
            loss_ema: f32::NAN,
        }
    }

    /// Bars drawn inside `multi` (several cells training at once), each line prefixed by `label`.
    pub fn in_multi(multi: &MultiProgress, label: &str, epochs: usize) -> Self {
        TrainBars {
            multi: Some(multi.clone()),
            label: format!("{label}: "),
            ..TrainBars::new(epochs)
        }
    }
}

impl TrainBars {
    fn epoch_label(&self, epoch: usize) -> String {
        if self.epochs > 0 {
            format!("{}/{}", epoch + 1, self.epochs)
        } else {
            format!("{}", epoch + 1)
        }
    }
}

impl TrainObserver for TrainBars {
    fn epoch_start(&mut self, epoch: usize, batches: usize) {
        let mut bar = ProgressBar::new(batches as u64);
        if let Some(multi) = &self.multi {
            bar = multi.add(bar);
        }
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{}epoch {{prefix}} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}",
                self.label
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(self.epoch_label(epoch));
        self.bar = Some(bar);
        self.loss_ema = f32::NAN;
    }

    fn batch_end(&mut self, _epoch: usize, _batch: usize, loss: f32, running_accuracy: f64) {
        self.loss_ema = if self.loss_ema.is_nan() {
            loss
        } else {
            0.95 * self.loss_ema + 0.05 * loss
        };
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "loss {:.4} acc {:.2}%",
                self.loss_ema,
                100.0 * running_accuracy
            ));
            bar.inc(1);
        }
    }

    fn epoch_end(&mut self, epoch: usize, val_accuracy: Option<f64>) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let val = val_accuracy
            .map(|a| format!(", validation accuracy {:.2}%", 100.0 * a))
            .unwrap_or_default();
        let line = format!(
            "{}epoch {}: train loss {:.4}{val}",
            self.label,
            self.epoch_label(epoch),
            self.loss_ema
        );
        match &self.multi {
            Some(multi) => say(multi, &line),
            None => eprintln!("{line}"),
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}
