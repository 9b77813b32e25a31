//! DINO's loss (Caron et al., 2021): the cross-entropy between the
//! teacher's centred and sharpened distribution over the `K` outputs and
//! the student's, summed over every pair (teacher global view, student
//! view) of different views and divided by the number of pairs:
//!
//! `L = 1/P sum_{t, s != t} mean_n( -sum_k q_t[n,k] log p_s[n,k] )`,
//! `q_t = softmax((z_t - c) / T_teacher)`, `p_s = softmax(z_s / T_student)`.
//!
//! The centre `c` `[1, K]` follows the mean teacher output by EMA,
//! `c <- m c + (1 - m) mean(z_teacher)`, once per optimiser step, after the
//! step's loss used the old centre (as DINO's `update_center`, which
//! averages over all processes: here over the micro-batches of a step).

use tch::{Kind, Tensor};
use visage_core::{Error, Result};

/// The loss with its centre.
#[derive(Debug)]
pub struct DinoLoss {
    student_temperature: f64,
    center_momentum: f64,
    center: Tensor,
    /// Sum of the teacher outputs seen since the last centre update, and
    /// their rows.
    pending: Option<(Tensor, i64)>,
    /// The collapse diagnostics of the last loss.
    diagnostics: Option<Diagnostics>,
}

/// DINO's collapse diagnostics (Caron et al., 2021, Fig. 7) of the
/// teacher's targets `q` (centred and sharpened): the mean entropy
/// `mean_n H(q_n)` (`ln K` when the targets are uniform, 0 when one-hot)
/// and `H(mean_n q_n) - mean_n H(q_n)` (the KL of the targets to their
/// mean, 0 under either collapse: every image gets the same target).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostics {
    /// The mean entropy of the targets (nats).
    pub entropy: f64,
    /// The entropy of the mean target minus the mean entropy (nats).
    pub spread: f64,
}

/// The diagnostics of the targets `q` `[M, K]` (rows are distributions).
pub fn diagnostics(q: &Tensor) -> Diagnostics {
    tch::no_grad(|| {
        let entropy_rows =
            |p: &Tensor| -(p * p.clamp_min(1e-30).log()).sum_dim_intlist([-1i64].as_slice(), false, Kind::Double);
        let entropy = entropy_rows(q).mean(Kind::Double).double_value(&[]);
        let mean = q.mean_dim([0i64].as_slice(), false, Kind::Double);
        let of_mean = entropy_rows(&mean).double_value(&[]);
        Diagnostics {
            entropy,
            spread: of_mean - entropy,
        }
    })
}

impl DinoLoss {
    /// A loss over `out_dim` outputs with the centre at zero on `device`.
    pub fn new(out_dim: i64, student_temperature: f64, center_momentum: f64, device: tch::Device) -> Result<Self> {
        if student_temperature.is_nan()
            || student_temperature <= 0.0
            || !(0.0..=1.0).contains(&center_momentum)
            || out_dim < 1
        {
            return Err(Error::msg(format!(
                "dino loss: expected a positive student temperature, a centre momentum in [0, 1] and out_dim >= 1, \
                 got {student_temperature}, {center_momentum} and {out_dim}"
            )));
        }
        Ok(DinoLoss {
            student_temperature,
            center_momentum,
            center: Tensor::zeros([1, out_dim], (Kind::Float, device)),
            pending: None,
            diagnostics: None,
        })
    }

