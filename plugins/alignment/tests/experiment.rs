//! `experiments/tasks/alignment.yaml` from YAML: in both protocols the
//! heatmap head on the pre-trained backbone beats the mean shape (the
//! task's constant) on the headline metric, `nme_inter_ocular` (lower is
//! better).
//!
//! It does not assert that pre-training beats random init: RotNet's gain
//! on synthface alignment is within the spread of seeds (README, "On
//! synthface"), and a test of it passed or failed with the CPU's rounding.

use visage_testing::{assert_beats_constant, Better, Experiment};

/// The file as it is, without the random-init twins (half the time).
const WITHOUT_TWINS: &[&str] = &["evaluations.0.random_init=false", "evaluations.1.random_init=false"];

/// Margins in NME points (percent of the inter-ocular distance), per
/// protocol: half the smallest gap to the mean shape measured over seeds 0
/// and 1 (one thread): linear probe 22.73 and 25.79 against 28.46 and 30.93
/// (5.1 better at least), fine-tuning 18.89 and 19.63 (9.6 better).
const MARGINS: [f64; 2] = [2.5, 4.8];

#[test]
fn both_protocols_beat_the_mean_shape_on_nme() {
    let results = Experiment::new("experiments/tasks/alignment.yaml")
        .sets(WITHOUT_TWINS)
        .one_thread()
        .results();
    assert_beats_constant(&results, "alignment", "nme_inter_ocular", Better::Lower, MARGINS);
}
