//! The loader: batches produced on a pool of threads, handed out in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tch::{Device, Tensor};

use super::order::{IdentityRuns, PermutationCache, Plan, Sampling};
use crate::augmentation::Augmentation;
use crate::dataset::Dataset;
use crate::guard;
use crate::rng::Rng;
use crate::{Batch, Error, Result, Sample};

/// How a [`Loader`] runs.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Samples per batch (at least 1).
    pub batch_size: usize,
    /// Worker threads; 0 produces each batch on the calling thread when it
    /// is asked for. The batches are the same for every value.
    pub workers: usize,
    /// Batches produced ahead of the consumer, at most (at least 1 with
    /// workers; values below `workers` leave workers idle). Memory held by
    /// the loader is bounded by `prefetch` batches plus one per worker being
    /// collated.
    pub prefetch: usize,
    /// The experiment seed: order and augmentation derive from it.
    pub seed: u64,
    /// The order of samples.
    pub sampling: Sampling,
    /// Shuffle in runs of this many pictures of one identity (P x K
    /// sampling), so that a batch holds `batch_size / per_identity` people
    /// and its negatives share the anchor's identity; `None`: a uniform
    /// shuffle. Needs a dataset whose [`Dataset::identity`] knows every
    /// sample. Applies to the shuffled orders only.
    pub per_identity: Option<usize>,
    /// Where the batches will be used: on CUDA, workers pin the batch
    /// tensors (page-locked memory) so that the copy to the GPU is fast.
    pub device: Device,
}

impl LoaderConfig {
    /// One pass over a dataset in index order, every sample once and the
    /// last batch short (feature extraction, scoring), with `workers`
    /// threads and twice as many batches of prefetch.
    pub fn in_order(batch_size: usize, workers: usize, seed: u64, device: Device) -> Self {
        LoaderConfig {
            batch_size,
            workers,
            prefetch: workers.max(1) * 2,
            seed,
            sampling: Sampling::Epoch {
                epoch: 0,
                shuffle: false,
                drop_last: false,
            },
            per_identity: None,
            device,
        }
    }
}

/// `count` extra views of every sample, each made by applying
/// `augmentations` to a copy of the sample after the loader's own
/// augmentations (e.g. DINO: 2 global and 8 local crops). View `c` of group
/// `g` draws augmentation `k` with the seed of
/// `(seed, epoch, index, VIEWS, g, c, k)`, so views are reproducible and
/// independent of each other, except at the `shared_steps`: there every
/// view of every group that shares step `k` draws it with the seed of
/// `(seed, epoch, index, VIEWS, SHARED, k)`, so that one draw can serve
/// several views (PCL's pair of distance crops). A view is a [`Sample`]:
/// its labels are the sample's, moved by the view's augmentations as its
/// pixels were.
pub struct ViewGroup {
    /// Views in the group.
    pub count: usize,
    /// The chain that makes each view.
    pub augmentations: Vec<Box<dyn Augmentation>>,
    /// Positions in `augmentations` whose seed is shared (see above).
    pub shared_steps: Vec<usize>,
}

/// Stream of the view seeds, apart from the sample's own augmentation.
const VIEWS: u64 = 0x7669_6577;
/// Stream of the seeds of shared view steps.
const SHARED: u64 = 0x7368_6172;

