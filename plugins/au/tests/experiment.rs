//! `experiments/tasks/au.yaml` from YAML: the pre-trained backbone beats
//! its random-init twin on the headline metric, mean AU F1, in both
//! protocols.

use visage_testing::{assert_pretraining_wins, Better, Experiment};

#[test]
fn pretraining_beats_random_init_on_mean_au_f1_in_both_protocols() {
    let results = Experiment::new("experiments/tasks/au.yaml").one_thread().results();
    // Measured +11.8 (linear probe) and +12.4 (fine-tuning) points; the
    // run is seeded, so 5 points leaves room for other CPUs' and libtorch
    // builds' rounding without accepting a tie.
    assert_pretraining_wins(&results, "au", "f1_mean", Better::Higher, [5.0, 5.0]);
}
