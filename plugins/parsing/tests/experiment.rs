//! `experiments/tasks/parsing.yaml` from YAML: in both protocols the head
//! on the pre-trained backbone beats the constant (the per-pixel majority
//! of the train masks) on the headline metric, `fg_mean` (mean F1 over the
//! face classes).
//!
//! It does not assert that pre-training beats random init: over seeds 0-2
//! the gain was +0.4 to +3.7 (probe) and -0.1 to +1.2 (fine-tuning), and
//! the earlier test's margins (half of seed 0's gaps on another CPU) failed
//! on seeds 1 and 2 (README).

use visage_testing::{assert_beats_constant, Better, Experiment};

#[test]
fn both_protocols_beat_the_mean_mask_on_fg_mean() {
    let results = Experiment::new("experiments/tasks/parsing.yaml").one_thread().results();
    // Measured over seeds 0-2 (one thread): the probe 10.0 to 10.9 points
    // above the constant (12.6 to 13.1), fine-tuning 3.7 to 4.6; about half
    // the smallest.
    assert_beats_constant(&results, "parsing", "fg_mean", Better::Higher, [5.0, 1.8]);
}
