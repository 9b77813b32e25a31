//! `experiments/tasks/pose.yaml` from YAML: in both protocols the head on
//! the pre-trained backbone beats the constant (the train split's median
//! angles) on the headline metric, the mean angle error.
//!
//! It does not assert that pre-training beats random init: it did on seed
//! 0, not on seeds 1 (probe: a tie) and 2 (fine-tuning: 0.8 degrees worse)
//! (README, "Measured").

use visage_testing::{assert_beats_constant, Better, Experiment};

#[test]
fn both_protocols_beat_the_median_pose_on_mean_angle_error() {
    let results = Experiment::new("experiments/tasks/pose.yaml").one_thread().results();
    // Measured over seeds 0-2 (one thread): the probe 2.8 to 4.1 degrees
    // under the constant, fine-tuning 10.9 to 11.7; about half the smallest.
    assert_beats_constant(&results, "pose", "mae_mean", Better::Lower, [1.4, 5.0]);
}
