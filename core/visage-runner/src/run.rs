//! `runner EXPERIMENT`: pre-train, evaluate, and leave a run directory.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use tch::{nn, Device};
use visage_core::backbone::{Backbone, BackboneContext};
use visage_core::dataset::{Dataset, DatasetContext, Split};
use visage_core::nn::weights::{export_safetensors, load_weights};
use visage_core::teacher::{BackboneSpec, BACKBONE_JSON, BACKBONE_WEIGHTS};

use crate::config::{parse_device, Resolved};
use crate::host::Host;
use crate::results::{EvaluationResult, Results, Status};
use crate::rundir::RunDir;
use visage_core::task::Protocol;
use visage_core::train::Precision;

/// The variable-store path of the backbone.
pub const BACKBONE: &str = "backbone";

/// Channels of the images every dataset produces (RGB).
pub const IN_CHANNELS: i64 = 3;

/// What is built before the run directory, so that its errors leave none.
pub struct Prepared {
    /// The pre-training dataset (train split), checked against the batch size.
    pub pretrain_dataset: Option<Box<dyn Dataset>>,
}

/// Builds the pre-training dataset and checks `pretrain.batch_size`
/// against its size, and `pretrain.per_identity` against its identities:
/// before the run directory exists, so that a batch
/// larger than the data is refused with the key, not an allocation failure.
pub fn prepare(resolved: &Resolved, host: &Host) -> anyhow::Result<Prepared> {
    for index in 0..resolved.experiment.evaluations.len() {
        check_evaluation(resolved, host, index)?;
    }
    let experiment = &resolved.experiment;
    let Some(pretrain) = &experiment.pretrain else {
        return Ok(Prepared { pretrain_dataset: None });
    };
    let dataset = host
        .registry
        .build_dataset(
            &pretrain.dataset.name,
            &pretrain.dataset.params.to_string(),
            &DatasetContext {
                split: Split::Train,
                seed: experiment.seed,
            },
        )
        .with_context(|| format!("pretrain.dataset `{}`", pretrain.dataset.name))?;
    let len = dataset.len();
    if len == 0 {
        let message = format!("dataset `{}` is empty", pretrain.dataset.name);
        return Err(resolved.invalid(&["pretrain", "dataset"], message).into());
    }
    if pretrain.batch_size > len {
        let message = format!(
            "{} is larger than the dataset: `{}` has {len} samples in its train split, and a batch holds \
             each sample at most once",
            pretrain.batch_size, pretrain.dataset.name
        );
        return Err(resolved.invalid(&["pretrain", "batch_size"], message).into());
    }
    if let Some(k) = pretrain.per_identity {
        if let Some(index) = (0..len).find(|&i| dataset.identity(i).is_none()) {
            let message = format!(
                "{k} pictures per identity needs each sample's identity, and dataset `{}` does not give \
                 one for sample {index} (`synthface` does; remove the key for a uniform shuffle)",
                pretrain.dataset.name
            );
            return Err(resolved.invalid(&["pretrain", "per_identity"], message).into());
        }
    }
    Ok(Prepared {
        pretrain_dataset: Some(dataset),
    })
}

