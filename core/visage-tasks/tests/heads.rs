//! The dense head's shapes on ViT- and ResNet-like inputs and on the real
//! backbones, and the heatmap, coordinate and loss helpers against values
//! computed by hand.

use tch::{nn, Device, Kind, Tensor};
use visage_core::nn::{ResNet, ResNetParams, VisionTransformer, VitParams};
use visage_tasks::heads::coords::{denormalize_points, normalize_points};
use visage_tasks::heads::{
    channels_at, gaussian_heatmaps, pixel_cross_entropy, soft_argmax, upsample_logits, vit_block_indices,
    AlignmentLoss, DenseHead, Pyramid,
};

const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} differs from {b} by more than {tol}");
}

fn value(t: &Tensor, index: &[i64]) -> f64 {
    t.double_value(index)
}

#[test]
fn vit_maps_at_a_sixteenth_give_maps_at_a_quarter() {
    let vs = nn::VarStore::new(Device::Cpu);
    let head = DenseHead::new(&(vs.root() / "dense"), &[24; 4], Pyramid::Vit, 16, 19).unwrap();
    // A 128-pixel image with patch 16: an 8x8 grid; the pyramid is 32, 16, 8, 4.
    let maps: Vec<Tensor> = (0..4).map(|_| Tensor::randn([2, 24, 8, 8], OPTS)).collect();
    assert_eq!(head.forward(&maps, true).unwrap().size(), [2, 19, 32, 32]);
    assert_eq!(head.forward(&maps, false).unwrap().size(), [2, 19, 32, 32]);
    // FaRL's names: the pyramid under `fpns`, UPerNet under `head`.
    let names: Vec<String> = vs.variables().into_keys().collect();
    for name in [
        "dense.fpns.0.0.weight",
        "dense.fpns.0.1.running_var",
        "dense.fpns.0.3.bias",
        "dense.fpns.1.weight",
        "dense.head.psp_modules.3.1.conv.weight",
        "dense.head.bottleneck.bn.weight",
        "dense.head.lateral_convs.2.conv.weight",
        "dense.head.fpn_convs.0.bn.bias",
        "dense.head.fpn_bottleneck.conv.weight",
        "dense.head.conv_seg.bias",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    // Three maps, or a map of other channels, are refused.
    assert!(head.forward(&maps[..3], false).is_err());
    let mut wrong: Vec<Tensor> = maps[..3].iter().map(|m| m.shallow_clone()).collect();
    wrong.push(Tensor::randn([2, 23, 8, 8], OPTS));
    assert!(head.forward(&wrong, false).is_err());
    assert!(DenseHead::new(&(vs.root() / "x"), &[24; 3], Pyramid::Vit, 16, 19).is_err());
}

#[test]
fn resnet_stages_give_maps_on_the_first_stage_grid() {
    let vs = nn::VarStore::new(Device::Cpu);
    let channels = [8, 16, 32, 64];
    let head = DenseHead::new(&vs.root(), &channels, Pyramid::Stages, 16, 11).unwrap();
    let maps: Vec<Tensor> = channels
        .iter()
        .zip([16, 8, 4, 2])
        .map(|(&c, s)| Tensor::randn([2, c, s, s], OPTS))
        .collect();
    assert_eq!(head.forward(&maps, true).unwrap().size(), [2, 11, 16, 16]);
    // No pyramid parameters for stages.
    assert!(vs.variables().keys().all(|n| !n.starts_with("fpns")));
}

#[test]
fn the_head_reads_the_real_backbones() {
    let vs = nn::VarStore::new(Device::Cpu);
    let params = VitParams {
        width: Some(32),
        depth: Some(12),
        heads: Some(2),
        image_size: 64,
        ..VitParams::sized(visage_core::nn::VitSize::Small)
    };
    let vit = VisionTransformer::new(&(vs.root() / "vit"), 3, &params).unwrap();
    let blocks = vit_block_indices(12).unwrap();
    assert_eq!(blocks, [3, 5, 7, 11]);
    let channels = channels_at(&vit, &blocks).unwrap();
    let head = DenseHead::new(&(vs.root() / "head"), &channels, Pyramid::Vit, 16, 5).unwrap();
    let images = Tensor::randn([2, 3, 64, 64], OPTS);
    let out = head.forward_backbone(&vit, &images, &blocks, false).unwrap();
    assert_eq!(out.size(), [2, 5, 16, 16]);
    assert!(channels_at(&vit, &[12]).is_err());

    let resnet = ResNet::new(
        &(vs.root() / "resnet"),
        3,
        &ResNetParams {
            width: 8,
            ..Default::default()
        },
    )
    .unwrap();
    let stages = [0, 1, 2, 3];
    let channels = channels_at(&resnet, &stages).unwrap();
    assert_eq!(channels, [8, 16, 32, 64]);
    let head = DenseHead::new(&(vs.root() / "rhead"), &channels, Pyramid::Stages, 16, 5).unwrap();
    let out = head.forward_backbone(&resnet, &images, &stages, false).unwrap();
    assert_eq!(out.size(), [2, 5, 16, 16]);
}

#[test]
fn farl_block_choices_by_depth() {
    assert_eq!(vit_block_indices(24).unwrap(), [7, 11, 15, 23]);
    assert_eq!(vit_block_indices(32).unwrap(), [8, 14, 20, 31]);
    assert_eq!(vit_block_indices(6).unwrap(), [1, 2, 3, 5]);
    assert_eq!(vit_block_indices(2).unwrap(), [0, 0, 0, 1]);
    assert!(vit_block_indices(0).is_err());
}

#[test]
fn soft_argmax_of_a_one_hot_heatmap_is_its_pixel_centre() {
    // 4 rows, 8 columns; the peak at column 5, row 1: ((5 + 0.5) / 8, (1 + 0.5) / 4).
    let heatmap = Tensor::zeros([1, 2, 4, 8], OPTS);
    let _ = heatmap.get(0).get(0).get(1).get(5).fill_(1.0);
    // Weights 1 at column 2 and 3 at column 6 of row 0: x = (2 + 18) / 4 = 5.
    let _ = heatmap.get(0).get(1).get(0).get(2).fill_(1.0);
    let _ = heatmap.get(0).get(1).get(0).get(6).fill_(3.0);
    let points = soft_argmax(&heatmap).unwrap();
    assert_eq!(points.size(), [1, 2, 2]);
    close(value(&points, &[0, 0, 0]), 0.6875, 1e-6);
    close(value(&points, &[0, 0, 1]), 0.375, 1e-6);
    close(value(&points, &[0, 1, 0]), 0.6875, 1e-6);
    close(value(&points, &[0, 1, 1]), 0.125, 1e-6);
    assert!(soft_argmax(&Tensor::zeros([2, 8], OPTS)).is_err());
}

#[test]
fn gaussian_targets_peak_at_the_landmark_and_stop_at_the_radius() {
    // Pixel (x 10, y 20) of a 32x32 grid, radius 5: sigma 1.25.
    let point = normalize_points(&Tensor::from_slice(&[10.0f32, 20.0]).view([1, 1, 2]), 32, 32);
    close(value(&point, &[0, 0, 0]), 10.5 / 32.0, 1e-7);
    let g = gaussian_heatmaps(&point, 32, 32, 5.0).unwrap();
    assert_eq!(g.size(), [1, 1, 32, 32]);
    let g = g.get(0).get(0);
    close(value(&g, &[20, 10]), 1.0, 1e-6);
    assert_eq!(g.argmax(None, false).int64_value(&[]), 20 * 32 + 10);
    close(value(&g, &[20, 11]), (-0.32f64).exp(), 1e-6); // r = 1: exp(-1 / (2 * 1.25^2))
    close(value(&g, &[21, 11]), (-0.64f64).exp(), 1e-6); // r^2 = 2
    close(value(&g, &[15, 10]), (-8.0f64).exp(), 1e-7); // r = 5: still inside
    assert_eq!(value(&g, &[20, 16]), 0.0); // r = 6: outside
    assert_eq!(value(&g, &[24, 14]), 0.0); // r^2 = 32 > 25
                                           // Its soft-argmax is the landmark.
    let back = soft_argmax(&g.view([1, 1, 32, 32])).unwrap();
    assert!(back.allclose(&point, 1e-6, 1e-6, false));
    let pixels = denormalize_points(&back, 32, 32);
    close(value(&pixels, &[0, 0, 0]), 10.0, 1e-4);
    close(value(&pixels, &[0, 0, 1]), 20.0, 1e-4);
}

#[test]
fn alignment_loss_is_bce_plus_the_mean_point_distance() {
    // Zero logits: sigmoid 0.5 everywhere, whose soft-argmax is the centre
    // (0.5, 0.5); BCE of logit 0 is ln 2 whatever the target.
    let logits = Tensor::zeros([2, 3, 4, 4], OPTS);
    let targets = Tensor::full([2, 3, 2], 0.5, OPTS);
    targets.get(0).get(0).copy_(&Tensor::from_slice(&[0.8f32, 0.9])); // distance 0.5
    targets.get(1).get(2).copy_(&Tensor::from_slice(&[0.5f32, 0.2])); // distance 0.3
    let loss = AlignmentLoss {
        heatmap_size: 8,
        radius: 2.0,
    };
    let out = loss.compute(&logits, &targets).unwrap();
    let mean_distance = (0.5 + 0.3) / 6.0;
    close(out.coord.double_value(&[]), mean_distance, 1e-6);
    close(out.heatmap_bce.double_value(&[]), 2f64.ln(), 1e-6);
    close(out.total.double_value(&[]), 2f64.ln() + mean_distance, 1e-6);
    close(value(&out.points, &[1, 1, 0]), 0.5, 1e-6);
    assert!(loss.compute(&logits, &targets.narrow(1, 0, 2)).is_err());
    assert_eq!(AlignmentLoss::default().heatmap_size, 128);
    assert_eq!(AlignmentLoss::default().radius, 5.0);
}

#[test]
fn parsing_upsamples_logits_and_takes_the_pixel_cross_entropy() {
    let logits = Tensor::zeros([2, 4, 8, 8], OPTS);
    let up = upsample_logits(&logits, 32, 24).unwrap();
    assert_eq!(up.size(), [2, 4, 32, 24]);
    // Uniform logits over 4 classes: ln 4 per pixel.
    let labels = Tensor::randint(4, [2, 32, 24], (Kind::Int64, Device::Cpu));
    close(
        pixel_cross_entropy(&up, &labels).unwrap().double_value(&[]),
        4f64.ln(),
        1e-6,
    );
    // A logit of 2 on the true class of half the pixels, 0 elsewhere:
    // those pixels cost ln(e^2 + 3) - 2, the others ln 4.
    let logits = Tensor::zeros([1, 4, 1, 2], OPTS);
    let _ = logits.get(0).get(3).get(0).get(0).fill_(2.0);
    let labels = Tensor::from_slice(&[3i64, 1]).view([1, 1, 2]);
    let expected = ((2f64.exp() + 3.0).ln() - 2.0 + 4f64.ln()) / 2.0;
    close(
        pixel_cross_entropy(&logits, &labels).unwrap().double_value(&[]),
        expected,
        1e-6,
    );
    // A label past the classes, or labels of another size, are refused.
    let bad = Tensor::from_slice(&[4i64, 1]).view([1, 1, 2]);
    let err = pixel_cross_entropy(&logits, &bad).unwrap_err().to_string();
    assert!(err.contains("0..4"), "{err}");
    assert!(pixel_cross_entropy(&logits, &labels.view([1, 2, 1])).is_err());
}
