//! `runner`: reads a YAML experiment, loads the plugins it needs, builds the
//! components they register, pre-trains, evaluates, and leaves a run
//! directory that explains and repeats the run.

mod config;
mod dynsym;
mod elf;
mod embed;
mod errors;
mod evaluate;
mod export;
mod host;
mod knn;
mod logging;
mod pretrain;
mod results;
mod run;
mod rundir;
mod scaffold;
mod schema;
mod seeds;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use config::Resolved;
use host::Host;

#[derive(Parser)]
#[command(
    name = "runner",
    version,
    about = "Visage: self-supervised face representation experiments"
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Log level or filter (overrides RUST_LOG), e.g. `debug` or `visage=debug`.
    #[arg(long, global = true)]
    log: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    /// The experiment file.
    #[arg(required = true)]
    experiment: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// Run directory (default: <output_dir>/<name>/<timestamp>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue a killed or failed run from its newest checkpoint: a run
    /// directory, or `auto` for the newest unfinished run of this experiment.
    #[arg(long, value_name = "RUN_DIR|auto")]
    resume: Option<String>,
    /// Run once per seed (`0-3`, `0,2,5`), each in `<out>/seed-<s>`, and
    /// report every metric's mean, std and range and the paired lead over
    /// random init (`<out>/seeds.json`). The same `--out` again continues
    /// the sweep.
    #[arg(long, value_name = "SEEDS", conflicts_with = "resume")]
    seeds: Option<String>,
}

