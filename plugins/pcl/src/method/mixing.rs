//! PCL's negative mixing: every negative `n_j` of an anchor is replaced by
//! `l n_j + (1 - l) n_pi(j)` before normalisation, with `l ~ Beta(alpha,
//! alpha)` drawn per (anchor, negative) and one permutation `pi` of the
//! negatives' positions shared by all anchors.

use visage_core::tch::{Device, Kind, Tensor};

/// The random draws of one mixing: coefficients `[rows, m]` and a
/// permutation of `0..m`.
#[derive(Debug)]
pub struct Mixing {
    /// The coefficient `l` of each (row, negative); 1 leaves it unmixed.
    pub lambda: Tensor,
    /// The partner position `pi(j)` of each negative position `j`, `[m]`
    /// (int64).
    pub permutation: Tensor,
}

impl Mixing {
    /// Draws `rows x m` coefficients from Beta(`alpha`, `alpha`) and a
    /// permutation with libtorch's generator.
    pub fn sample(rows: i64, m: i64, alpha: f64, device: Device) -> Mixing {
        let shape = [rows, m];
        let concentration = Tensor::full(shape, alpha, (Kind::Float, device));
        let (a, b) = (
            concentration.internal_standard_gamma(),
            concentration.internal_standard_gamma(),
        );
        Mixing {
            lambda: &a / (&a + &b),
            permutation: Tensor::randperm(m, (Kind::Int64, device)),
        }
    }

    /// No mixing: every coefficient 1, the identity permutation.
    pub fn none(rows: i64, m: i64, device: Device) -> Mixing {
        Mixing {
            lambda: Tensor::ones([rows, m], (Kind::Float, device)),
            permutation: Tensor::arange(m, (Kind::Int64, device)),
        }
    }

    /// Draws or not, as the `mix_negatives` switch says.
    pub fn draw(enabled: bool, rows: i64, m: i64, alpha: f64, device: Device) -> Mixing {
        if enabled {
            Mixing::sample(rows, m, alpha, device)
        } else {
            Mixing::none(rows, m, device)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_draws_have_the_beta_mean_and_variance() {
        visage_core::tch::manual_seed(3);
        let m = Mixing::sample(200, 100, 1.6, Device::Cpu);
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)) = 0.05952 at 1.6.
        let mean = m.lambda.mean(Kind::Double).double_value(&[]);
        let var = m.lambda.var(true).double_value(&[]);
        assert!((mean - 0.5).abs() < 0.005, "{mean}");
        assert!((var - 1.0 / (4.0 * 4.2)).abs() < 0.002, "{var}");
        let sorted = m.permutation.sort(0, false).0;
        assert!(sorted.equal(&Tensor::arange(100, (Kind::Int64, Device::Cpu))));
        let none = Mixing::draw(false, 2, 3, 1.6, Device::Cpu);
        assert_eq!(Vec::<f32>::try_from(none.lambda.flatten(0, -1)).unwrap(), vec![1.0; 6]);
    }
}
