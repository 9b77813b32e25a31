//! PCL's two InfoNCE losses with Beta-mixed negatives ([`super::mixing`]):
//! the face-aware loss, whose negatives are the other images' views in the
//! batch, and the pose loss, whose negatives are augmented views of the
//! anchor image's horizontal flip. Temperature `T`, the positive first,
//! cross-entropy averaged over the `2B` anchors (both views of each image).

use visage_core::tch::{Device, Kind, Tensor};

use super::mixing::Mixing;

pub use visage_core::nn::contrastive::l2_normalize;

/// The in-batch negatives of the `n = 2B` anchors: row `i` lists, in
/// order, every `j` but `i` and its other view `i +- B`; `[n, n - 2]`.
pub fn in_batch_negatives(n: i64, device: Device) -> Tensor {
    let half = n / 2;
    let idx: Vec<i64> = (0..n)
        .flat_map(|i| (0..n).filter(move |&j| j != i && j != (i + half) % n))
        .collect();
    Tensor::from_slice(&idx).view([n, n - 2]).to_device(device)
}

/// The cosine of each anchor with its other view: view 1 of image `b`
/// against view 2 and back, `[2B]`.
fn positives(unit: &Tensor) -> Tensor {
    let half = unit.size()[0] / 2;
    (unit * unit.roll([half], [0])).sum_dim_intlist(1, false, Kind::Float)
}

/// InfoNCE over `[2B, 1 + m]` cosines, the positive first.
fn info_nce(pos: &Tensor, neg: &Tensor, temperature: f64) -> Tensor {
    let logits = Tensor::cat(&[pos.unsqueeze(1), neg.shallow_clone()], 1) / temperature;
    let targets = Tensor::zeros([logits.size()[0]], (Kind::Int64, logits.device()));
    logits.cross_entropy_for_logits(&targets)
}

/// The face-aware loss on `features` `[2B, d]` (view 1 of every image, then
/// view 2, before normalisation), with `mixing` of shape `[2B, 2B - 2]`.
///
/// The mixed negatives are never built: with `a = n_j`, `b = n_pi(j)` and
/// the Gram matrix `G` of the features, the cosine of anchor `u` with
/// `l a + (1 - l) b` is `(l u.a + (1 - l) u.b) / sqrt(l^2 G_aa + (1 - l)^2
/// G_bb + 2 l (1 - l) G_ab)`, which needs `[2B, 2B]` products instead of a
/// `[2B, 2B - 2, d]` tensor.
pub fn face_loss(features: &Tensor, mixing: &Mixing, temperature: f64) -> Tensor {
    let n = features.size()[0];
    let unit = l2_normalize(features, 1);
    let a = in_batch_negatives(n, features.device());
    let b = a.index_select(1, &mixing.permutation);
    let dots = unit.matmul(&features.tr());
    let gram = features.matmul(&features.tr());
    let sq = gram.diagonal(0, 0, 1);
    let l = &mixing.lambda;
    let m = 1.0 - l;
    let dot = l * dots.gather(1, &a, false) + &m * dots.gather(1, &b, false);
    let cross = gram.take(&(&a * n + &b));
    let norm_sq: Tensor = l * l * sq.take(&a) + &m * &m * sq.take(&b) + l * &m * cross * 2.0;
    let neg = dot / norm_sq.clamp_min(0.0).sqrt().clamp_min(1e-12);
    info_nce(&positives(&unit), &neg, temperature)
}

/// The pose negatives `[K B, d]`, stacked view by view (`K` batches of
/// `B`), as `[B, K, d]`: image `b`'s own `K` flipped views, or with
/// `official` the official code's chunking of the stacked rows into `B`
/// consecutive groups of `K`, which mixes images.
pub fn group_negatives(stacked: &Tensor, images: i64, official: bool) -> Tensor {
    let (rows, d) = (stacked.size()[0], stacked.size()[1]);
    let k = rows / images;
    if official {
        stacked.view([images, k, d])
    } else {
        stacked.view([k, images, d]).transpose(0, 1)
    }
}

