//! Console progress: a bar over the jobs, a Keras-style bar over each epoch's batches, and one
//! Keras-style summary line per epoch. Bars disappear when stderr is not a terminal (CI logs get the
//! lines only).

use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use nnlab_nn::{EpochRecord, Evaluation, TrainObserver};

pub struct Progress {
    multi: MultiProgress,
    jobs: ProgressBar,
}

impl Progress {
    pub fn new(total_jobs: usize) -> Self {
        let multi = MultiProgress::new();
        let jobs = multi.add(ProgressBar::new(total_jobs as u64));
        jobs.set_style(
            ProgressStyle::with_template("jobs {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        jobs.enable_steady_tick(Duration::from_millis(500));
        Progress { multi, jobs }
    }

    /// Prints a line above the bars (or plainly when there are none).
    pub fn println(&self, line: impl AsRef<str>) {
        self.multi.suspend(|| eprintln!("{}", line.as_ref()));
    }

    pub fn job_started(&self, label: &str) {
        self.jobs.set_message(label.to_string());
    }

    pub fn job_finished(&self) {
        self.jobs.inc(1);
    }

    pub fn finish(&self) {
        self.jobs.finish_and_clear();
    }

    /// An observer for one job's training.
    pub fn trainer(&self) -> EpochProgress<'_> {
        EpochProgress { progress: self, bar: None }
    }
}

pub struct EpochProgress<'a> {
    progress: &'a Progress,
    bar: Option<ProgressBar>,
}

impl TrainObserver for EpochProgress<'_> {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize) {
        let bar = self.progress.multi.add(ProgressBar::new(batches as u64));
        bar.set_style(
            ProgressStyle::with_template("Epoch {prefix} {pos}/{len} [{bar:30}] {elapsed} {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = Some(bar);
    }

    fn batch_done(&mut self, batch: usize, running: Evaluation) {
        if let Some(bar) = &self.bar {
            bar.set_position(batch as u64);
            if batch.is_multiple_of(10) {
                let acc = running.acc.map_or(String::new(), |a| format!(" - acc: {a:.4}"));
                bar.set_message(format!("loss: {:.4}{acc}", running.loss));
            }
        }
    }

    fn epoch_done(&mut self, r: &EpochRecord, epochs: usize) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            self.progress.multi.remove(&bar);
        }
        self.progress.println(epoch_line(r, epochs));
    }
}

/// `Epoch 3/12 - 2.1s - loss: 0.2771 - acc: 0.9218 - val_loss: 0.2890 - val_acc: 0.9190`, as Keras
/// prints it; a model without accuracy prints its losses only.
pub fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let mut line = format!("Epoch {}/{} - {:.1}s - loss: {:.4}", r.epoch, epochs, r.seconds, r.loss);
    for (name, value) in [("acc", r.acc), ("val_loss", r.val_loss), ("val_acc", r.val_acc)] {
        if let Some(v) = value {
            line += &format!(" - {name}: {v:.4}");
        }
    }
    line
}