/// Batches of a dataset, decoded and augmented on a pool of threads.
///
/// Batch `b` is a pure function of `(seed, sampling, b)`: its samples are
/// given by [`Sampling`], and augmentation `k` of sample `index` in epoch
/// `epoch` gets the seed `Rng::new(&[seed, epoch, index, k]).next_u64()`.
/// Workers take batch numbers in turn and each builds whole batches; a
/// reorder buffer hands them to the consumer in order, so the output is
/// bit-identical for any number of workers (libtorch ops in the loader run
/// with one intra-op thread on every path, see below).
///
/// **Bad samples.** A sample whose dataset returns
/// [`Error::BadSample`] with `skip: true` (`on_bad_sample: skip`) is logged
/// (`warn`, naming the file) and replaced, so that batches stay full: the
/// loader tries the following dataset indices `index + 1, index + 2, ...`
/// (wrapping) and takes the first good one, augmented with the seed
/// `Rng::new(&[seed, epoch, replacement, k, REPLACED, index])` so that it
/// is not a copy of that sample's own view. The replacement depends only on
/// the batch, so the order stays deterministic and a resumed run sees the
/// same batches. The number skipped is logged when an epoch ends (for an
/// endless stream: when the first batch of the next epoch is handed out, and
/// when the loader is dropped). Any other error, or a bad sample without
/// `skip`, is returned in place of the batch.
///
/// **Threads.** Workers are `std::thread`s. Each sets libtorch's intra-op
/// threads to 1 for itself (libtorch's OpenMP setting is per thread), so
/// `workers` threads decode and augment without oversubscribing the cores
/// the training thread's own intra-op pool uses. With `workers: 0` each
/// batch is built synchronously when asked for, on a short-lived helper
/// thread with the same setting: the caller waits for it, nothing is built
/// ahead, and the caller's own libtorch settings stay untouched (changing
/// and restoring them is not neutral: libtorch's `set_num_threads` also
/// fixes MKL's dynamic threading, which changed training numerics).
/// A panic in a dataset or augmentation is caught and returned as
/// [`Error::Panic`]; dropping the loader stops and joins the workers.
///
/// ```
/// use std::sync::Arc;
/// use tch::{Device, Kind, Tensor};
/// use visage_core::data::{Loader, LoaderConfig, Sampling};
/// use visage_core::dataset::Dataset;
/// use visage_core::{Result, Sample};
///
/// struct Ramp;
/// impl Dataset for Ramp {
///     fn len(&self) -> usize { 10 }
///     fn get(&self, index: usize) -> Result<Sample> {
///         Ok(Sample::new(Tensor::full([3, 2, 2], index as f64, (Kind::Float, Device::Cpu))))
///     }
/// }
///
/// let config = LoaderConfig {
///     batch_size: 4,
///     workers: 2,
///     prefetch: 4,
///     seed: 0,
///     sampling: Sampling::Epoch { epoch: 0, shuffle: false, drop_last: true },
///     per_identity: None,
///     device: Device::Cpu,
/// };
/// let loader = Loader::new(Arc::new(Ramp), Arc::new([]), config)?;
/// let batches = loader.collect::<Result<Vec<_>>>()?;
/// assert_eq!(batches.len(), 2); // 10 samples, 4 per batch, the last 2 dropped
/// assert_eq!(batches[1].images.size(), vec![4, 3, 2, 2]);
/// assert_eq!(batches[1].images.double_value(&[0, 0, 0, 0]), 4.0);
/// # Ok::<(), visage_core::Error>(())
/// ```
pub struct Loader {
    producer: Arc<Producer>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    cache: PermutationCache,
    next: usize,
    skipped: BTreeMap<u64, usize>,
    total_skipped: usize,
}

