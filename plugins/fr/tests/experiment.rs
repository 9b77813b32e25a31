//! `experiments/tasks/fr.yaml` through the release runner (built beside
//! this plugin: `cargo build --release -p visage-runner -p
//! visage-plugin-fr -p visage-plugin-synthface -p visage-plugin-example`,
//! as ./scripts/test does), with fine-tuning cut from 6 to 2 epochs, on one
//! thread: both protocols verify unseen identities above chance (50%: the
//! built pairs are half same-identity).
//!
//! It does not assert that pre-training beats random init: over seeds 0-5
//! the gain was +1.6 to +7.0 points under linear_probe and -4.5 to +5.6
//! under fine_tune, and with 3000 pairs the probe's gain too changed sign
//! (README, "The experiment"). An earlier version asserted seed 0's gains
//! and failed on a new CPU (fine_tune 54.70 against 56.00).

use visage_testing::Experiment;

/// Chance on balanced pairs.
const CHANCE: f64 = 50.0;

#[test]
fn both_protocols_verify_unseen_identities_above_chance() {
    let results = Experiment::new("experiments/tasks/fr.yaml")
        .sets(&["evaluations.1.task.params.training.epochs=2"])
        .one_thread()
        .results();
    // Margins about half the smallest accuracy above chance over seeds 0-5:
    // linear_probe 55.0, fine_tune 52.1.
    for (i, (protocol, margin)) in [("linear_probe", 2.5), ("fine_tune", 1.0)].into_iter().enumerate() {
        let evaluation = &results["evaluations"][i];
        assert_eq!(evaluation["protocol"], protocol, "evaluation {i}");
        let accuracy = evaluation["metrics"]["accuracy"]
            .as_f64()
            .unwrap_or_else(|| panic!("evaluation {i} has no accuracy: {evaluation}"));
        assert!(
            accuracy > CHANCE + margin,
            "fr {protocol}: accuracy {accuracy:.2} should beat chance ({CHANCE}) by {margin}"
        );
    }
}