/// Builds evaluation `index`'s task (under each protocol it will run) and
/// its two splits, and lets the task check that the data carry what it
/// needs: a missing label, landmark layout or pair list is refused here,
/// before pre-training, naming the evaluation's `task` key.
fn check_evaluation(resolved: &Resolved, host: &Host, index: usize) -> anyhow::Result<()> {
    let evaluation = &resolved.experiment.evaluations[index];
    let info = |split| -> anyhow::Result<_> {
        let ctx = DatasetContext {
            split,
            seed: resolved.experiment.seed,
        };
        let name = &evaluation.dataset.name;
        let dataset = host
            .registry
            .build_dataset(name, &evaluation.dataset.params.to_string(), &ctx)
            .with_context(|| format!("evaluations[{index}].dataset `{name}`"))?;
        Ok(dataset.info())
    };
    let (train, test) = (info(Split::Train)?, info(Split::Test)?);
    // (protocol, whether it is the supervised twin)
    let mut protocols = vec![(evaluation.protocol, false)];
    if evaluation.supervised {
        protocols.push((Protocol::FineTune, true));
    }
    for (protocol, twin) in protocols {
        let (params, key) = match (&evaluation.supervised_params, twin) {
            (Some(params), true) => (params, "supervised_params"),
            _ => (&evaluation.task.params, "task"),
        };
        let ctx = visage_core::task::TaskContext { protocol };
        let task = match host
            .registry
            .build_task(&evaluation.task.name, &params.to_string(), &ctx)
        {
            Ok(task) => task,
            Err(e) if key == "supervised_params" => {
                let message = format!(
                    "the supervised twin's parameters of task `{}`: {e}",
                    evaluation.task.name
                );
                return Err(resolved
                    .invalid(&["evaluations", &index.to_string(), key], message)
                    .into());
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("evaluations[{index}].task `{}`", evaluation.task.name))
                )
            }
        };
        if let Err(e) = task.check(&train, &test) {
            let message = format!(
                "`{}` cannot run on dataset `{}`: {e}",
                evaluation.task.name, evaluation.dataset.name
            );
            return Err(resolved
                .invalid(&["evaluations", &index.to_string(), "task"], message)
                .into());
        }
    }
    Ok(())
}

/// Runs the experiment; `results.json` is written whether it completes or fails.
pub fn run(
    resolved: &Resolved,
    host: &Host,
    prepared: Prepared,
    dir: &RunDir,
    device: Device,
    resume: bool,
) -> anyhow::Result<Results> {
    if !resume {
        dir.record_start(resolved, &host.plugins, device)?;
    }
    tracing::info!(run_dir = %dir.path.display(), ?device, "run started");
    let started = Instant::now();
    let mut results = Results {
        experiment: resolved.experiment.name.clone(),
        status: Status::Failed,
        error: None,
        evaluations: vec![],
        pretrain: None,
    };
    let outcome = stages(resolved, host, prepared, device, dir, resume, &mut results);
    match &outcome {
        Ok(()) => results.status = Status::Completed,
        Err(e) => results.error = Some(crate::errors::describe(e)),
    }
    let written = dir.write("results.json", serde_json::to_string_pretty(&results)?.as_bytes());
    print_summary(&results, &dir.path, started.elapsed().as_secs_f64());
    match (outcome, written) {
        (Ok(()), Ok(())) => Ok(results),
        (Ok(()), Err(e)) => Err(e),
        // The first failure is the one to report (a full disk fails the
        // checkpoint before results.json).
        (Err(e), Err(results_error)) => Err(e.context(format!(
            "and results.json could not be written: {}",
            crate::errors::describe(&results_error)
        ))),
        (Err(e), Ok(())) => Err(e),
    }
}

/// The device `spec` names, checked against the devices this machine has.
pub fn device(spec: &str) -> anyhow::Result<Device> {
    let device = parse_device(spec).map_err(anyhow::Error::msg)?;
    if let Device::Cuda(n) = device {
        let available = tch::Cuda::device_count() as usize;
        anyhow::ensure!(
            n < available,
            "device `{spec}` asked for, but {available} CUDA device(s) are available"
        );
    }
    Ok(device)
}

/// Refuses a precision the device cannot run, before anything is created.
pub fn check_precision(resolved: &Resolved, device: Device) -> anyhow::Result<()> {
    let Some(pretrain) = &resolved.experiment.pretrain else {
        return Ok(());
    };
    match pretrain.precision {
        Precision::Fp32 => Ok(()),
        Precision::Fp16 => {
            anyhow::ensure!(
                device.is_cuda(),
                "pretrain.precision: fp16 runs on CUDA only (libtorch's CPU float16 kernels are slow or missing); \
                 the device is {device:?}: use bf16 or fp32"
            );
            Ok(())
        }
        Precision::Bf16 => Ok(()),
    }
}