/// The pose loss on anchors `features` `[2B, d]` (two views of every
/// image) and negatives `[B, K, d]` (before normalisation), with `mixing`
/// of shape `[B, K]`: both views of image `b` meet the same mixed
/// negatives.
pub fn pose_loss(features: &Tensor, negatives: &Tensor, mixing: &Mixing, temperature: f64) -> Tensor {
    let (b, d) = (negatives.size()[0], features.size()[1]);
    let l = mixing.lambda.unsqueeze(2);
    let mixed = &l * negatives + (1.0 - &l) * negatives.index_select(1, &mixing.permutation);
    let mixed = l2_normalize(&mixed, 2);
    let unit = l2_normalize(features, 1);
    let neg = unit.view([2, b, 1, d]).matmul(&mixed.transpose(1, 2)).view([2 * b, -1]);
    info_nce(&positives(&unit), &neg, temperature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn negatives_skip_the_anchor_and_its_other_view() {
        let idx = in_batch_negatives(4, Device::Cpu);
        let rows: Vec<Vec<i64>> = (0..4).map(|i| Vec::<i64>::try_from(idx.get(i)).unwrap()).collect();
        assert_eq!(rows, vec![vec![1, 3], vec![0, 2], vec![1, 3], vec![0, 2]]);
    }

    /// B = 2, d = 2, no mixing: the anchors' cosines by hand.
    #[test]
    fn face_loss_by_hand() {
        // Rows q0 (1,0), q1 (1,1), k0 (0,1), k1 (1,-1): view 1 of images 0
        // and 1, then view 2; every positive pair is orthogonal.
        let f = t(&[1., 0., 1., 1., 0., 1., 1., -1.], &[4, 2]);
        let none = Mixing::none(4, 2, Device::Cpu);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        // anchor: (positive, negatives)
        let rows = [
            (0.0f64, [s, s]), // q0: negatives q1, k1
            (0.0, [s, s]),    // q1: negatives q0, k0
            (0.0, [s, -s]),   // k0: negatives q1, k1
            (0.0, [s, -s]),   // k1: negatives q0, k0
        ];
        let tau = 0.5f64;
        let expected: f64 = rows
            .iter()
            .map(|(p, n)| {
                let z: f64 = (p / tau).exp() + n.iter().map(|c| (c / tau).exp()).sum::<f64>();
                z.ln() - p / tau
            })
            .sum::<f64>()
            / 4.0;
        let got = face_loss(&f, &none, tau).double_value(&[]);
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    }

    /// Mixing by the Gram identity equals mixing the vectors.
    #[test]
    fn face_loss_mixes_like_the_materialised_negatives() {
        visage_core::tch::manual_seed(1);
        let (n, d) = (6, 5);
        let f = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
        let mixing = Mixing::sample(n, n - 2, 1.6, Device::Cpu);
        let idx = in_batch_negatives(n, Device::Cpu);
        let neg = f.index_select(0, &idx.flatten(0, -1)).view([n, n - 2, d]);
        let l = mixing.lambda.unsqueeze(2);
        let mixed = &l * &neg + (1.0 - &l) * neg.index_select(1, &mixing.permutation);
        let unit = l2_normalize(&f, 1);
        let cos = unit
            .unsqueeze(1)
            .matmul(&l2_normalize(&mixed, 2).transpose(1, 2))
            .squeeze_dim(1);
        let expected = info_nce(&positives(&unit), &cos, 0.07).double_value(&[]);
        let got = face_loss(&f, &mixing, 0.07).double_value(&[]);
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    }

    #[test]
    fn pose_negatives_group_per_image_or_as_the_official_code() {
        // K = 2 views of B = 3 images, stacked view by view: value 10 k + b.
        let stacked = t(&[0., 1., 2., 10., 11., 12.], &[6, 1]);
        let ours = group_negatives(&stacked, 3, false).flatten(0, -1);
        assert_eq!(Vec::<f32>::try_from(ours).unwrap(), vec![0., 10., 1., 11., 2., 12.]);
        let official = group_negatives(&stacked, 3, true).flatten(0, -1);
        assert_eq!(Vec::<f32>::try_from(official).unwrap(), vec![0., 1., 2., 10., 11., 12.]);
    }

    /// B = 1, K = 2, one negative mixed half and half with the other.
    #[test]
    fn pose_loss_by_hand() {
        let f = t(&[1., 0., 1., 1.], &[2, 2]);
        let negs = t(&[0., 1., -1., 0.], &[1, 2, 2]);
        let mixing = Mixing {
            lambda: t(&[0.5, 1.0], &[1, 2]),
            permutation: Tensor::from_slice(&[1i64, 0]),
        };
        // mixed: 0.5 (0,1) + 0.5 (-1,0) = (-s, s) normalised; (-1, 0).
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let anchors = [(s, [-s, -1.0]), (s, [0.0, -s])];
        let expected: f64 = anchors
            .iter()
            .map(|(p, n)| {
                let z: f64 = (p / 0.1).exp() + n.iter().map(|c| (c / 0.1).exp()).sum::<f64>();
                z.ln() - p / 0.1
            })
            .sum::<f64>()
            / 2.0;
        let got = pose_loss(&f, &negs, &mixing, 0.1).double_value(&[]);
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
    }
}
