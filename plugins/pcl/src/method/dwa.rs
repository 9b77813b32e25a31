//! Dynamic Weight Averaging (Liu et al., CVPR 2019) as PCL weights its face
//! and pose contrastive losses: the mean loss of each task over a period
//! (PCL: an epoch) is recorded; in period `p >= 2`, with `r_k = L_k(p-1) /
//! L_k(p-2)`, task `k` gets `w_k = K exp(r_k / T) / sum_j exp(r_j / T)`
//! (`K` tasks); before that every weight is 1.

use serde::{Deserialize, Serialize};

use super::params::DwaParams;

/// The weights' state: the running period's sums and the last two
/// periods' means. Serialised into checkpoints for exact resumption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dwa {
    temperature: f64,
    period: u64,
    current: u64,
    sums: Vec<f64>,
    counts: Vec<u64>,
    /// Means of the last (up to) two finished periods, oldest first.
    history: Vec<Vec<f64>>,
}

impl Dwa {
    /// Weights for `tasks` losses.
    pub fn new(tasks: usize, params: &DwaParams) -> Self {
        Dwa {
            temperature: params.temperature,
            period: params.period.max(1),
            current: 0,
            sums: vec![0.0; tasks],
            counts: vec![0; tasks],
            history: vec![],
        }
    }

    /// Enters the period of training step `step`, closing the running one
    /// when it has ended.
    pub fn begin_step(&mut self, step: u64) {
        let period = step / self.period;
        if period == self.current {
            return;
        }
        if self.counts.iter().all(|&c| c > 0) {
            let means = self.sums.iter().zip(&self.counts).map(|(s, &c)| s / c as f64).collect();
            self.history.push(means);
            if self.history.len() > 2 {
                self.history.remove(0);
            }
        }
        self.sums.iter_mut().for_each(|s| *s = 0.0);
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.current = period;
    }

    /// Records the unweighted loss of task `task` in this step.
    pub fn observe(&mut self, task: usize, loss: f64) {
        if let (Some(s), Some(c)) = (self.sums.get_mut(task), self.counts.get_mut(task)) {
            *s += loss;
            *c += 1;
        }
    }

    /// The weight of every task in the running period.
    pub fn weights(&self) -> Vec<f64> {
        let k = self.sums.len();
        let [older, last] = match self.history.as_slice() {
            [a, b] => [a, b],
            _ => return vec![1.0; k],
        };
        let e: Vec<f64> = last
            .iter()
            .zip(older)
            .map(|(l, o)| (l / o / self.temperature).exp())
            .collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|x| k as f64 * x / total).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_last_two_periods_from_the_third_on() {
        let params = DwaParams {
            temperature: 2.0,
            period: 2,
        };
        let mut dwa = Dwa::new(2, &params);
        // period 0: face 4 and 2 (mean 3), pose 1; period 1: face 3, pose 2.
        for (step, face, pose) in [(0, 4.0, 1.0), (1, 2.0, 1.0), (2, 3.0, 2.0), (3, 3.0, 2.0)] {
            dwa.begin_step(step);
            assert_eq!(dwa.weights(), vec![1.0, 1.0], "step {step}");
            dwa.observe(0, face);
            dwa.observe(1, pose);
        }
        dwa.begin_step(4);
        // r = (1, 2): w = 2 e^0.5 / (e^0.5 + e^1) = 0.75502, 1.24498.
        let w = dwa.weights();
        let e = (0.5f64.exp(), 1f64.exp());
        assert!((w[0] - 2.0 * e.0 / (e.0 + e.1)).abs() < 1e-12);
        assert!(
            (w[0] - 0.755_0).abs() < 1e-4 && (w[0] + w[1] - 2.0).abs() < 1e-12,
            "{w:?}"
        );
        // Within the period the weights stay; the state round-trips.
        dwa.begin_step(5);
        assert_eq!(dwa.weights(), w);
        let back: Dwa = serde_json::from_value(serde_json::to_value(&dwa).unwrap()).unwrap();
        assert_eq!(back, dwa);
    }
}