/// The identity runs of `dataset` (see [`LoaderConfig::per_identity`]).
fn identity_runs(dataset: &dyn Dataset, per_identity: usize) -> Result<IdentityRuns> {
    if per_identity == 0 {
        return Err(Error::msg("the loader's per_identity must be at least 1"));
    }
    let identities = (0..dataset.len())
        .map(|i| {
            dataset.identity(i).ok_or_else(|| {
                Error::msg(format!(
                    "sampling {per_identity} pictures per identity needs the identity of every \
                     sample without reading it, and the dataset does not give one for sample {i}"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(IdentityRuns::new(&identities, per_identity))
}

/// Stream of the augmentation seeds of replacement samples.
const REPLACED: u64 = 0x5e1ec7;

struct Producer {
    plan: Plan,
    dataset: Arc<dyn Dataset>,
    augmentations: Arc<[Box<dyn Augmentation>]>,
    views: Arc<[ViewGroup]>,
    pin: Option<Device>,
}

/// A batch with what the consumer logs about it.
struct Produced {
    batch: Result<Batch>,
    first_epoch: u64,
    skipped_epochs: Vec<u64>,
}

struct State {
    /// The next batch a worker will take.
    next_task: usize,
    /// Batches handed to the consumer.
    taken: usize,
    ready: BTreeMap<usize, Produced>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    prefetch: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock (its work runs under
        // catch_unwind outside it), so a poisoned lock still holds valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

impl Loader {
    /// Starts the workers (if any) on `dataset` with `augmentations` applied
    /// in order to every sample.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        augmentations: Arc<[Box<dyn Augmentation>]>,
        config: LoaderConfig,
    ) -> Result<Loader> {
        Loader::with_views(dataset, augmentations, Arc::from(vec![]), config)
    }

    /// As [`Loader::new`], and every sample also gets the extra views of
    /// `views` (see [`ViewGroup`]); batches hold them in `Batch::views`.
    pub fn with_views(
        dataset: Arc<dyn Dataset>,
        augmentations: Arc<[Box<dyn Augmentation>]>,
        views: Arc<[ViewGroup]>,
        config: LoaderConfig,
    ) -> Result<Loader> {
        if config.batch_size == 0 {
            return Err(Error::msg("the loader's batch_size must be at least 1"));
        }
        if config.workers > 0 && config.prefetch == 0 {
            return Err(Error::msg(
                "the loader's prefetch must be at least 1 when it has workers",
            ));
        }
        let len = dataset.len();
        if len == 0 {
            return Err(Error::msg("the loader's dataset is empty"));
        }
        for (g, group) in views.iter().enumerate() {
            if let Some(k) = group.shared_steps.iter().find(|&&k| k >= group.augmentations.len()) {
                return Err(Error::msg(format!(
                    "view group {g} shares step {k}, but its chain has {} augmentation(s)",
                    group.augmentations.len()
                )));
            }
        }
        let identity_runs = match config.per_identity {
            Some(k) => Some(identity_runs(dataset.as_ref(), k)?),
            None => None,
        };
        let producer = Arc::new(Producer {
            plan: Plan {
                seed: config.seed,
                len,
                batch_size: config.batch_size,
                sampling: config.sampling,
                identity_runs,
            },
            dataset,
            augmentations,
            views,
            pin: config.device.is_cuda().then_some(config.device),
        });
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_task: 0,
                taken: 0,
                ready: BTreeMap::new(),
                shutdown: false,
            }),
            changed: Condvar::new(),
            prefetch: config.prefetch,
        });
        let mut threads = Vec::with_capacity(config.workers);
        for w in 0..config.workers {
            let (p, s) = (producer.clone(), shared.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("visage-loader-{w}"))
                .spawn(move || work(&p, &s));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // Dropping the loader stops and joins the started workers.
                    drop(Loader::assemble(producer, shared, threads));
                    return Err(Error::msg(format!("cannot start a loader thread: {e}")));
                }
            }
        }
        Ok(Loader::assemble(producer, shared, threads))
    }

    fn assemble(producer: Arc<Producer>, shared: Arc<Shared>, threads: Vec<JoinHandle<()>>) -> Loader {
        Loader {
            producer,
            shared,
            threads,
            cache: PermutationCache::default(),
            next: 0,
            skipped: BTreeMap::new(),
            total_skipped: 0,
        }
    }

    /// Number of batches this loader yields; `None` for an endless stream.
    pub fn batches(&self) -> Option<usize> {
        self.producer.plan.batches()
    }

    /// Samples replaced so far because they were bad (`on_bad_sample: skip`),
    /// counting only batches already handed out.
    pub fn skipped(&self) -> usize {
        self.total_skipped
    }

    /// The next batch; `None` after the last one of an epoch.
    pub fn next_batch(&mut self) -> Option<Result<Batch>> {
        if self.batches().is_some_and(|n| self.next >= n) {
            self.log_skipped(u64::MAX);
            return None;
        }
        let produced = if self.threads.is_empty() {
            let producer = self.producer.clone();
            let (b, cache) = (self.next, &mut self.cache);
            with_one_thread(|| produce(&producer, b, cache)).unwrap_or_else(|e| {
                Some(Produced {
                    batch: Err(e),
                    first_epoch: 0,
                    skipped_epochs: vec![],
                })
            })
        } else {
            let mut state = self.shared.lock();
            let produced = loop {
                if let Some(p) = state.ready.remove(&self.next) {
                    break p;
                }
                state = self.shared.wait(state);
            };
            state.taken = self.next + 1;
            drop(state);
            self.shared.changed.notify_all();
            Some(produced)
        }?;
        self.next += 1;
        self.total_skipped += produced.skipped_epochs.len();
        for epoch in produced.skipped_epochs {
            *self.skipped.entry(epoch).or_default() += 1;
        }
        self.log_skipped(produced.first_epoch);
        Some(produced.batch)
    }

    /// Logs and forgets the skip counts of epochs before `current`.
    fn log_skipped(&mut self, current: u64) {
        let done: Vec<u64> = self.skipped.range(..current).map(|(e, _)| *e).collect();
        for epoch in done {
            let count = self.skipped.remove(&epoch).unwrap_or(0);
            tracing::warn!(epoch, skipped = count, "{count} bad samples skipped in epoch {epoch}");
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        self.next_batch()
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
        self.log_skipped(u64::MAX);
    }
}

/// A worker: takes batch numbers in turn while fewer than `prefetch` batches
/// are ahead of the consumer.
fn work(producer: &Producer, shared: &Shared) {
    single_threaded();
    let mut cache = PermutationCache::default();
    loop {
        let b = {
            let mut state = shared.lock();
            loop {
                if state.shutdown {
                    return;
                }
                if state.next_task < state.taken + shared.prefetch {
                    break;
                }
                state = shared.wait(state);
            }
            state.next_task += 1;
            state.next_task - 1
        };
        let Some(produced) = produce(producer, b, &mut cache) else {
            return;
        };
        shared.lock().ready.insert(b, produced);
        shared.changed.notify_all();
    }
}

/// Batch `b`, with panics caught; `None` past the end.
fn produce(producer: &Producer, b: usize, cache: &mut PermutationCache) -> Option<Produced> {
    let items = producer.plan.batch(b, cache)?;
    let first_epoch = items.first().map_or(0, |i| i.0);
    let mut skipped_epochs = vec![];
    let batch = guard::call("data loader", || producer.batch(&items, &mut skipped_epochs));
    Some(Produced {
        batch,
        first_epoch,
        skipped_epochs,
    })
}

impl Producer {
    fn batch(&self, items: &[(u64, usize)], skipped: &mut Vec<u64>) -> Result<Batch> {
        let len = self.plan.len;
        // A failed allocation is an error here, not an abort of the process.
        let mut samples = Vec::new();
        samples
            .try_reserve_exact(items.len())
            .map_err(|e| Error::msg(format!("cannot allocate a batch of {} samples: {e}", items.len())))?;
        let mut indices = Vec::with_capacity(items.len());
        for &(epoch, index) in items {
            let mut candidate = index;
            let sample = loop {
                let replaces = (candidate != index).then_some(index);
                match self.sample(epoch, candidate, replaces) {
                    Err(Error::BadSample {
                        path,
                        message,
                        skip: true,
                    }) => {
                        tracing::warn!(file = %path.display(), epoch, index = candidate, "bad sample skipped: {message}");
                        skipped.push(epoch);
                        candidate = (candidate + 1) % len;
                        if candidate == index {
                            return Err(Error::msg(format!(
                                "every one of the {len} samples of the dataset is bad (on_bad_sample: skip); \
                                 the last: {}: {message}",
                                path.display()
                            )));
                        }
                    }
                    Err(e @ Error::BadSample { .. }) => return Err(e),
                    other => break other.map_err(|e| self.at(candidate, e))?,
                }
            };
            samples.push(sample);
            indices.push(candidate);
        }
        let batch = Batch::collate_named(samples, &|i| self.name(indices[i]))?;
        match self.pin {
            // Page-locked host memory for fast, asynchronous copies to CUDA.
            // (Not exercised by the tests: the test machines have no GPU.)
            Some(device) => Ok(batch.map_tensors(&|t| t.f_pin_memory(device))?),
            None => Ok(batch),
        }
    }

    /// Dataset sample `index` in messages: its file where it has one.
    fn name(&self, index: usize) -> String {
        match self.dataset.source(index) {
            Some(path) => format!("{} (dataset sample {index})", path.display()),
            None => format!("dataset sample {index}"),
        }
    }

    /// An error met while augmenting dataset sample `index`, naming its file.
    fn at(&self, index: usize, e: Error) -> Error {
        match (e, self.dataset.source(index)) {
            (e @ Error::Panic { .. }, _) => e,
            (e, Some(path)) => Error::msg(format!("{}: {e}", path.display())),
            (e, None) => e,
        }
    }

    fn sample(&self, epoch: u64, index: usize, replaces: Option<usize>) -> Result<Sample> {
        let mut sample = self.dataset.get(index)?;
        for (k, augmentation) in self.augmentations.iter().enumerate() {
            let seed = match replaces {
                None => Rng::new(&[self.plan.seed, epoch, index as u64, k as u64]),
                Some(o) => Rng::new(&[self.plan.seed, epoch, index as u64, k as u64, REPLACED, o as u64]),
            }
            .next_u64();
            sample = augmentation.apply(sample, seed)?;
        }
        for (g, group) in self.views.iter().enumerate() {
            for c in 0..group.count {
                let mut view = Sample::new(f_copy(&sample.image)?);
                view.labels = sample
                    .labels
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), f_copy(v)?)))
                    .collect::<Result<_>>()?;
                for (k, augmentation) in group.augmentations.iter().enumerate() {
                    let mut parts = if group.shared_steps.contains(&k) {
                        vec![self.plan.seed, epoch, index as u64, VIEWS, SHARED, k as u64]
                    } else {
                        vec![self.plan.seed, epoch, index as u64, VIEWS, g as u64, c as u64, k as u64]
                    };
                    if let Some(o) = replaces {
                        parts.extend([REPLACED, o as u64]);
                    }
                    view = augmentation.apply(view, Rng::new(&parts).next_u64())?;
                }
                sample.views.push(view);
            }
        }
        Ok(sample)
    }
}

/// `t.copy()`, with a failed allocation as an error.
fn f_copy(t: &Tensor) -> Result<Tensor> {
    let mut copy = t.f_zeros_like()?;
    copy.f_copy_(t)?;
    Ok(copy)
}

/// Runs `f` synchronously on a short-lived helper thread with one libtorch
/// intra-op thread. Changing the calling thread's own setting and back is
/// not neutral (libtorch's `set_num_threads` also fixes MKL's dynamic
/// threading), and would change the training thread's numerics.
fn with_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("visage-loader".into())
            .spawn_scoped(scope, || {
                single_threaded();
                f()
            })
            .map_err(|e| Error::msg(format!("cannot start a loader thread: {e}")))?;
        helper
            .join()
            .map_err(|_| Error::msg("a loader thread panicked outside a dataset or augmentation"))
    })
}

/// One libtorch intra-op thread for the calling thread. Its thread setting
/// is initialised first, so that a later lazy initialisation (which copies
/// the process-wide value) does not overwrite the 1.
fn single_threaded() {
    let _ = tch::get_num_threads();
    tch::set_num_threads(1);
}