#[derive(Args)]
struct Overrides {
    /// Override a value: `--set pretrain.steps=10` (repeatable; the value is YAML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve and check an experiment without building anything; print the resolved YAML.
    Validate {
        /// The experiment file.
        experiment: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
        /// Print each value with the file and line (or env, --set, default) it came from.
        #[arg(long)]
        origins: bool,
    },
    /// Write the experiment JSON Schema, including every plugin's parameters.
    Schema {
        /// Output file.
        #[arg(long, default_value = "schemas/experiment.schema.json")]
        out: PathBuf,
        /// Print to standard output instead.
        #[arg(long)]
        stdout: bool,
    },
    /// List plugins, their versions and components with parameter schemas, and the ABI fingerprint.
    Plugins,
    /// Write a trained backbone's features for images or a dataset as .npy.
    Embed(Box<embed::EmbedArgs>),
    /// Write a dataset split in a real face benchmark's on-disk layout.
    Export(Box<export::ExportArgs>),
    /// Create a plugin crate with one working component of KIND.
    NewPlugin {
        /// snake_case name of the plugin and its component.
        name: String,
        /// Component kind: backbone, method, task, dataset, augmentation, metric, optimizer or scheduler.
        #[arg(long)]
        kind: visage_core::Kind,
        /// Folder to create the crate in.
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", errors::describe(&e));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let json_log = logging::init(cli.log.as_deref())?;
    host::load_cuda_backend();
    match cli.command {
        None => {
            let experiment = cli.run.experiment.clone().context("an experiment file is required")?;
            run_experiment(&experiment, &cli.run, &json_log)
        }
        Some(Command::Validate {
            experiment,
            overrides,
            origins,
        }) => {
            let (resolved, _host) = resolve(&experiment, &overrides.sets)?;
            print!(
                "{}",
                if origins {
                    resolved.origins_listing()
                } else {
                    resolved.to_yaml()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Schema { out, stdout }) => {
            let host = Host::load(&host::default_dirs())?;
            let text = schema::render(&host.registry);
            if stdout {
                print!("{text}");
            } else {
                visage_core::fs::write_atomic(&out, text.as_bytes())?;
                tracing::info!(path = %out.display(), "wrote the experiment schema");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Plugins) => {
            let host = Host::load(&host::default_dirs())?;
            print!("{}", list_plugins(&host));
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Embed(args)) => {
            let host = Host::load(&host::default_dirs())?;
            embed::embed(&args, &host)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Export(args)) => {
            let host = Host::load(&host::default_dirs())?;
            export::export(&args, &host)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::NewPlugin { name, kind, dir }) => {
            let path = scaffold::new_plugin(&name, kind, &dir)?;
            println!(
                "created {}: build with ./runner (or cargo build --release) and check with ./runner plugins",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the experiment, the plugins it asks for, and checks its components.
fn resolve(experiment: &Path, sets: &[String]) -> anyhow::Result<(Resolved, Host)> {
    let mut resolved = Resolved::load(experiment, sets)?;
    let mut dirs = host::default_dirs();
    dirs.extend(resolved.plugin_dirs());
    let host = Host::load(&dirs)?;
    resolved.check_components(&host.registry)?;
    Ok((resolved, host))
}

fn run_experiment(experiment: &Path, args: &RunArgs, json_log: &logging::JsonLog) -> anyhow::Result<ExitCode> {
    if let Some(spec) = &args.seeds {
        let seeds = seeds::parse(spec).map_err(|e| anyhow::anyhow!("--seeds {spec}: {e}"))?;
        return run_seeds(experiment, args, &seeds, json_log);
    }
    let target = match &args.resume {
        Some(target) => Target::Resume(target.clone()),
        None => Target::New(args.out.clone()),
    };
    run_once(experiment, &args.overrides.sets, target, json_log)?;
    Ok(ExitCode::SUCCESS)
}

/// Where a run writes: a new directory (`--out`, or a fresh timestamp), or
/// an existing one to continue (`--resume`).
enum Target {
    New(Option<PathBuf>),
    Resume(String),
}

/// One run of the experiment; its directory and results.
fn run_once(
    experiment: &Path,
    sets: &[String],
    target: Target,
    json_log: &logging::JsonLog,
) -> anyhow::Result<(PathBuf, results::Results)> {
    let (resolved, host) = resolve(experiment, sets)?;
    let device = run::device(&resolved.experiment.device)?;
    run::check_precision(&resolved, device)?;
    // Built before the run directory, so that a batch larger than the data
    // (or a dataset that cannot be built) leaves no FAILED run behind.
    let prepared = run::prepare(&resolved, &host)?;
    let resumed = match &target {
        Target::Resume(target) => rundir::RunDir::resume(&resolved, target)?,
        Target::New(_) => None,
    };
    let resume = resumed.is_some();
    let dir = match (resumed, target) {
        (Some(dir), _) => dir,
        (None, Target::New(out)) => rundir::RunDir::create(&resolved, out.as_deref())?,
        (None, Target::Resume(_)) => rundir::RunDir::create(&resolved, None)?,
    };
    json_log
        .open(&dir.path.join("log.jsonl"))
        .with_context(|| format!("{}: cannot open the log", dir.path.display()))?;
    if resume {
        tracing::info!(run_dir = %dir.path.display(), "resuming");
    }
    let results = run::run(&resolved, &host, prepared, &dir, device, resume)?;
    Ok((dir.path, results))
}

/// `--seeds`: the experiment once per seed under one folder, then the
/// statistics over the seeds ([`seeds`]).
fn run_seeds(experiment: &Path, args: &RunArgs, list: &[u64], json_log: &logging::JsonLog) -> anyhow::Result<ExitCode> {
    let user_sets = &args.overrides.sets;
    if let Some(set) = user_sets.iter().find(|s| s.trim_start().starts_with("seed=")) {
        anyhow::bail!("--set {set}: --seeds gives each run its seed; leave `seed` out");
    }
    let sets_for = |seed: u64| -> Vec<String> {
        let mut sets = user_sets.clone();
        sets.push(seeds::seed_set(seed));
        sets
    };
    // A configuration error is the same for every seed: report it once.
    let (first, _) = resolve(experiment, &sets_for(list[0]))?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => first
            .experiment
            .output_dir
            .join(&first.experiment.name)
            .join(format!("{}-seeds", rundir::timestamp())),
    };
    let mut done = Vec::new();
    let mut failed = std::collections::BTreeMap::new();
    for &seed in list {
        // This seed's lines go to its own log, not the previous seed's.
        json_log.hold();
        let dir = seeds::run_dir(&out, seed);
        let sets = sets_for(seed);
        if let Some(results) = seeds::completed(&dir) {
            let (resolved, _) = resolve(experiment, &sets)?;
            rundir::check_same_config(&dir, &resolved)?;
            tracing::info!(seed, run_dir = %dir.display(), "seed already completed; its results are reused");
            done.push((seed, dir, results));
            continue;
        }
        let target = if dir.join("config.yaml").is_file() {
            Target::Resume(dir.display().to_string())
        } else {
            Target::New(Some(dir.clone()))
        };
        tracing::info!(seed, run_dir = %dir.display(), "seed {seed} ({} of {})", done.len() + failed.len() + 1, list.len());
        match run_once(experiment, &sets, target, json_log) {
            Ok((dir, results)) => done.push((seed, dir, results)),
            Err(e) => {
                let error = errors::describe(&e);
                tracing::error!(seed, %error, "seed failed; the sweep goes on");
                failed.insert(seed, error);
            }
        }
    }
    json_log.hold();
    let summary = seeds::summarise(&first.experiment.name, &done, failed);
    visage_core::fs::write_atomic(
        &out.join("seeds.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    print!("{}", seeds::render(&summary, &out));
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list_plugins(host: &Host) -> String {
    let mut out = String::new();
    for plugin in &host.plugins {
        out += &format!("{} {} ({})\n", plugin.name, plugin.version, plugin.path.display());
        for (kind, name, info) in host.registry.components().filter(|(_, _, i)| i.plugin == plugin.name) {
            let protocols: Vec<&str> = info.protocols.iter().map(|p| p.as_str()).collect();
            let protocols = if protocols.is_empty() {
                String::new()
            } else {
                format!(" [{}]", protocols.join(", "))
            };
            out += &format!("  {kind} {name}{protocols}\n    params: {}\n", info.params_schema());
        }
    }
    // Every plugin listed was built with this fingerprint: the host refuses others.
    out += &format!(
        "ABI fingerprint: {} (visage-core {})\n",
        visage_core::ABI,
        visage_core::CORE_VERSION
    );
    out
}
