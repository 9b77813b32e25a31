//! Visage side of bench/train_step: images/s of one full training step
//! (uint8 batch -> float, forward, loss, backward, SGD momentum step) with
//! the built-in backbones and optimiser. bench/train_step runs it beside
//! bench/train_step.py and prints the ratio.
//!
//! ```text
//! cargo bench -p visage-core --bench train_step -- MODEL BATCH SIZE STEPS THREADS
//! ```

use std::time::Instant;

use tch::{nn, Device, Kind, Tensor};
use visage_core::backbone::{Backbone, POOLED};
use visage_core::nn::{ResNet, ResNetParams, VisionTransformer, VitParams, VitSize};
use visage_core::optim::{single_group, Sgd, SgdConfig};
use visage_core::optimizer::Optimizer;

fn model(name: &str, vs: &nn::Path) -> Box<dyn Backbone> {
    match name {
        "resnet50" => Box::new(
            ResNet::new(
                vs,
                3,
                &ResNetParams {
                    depth: 50,
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        "resnet18_w32" => Box::new(
            ResNet::new(
                vs,
                3,
                &ResNetParams {
                    width: 32,
                    ..Default::default()
                },
            )
            .unwrap(),
        ),
        "vit_b16" => Box::new(VisionTransformer::new(vs, 3, &VitParams::sized(VitSize::Base)).unwrap()),
        "vit_tiny_p8_64" => Box::new(
            VisionTransformer::new(
                vs,
                3,
                &VitParams {
                    image_size: 64,
                    patch: 8,
                    ..VitParams::sized(VitSize::Tiny)
                },
            )
            .unwrap(),
        ),
        other => panic!("unknown model {other}"),
    }
}

fn main() {
    // cargo bench passes `--bench`; the numbers follow it.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [name, batch, size, steps, threads] = args.as_slice() else {
        eprintln!("usage: train_step MODEL BATCH SIZE STEPS THREADS");
        std::process::exit(2);
    };
    let (batch, size, steps, threads): (i64, i64, usize, i32) = (
        batch.parse().unwrap(),
        size.parse().unwrap(),
        steps.parse().unwrap(),
        threads.parse().unwrap(),
    );
    tch::set_num_threads(threads);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = model(name, &vs.root());
    let config = SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        nesterov: false,
    };
    let mut opt = Sgd::new(config, single_group(&vs, 0.0));
    let data = Tensor::randint(256, [batch, 3, size, size], (Kind::Uint8, Device::Cpu));
    // VISAGE_BENCH_PRECISION=bf16: the forward pass under bfloat16 autocast.
    let bf16 = std::env::var("VISAGE_BENCH_PRECISION").as_deref() == Ok("bf16");
    let mut step = || {
        let x = data.to_kind(Kind::Float) / 255.0;
        let forward = || net.forward(&x, true).unwrap().remove(POOLED).unwrap();
        let pooled = match bf16 {
            true => visage_core::amp::autocast(Device::Cpu, Kind::BFloat16, forward).unwrap(),
            false => forward(),
        };
        let loss = pooled.to_kind(Kind::Float).pow_tensor_scalar(2).mean(Kind::Float);
        opt.zero_grad().unwrap();
        loss.backward();
        opt.step(visage_core::optimizer::StepInfo {
            step: 0,
            total: 1,
            lr_scale: 1.0,
        })
        .unwrap();
    };
    step(); // warm-up
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"side\": \"visage\", \"model\": \"{name}\", \"images_per_s\": {}}}",
        batch as f64 * steps as f64 / seconds
    );
}