/// The backbone, initialised from the seed (the same for the same seed),
/// then from the experiment's `backbone.weights` when `pretrained`.
fn build_backbone(
    host: &Host,
    resolved: &Resolved,
    device: Device,
    pretrained: bool,
) -> anyhow::Result<(nn::VarStore, Box<dyn Backbone>)> {
    let spec = &resolved.experiment.backbone;
    tch::manual_seed(resolved.experiment.seed as i64);
    let vs = nn::VarStore::new(device);
    let ctx = BackboneContext {
        vs: vs.root() / BACKBONE,
        in_channels: IN_CHANNELS,
    };
    let backbone = host
        .registry
        .build_backbone(&spec.name, &spec.params.to_string(), &ctx)?;
    if let Some(weights) = resolved.backbone_weights()?.filter(|_| pretrained) {
        load_weights(&vs, BACKBONE, &weights)?;
    }
    Ok((vs, backbone))
}

/// A trainable copy of the backbone held in `source` (under [`BACKBONE`]):
/// the same architecture built in `vs` under `prefix`, its variables set to
/// the source's values.
fn copy_backbone(
    host: &Host,
    resolved: &Resolved,
    source: &nn::VarStore,
    vs: &mut nn::VarStore,
    prefix: &str,
) -> visage_core::Result<Box<dyn Backbone>> {
    let spec = &resolved.experiment.backbone;
    let ctx = BackboneContext {
        vs: vs.root() / prefix,
        in_channels: IN_CHANNELS,
    };
    let copy = host
        .registry
        .build_backbone(&spec.name, &spec.params.to_string(), &ctx)?;
    let from = source.variables();
    let _no_grad = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        let Some(relative) = name.strip_prefix(prefix).and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        let original = from
            .get(&format!("{BACKBONE}.{relative}"))
            .ok_or_else(|| visage_core::Error::msg(format!("backbone copy: variable `{relative}` has no original")))?;
        var.copy_(original);
    }
    Ok(copy)
}