    /// The loss of the student's outputs `student` (one `[N, K]` per view,
    /// the teacher's views first, in the same order) against the teacher's
    /// `teacher` (one `[N, K]` per global view) at `teacher_temperature`.
    /// Records the teacher outputs for the next [`DinoLoss::update_center`].
    pub fn loss(&mut self, student: &[Tensor], teacher: &[Tensor], teacher_temperature: f64) -> Result<Tensor> {
        if student.len() < 2
            || teacher.is_empty()
            || teacher.len() > student.len()
            || teacher_temperature.is_nan()
            || teacher_temperature <= 0.0
        {
            return Err(Error::msg(format!(
                "dino loss: expected at least 2 student views, 1 to {} teacher views and a positive teacher \
                 temperature, got {} student views, {} teacher views and temperature {teacher_temperature}",
                student.len(),
                student.len(),
                teacher.len()
            )));
        }
        let targets: Vec<Tensor> = teacher
            .iter()
            .map(|z| ((z.detach() - &self.center) / teacher_temperature).softmax(-1, Kind::Float))
            .collect();
        let log_probs: Vec<Tensor> = student
            .iter()
            .map(|z| (z / self.student_temperature).log_softmax(-1, Kind::Float))
            .collect();
        let mut total: Option<Tensor> = None;
        let mut pairs = 0;
        for (t, q) in targets.iter().enumerate() {
            for (s, log_p) in log_probs.iter().enumerate() {
                if s == t {
                    continue;
                }
                let term = (-(q * log_p))
                    .sum_dim_intlist([-1i64].as_slice(), false, Kind::Float)
                    .mean(Kind::Float);
                total = Some(match total {
                    Some(acc) => acc + term,
                    None => term,
                });
                pairs += 1;
            }
        }
        self.record(teacher);
        self.diagnostics = Some(diagnostics(&Tensor::cat(&targets, 0)));
        let total = total.ok_or_else(|| Error::msg("dino loss: no (teacher, student) pair of different views"))?;
        Ok(total / pairs as f64)
    }

    fn record(&mut self, teacher: &[Tensor]) {
        tch::no_grad(|| {
            let all = Tensor::cat(teacher, 0).detach().to_kind(Kind::Float);
            let rows = all.size()[0];
            let sum = all.sum_dim_intlist([0i64].as_slice(), true, Kind::Float);
            self.pending = Some(match self.pending.take() {
                Some((acc, n)) => (acc + sum, n + rows),
                None => (sum, rows),
            });
        });
    }

    /// Moves the centre towards the mean of the teacher outputs recorded
    /// since the last update; nothing when none were.
    pub fn update_center(&mut self) {
        if let Some((sum, rows)) = self.pending.take() {
            let m = self.center_momentum;
            self.center = tch::no_grad(|| &self.center * m + sum / rows as f64 * (1.0 - m));
        }
    }

    /// The collapse diagnostics of the last loss computed, if any.
    pub fn last_diagnostics(&self) -> Option<Diagnostics> {
        self.diagnostics
    }

    /// The centre `[1, K]`.
    pub fn center(&self) -> &Tensor {
        &self.center
    }