fn stages(
    resolved: &Resolved,
    host: &Host,
    prepared: Prepared,
    device: Device,
    dir: &RunDir,
    resume: bool,
    results: &mut Results,
) -> anyhow::Result<()> {
    let experiment = &resolved.experiment;
    let (mut vs, backbone) = build_backbone(host, resolved, device, true)?;
    if let (Some(pretrain), Some(dataset)) = (&experiment.pretrain, prepared.pretrain_dataset) {
        tracing::info!(method = %pretrain.method.name, steps = pretrain.steps, "pre-training");
        let spec = BackboneSpec {
            name: experiment.backbone.name.clone(),
            params: experiment.backbone.params.clone(),
        };
        let summary = crate::pretrain::pretrain(
            &host.registry,
            pretrain,
            dataset,
            experiment.seed,
            &mut vs,
            backbone.as_ref(),
            &spec,
            device,
            &dir.path,
            resume,
        )?;
        results.pretrain = Some(summary);
        // The trained backbone under the PyTorch model's parameter names,
        // and what it is, for `from_run` in other experiments.
        export_safetensors(&vs, BACKBONE, &dir.path.join(BACKBONE_WEIGHTS))?;
        let described = serde_json::to_string_pretty(&spec)?;
        visage_core::fs::write_atomic(&dir.path.join(BACKBONE_JSON), described.as_bytes())?;
    }
    for (index, evaluation) in experiment.evaluations.iter().enumerate() {
        tracing::info!(task = %evaluation.task.name, protocol = evaluation.protocol.as_str(), "evaluating");
        let folder = dir
            .path
            .join("evaluations")
            .join(format!("{index}-{}", evaluation.task.name));
        // Created by a task's trainer when it writes there.
        let pretrained = folder.join("pretrained");
        let place = |dir: &Path| crate::evaluate::Placement {
            dir: dir.to_path_buf(),
            resume,
            seed: experiment.seed,
            device,
        };
        let evaluate = |vs: &nn::VarStore, backbone: &dyn Backbone, dir: &Path, protocol, task_params| {
            let copy = |into: &mut nn::VarStore, prefix: &str| copy_backbone(host, resolved, vs, into, prefix);
            let on = crate::evaluate::Subject {
                backbone,
                copy: &copy,
                protocol,
                task_params,
            };
            crate::evaluate::evaluate(&host.registry, evaluation, &on, &place(dir))
        };
        let params = &evaluation.task.params;
        let metrics = evaluate(&vs, backbone.as_ref(), &pretrained, evaluation.protocol, params)?;
        let copy = |into: &mut nn::VarStore, prefix: &str| copy_backbone(host, resolved, &vs, into, prefix);
        let on = crate::evaluate::Subject {
            backbone: backbone.as_ref(),
            copy: &copy,
            protocol: evaluation.protocol,
            task_params: &evaluation.task.params,
        };
        let constant = crate::evaluate::constant(&host.registry, evaluation, &on, &place(&pretrained))?;
        let random_init = if evaluation.random_init {
            let (fresh_vs, fresh) = build_backbone(host, resolved, device, false)?;
            let twin = folder.join("random_init");
            Some(evaluate(&fresh_vs, fresh.as_ref(), &twin, evaluation.protocol, params)?)
        } else {
            None
        };
        let supervised = if evaluation.supervised {
            let (fresh_vs, fresh) = build_backbone(host, resolved, device, false)?;
            let twin = folder.join("supervised");
            let params = evaluation.supervised_params.as_ref().unwrap_or(params);
            Some(evaluate(&fresh_vs, fresh.as_ref(), &twin, Protocol::FineTune, params)?)
        } else {
            None
        };
        results.evaluations.push(EvaluationResult {
            task: evaluation.task.name.clone(),
            protocol: evaluation.protocol,
            dataset: evaluation.dataset.name.clone(),
            metrics,
            random_init,
            supervised,
            constant,
        });
    }
    Ok(())
}

fn print_summary(results: &Results, dir: &Path, seconds: f64) {
    let status = match results.status {
        Status::Completed => "completed",
        Status::Failed => "FAILED",
    };
    println!("\n{} {status} in {seconds:.1} s", results.experiment);
    if let Some(p) = &results.pretrain {
        let losses: Vec<String> = p
            .final_losses
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} {:.4} -> {v:.4}",
                    p.first_losses.get(k).copied().unwrap_or(f64::NAN)
                )
            })
            .collect();
        println!("  pretrain: {} steps; {}", p.steps, losses.join(", "));
    }
    for e in &results.evaluations {
        println!("  {} ({}, {}):", e.task, e.protocol.as_str(), e.dataset);
        let mut header = format!("    {:<24} {:>9}", "metric", "value");
        if e.random_init.is_some() {
            header.push_str(&format!(" {:>12}", "random init"));
        }
        if e.supervised.is_some() {
            header.push_str(&format!(" {:>11}", "supervised"));
        }
        if e.constant.is_some() {
            header.push_str(&format!(" {:>9}", "constant"));
        }
        println!("{header}");
        let twin = |twin: &Option<std::collections::BTreeMap<String, f64>>, metric: &str, width: usize| {
            twin.as_ref()
                .map(|t| match t.get(metric) {
                    Some(v) => format!(" {v:>width$.2}"),
                    None => format!(" {:>width$}", "-"),
                })
                .unwrap_or_default()
        };
        for (metric, value) in &e.metrics {
            println!(
                "    {metric:<24} {value:>9.2}{}{}{}",
                twin(&e.random_init, metric, 12),
                twin(&e.supervised, metric, 11),
                twin(&e.constant, metric, 9)
            );
        }
    }
    if let Some(error) = &results.error {
        println!("  error: {error}");
    }
    println!("  run directory: {}", dir.display());
}