    /// Replaces the centre (a resumed run's), which must be `[1, K]`.
    pub fn set_center(&mut self, center: Tensor) -> Result<()> {
        if center.size() != self.center.size() {
            return Err(Error::msg(format!(
                "dino loss: the saved centre is {:?}, the head's outputs need {:?}",
                center.size(),
                self.center.size()
            )));
        }
        self.center = center.to_kind(Kind::Float).to_device(self.center.device());
        self.pending = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(rows: &[[f32; 2]]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, 2])
    }

    #[test]
    fn pairs_of_the_same_view_are_skipped_and_the_rest_averaged() {
        let mut loss = DinoLoss::new(2, 1.0, 0.9, Device::Cpu).unwrap();
        // Teacher view 0 is certain of class 0 (logits 0 vs -1000), view 1
        // of class 1; the students are uniform but student 1 is certain of
        // class 1 with log-probabilities (log 1e-9-ish, 0).
        let teacher = [t(&[[0.0, -1000.0]]), t(&[[-1000.0, 0.0]])];
        let uniform = t(&[[0.0, 0.0]]);
        let student = [uniform.shallow_clone(), t(&[[-20.0, 0.0]]), uniform.shallow_clone()];
        let value = loss.loss(&student, &teacher, 1.0).unwrap().double_value(&[]);
        // Pairs: (t0, s1): -log p_s1(0) = 20 + log(1 + e^-20) ~ 20;
        // (t0, s2): ln 2; (t1, s0): ln 2; (t1, s2): ln 2.
        let expected = ((20.0 + (1.0 + (-20.0f64).exp()).ln()) + 3.0 * 2f64.ln()) / 4.0;
        assert!((value - expected).abs() < 1e-5, "{value} vs {expected}");
    }

    #[test]
    fn the_centre_moves_once_per_update_by_the_mean_teacher_output() {
        let mut loss = DinoLoss::new(2, 0.1, 0.9, Device::Cpu).unwrap();
        let teacher = [t(&[[1.0, 2.0], [3.0, 4.0]]), t(&[[5.0, 6.0], [7.0, 8.0]])];
        let student = [t(&[[0.0, 0.0], [0.0, 0.0]]), t(&[[0.0, 0.0], [0.0, 0.0]])];
        let _ = loss.loss(&student, &teacher, 0.04).unwrap();
        // Two micro-batches of one step: the mean is over both.
        let zero = [t(&[[0.0, 0.0]]), t(&[[0.0, 0.0]])];
        let _ = loss.loss(&zero, &zero, 0.04).unwrap();
        assert_eq!(Vec::<f32>::try_from(loss.center().view([-1])).unwrap(), [0.0, 0.0]);
        loss.update_center();
        // Sum (16, 20) over 6 rows, times 0.1.
        let c: Vec<f32> = loss.center().view([-1]).try_into().unwrap();
        assert!(
            (c[0] - 1.6 / 6.0).abs() < 1e-6 && (c[1] - 2.0 / 6.0).abs() < 1e-6,
            "{c:?}"
        );
        loss.update_center();
        let again: Vec<f32> = loss.center().view([-1]).try_into().unwrap();
        assert_eq!(c, again, "no new teacher outputs, no move");
    }

    #[test]
    fn diagnostics_tell_uniform_one_hot_and_diverse_targets_apart() {
        let ln2 = 2f64.ln();
        let uniform = diagnostics(&t(&[[0.5, 0.5], [0.5, 0.5]]));
        assert!(
            (uniform.entropy - ln2).abs() < 1e-6 && uniform.spread.abs() < 1e-6,
            "{uniform:?}"
        );
        let same = diagnostics(&t(&[[1.0, 0.0], [1.0, 0.0]]));
        assert!(same.entropy.abs() < 1e-6 && same.spread.abs() < 1e-6, "{same:?}");
        // Each image sure of its own class: entropy 0, mean (1/2, 1/2).
        let diverse = diagnostics(&t(&[[1.0, 0.0], [0.0, 1.0]]));
        assert!(
            diverse.entropy.abs() < 1e-6 && (diverse.spread - ln2).abs() < 1e-6,
            "{diverse:?}"
        );
    }

    #[test]
    fn the_centre_is_subtracted_before_sharpening() {
        let mut loss = DinoLoss::new(2, 1.0, 0.9, Device::Cpu).unwrap();
        loss.set_center(t(&[[5.0, 0.0]])).unwrap();
        // Teacher logits (5, 0) minus the centre are uniform: every pair is ln 2
        // against a uniform student.
        let teacher = [t(&[[5.0, 0.0]]), t(&[[5.0, 0.0]])];
        let student = [t(&[[0.0, 0.0]]), t(&[[0.0, 0.0]])];
        let value = loss.loss(&student, &teacher, 0.04).unwrap().double_value(&[]);
        assert!((value - 2f64.ln()).abs() < 1e-6, "{value}");
        assert!(loss.set_center(t(&[[1.0, 2.0], [3.0, 4.0]])).is_err());
        assert!(loss.loss(&student[..1], &teacher[..1], 0.04).is_err());
    }
}
