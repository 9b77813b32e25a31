//! The registry of named components.
//!
//! Plugins fill it in their registration function; the host looks
//! components up by kind and name, validates their parameters and builds
//! them. Registration methods are generic, so the code that decodes
//! parameters, builds the component and wraps it in a panic guard is compiled
//! into the plugin that registers it.

use std::collections::BTreeMap;

use crate::augmentation::Augmentation;
use crate::backbone::{Backbone, BackboneContext};
use crate::dataset::{Dataset, DatasetContext};
use crate::guard::{self, Guarded};
use crate::method::{Method, MethodContext};
use crate::metric::Metric;
use crate::optimizer::{Optimizer, OptimizerContext};
use crate::params::{self, Params};
use crate::scheduler::Scheduler;
use crate::task::{Protocol, Task, TaskContext};
use crate::{Error, Kind, ParamsError, Result};

/// A type-erased constructor: JSON parameters and a context in, a guarded component out.
type Build<C, T> = Box<dyn Fn(&str, &C) -> Result<Box<T>>>;
type BuildBackbone = Box<dyn Fn(&str, &BackboneContext<'_>) -> Result<Box<dyn Backbone>>>;
type BuildMethod = Box<dyn Fn(&str, &MethodContext<'_>) -> Result<Box<dyn Method>>>;
type BuildOptimizer = Box<dyn Fn(&str, &OptimizerContext<'_>) -> Result<Box<dyn Optimizer>>>;

/// What the registry knows about one component, whatever its kind.
pub struct ComponentInfo {
    /// The plugin that registered it.
    pub plugin: String,
    /// Protocols a task implements (empty for other kinds).
    pub protocols: Vec<Protocol>,
    schema: fn() -> String,
    normalize: fn(&str) -> Result<String, ParamsError>,
}

impl ComponentInfo {
    /// JSON Schema of the component's parameters.
    pub fn params_schema(&self) -> String {
        (self.schema)()
    }

    /// Checks `params` (JSON) against the component's parameter type and
    /// returns them with every default filled in.
    pub fn normalize(&self, params: &str) -> Result<String, ParamsError> {
        (self.normalize)(params)
    }
}

/// All registered components.
#[derive(Default)]
pub struct Registry {
    plugin: String,
    info: BTreeMap<(Kind, String), ComponentInfo>,
    backbones: BTreeMap<String, BuildBackbone>,
    methods: BTreeMap<String, BuildMethod>,
    tasks: BTreeMap<String, Build<TaskContext, dyn Task>>,
    datasets: BTreeMap<String, Build<DatasetContext, dyn Dataset>>,
    augmentations: BTreeMap<String, Build<(), dyn Augmentation>>,
    metrics: BTreeMap<String, Build<(), dyn Metric>>,
    optimizers: BTreeMap<String, BuildOptimizer>,
    schedulers: BTreeMap<String, Build<(), dyn Scheduler>>,
}

/// Wraps a typed constructor into one that decodes JSON parameters, builds,
/// guards and boxes, all inside a panic guard.
macro_rules! erase {
    ($label:expr, $build:expr, $ctx:ty, $dyn:ty) => {{
        let label: String = $label;
        let build = $build;
        Box::new(move |json: &str, ctx: &$ctx| -> Result<Box<$dyn>> {
            guard::call(&label, || {
                let params = params::decode(json)?;
                let component = build(params, ctx)?;
                Ok(Box::new(Guarded::new(label.clone(), component)) as Box<$dyn>)
            })
        })
    }};
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the plugin that the following registrations belong to (the host
    /// calls this before each plugin's registration).
    pub fn set_plugin(&mut self, plugin: &str) {
        self.plugin = plugin.to_string();
    }

    fn claim<P: Params>(&mut self, kind: Kind, name: &str, protocols: Vec<Protocol>) -> Result<String> {
        let key = (kind, name.to_string());
        if let Some(first) = self.info.get(&key) {
            return Err(Error::Duplicate {
                kind,
                name: name.to_string(),
                first: first.plugin.clone(),
                second: self.plugin.clone(),
            });
        }
        let info = ComponentInfo {
            plugin: self.plugin.clone(),
            protocols,
            schema: params::schema::<P>,
            normalize: params::normalize::<P>,
        };
        self.info.insert(key, info);
        tracing::debug!(plugin = %self.plugin, %kind, name, "registered component");
        Ok(format!("{kind} {name}"))
    }

    /// Registers a backbone constructor.
    ///
    /// ```ignore
    /// registry.backbone("tiny_convnet", |p: TinyParams, ctx| TinyConvNet::new(&ctx.vs, ctx.in_channels, &p))?;
    /// ```
    pub fn backbone<P, B, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        B: Backbone + 'static,
        F: for<'a> Fn(P, &BackboneContext<'a>) -> Result<B> + 'static,
    {
        let label = self.claim::<P>(Kind::Backbone, name, vec![])?;
        self.backbones.insert(
            name.to_string(),
            erase!(label, build, BackboneContext<'_>, dyn Backbone),
        );
        Ok(())
    }

    /// Registers a method constructor.
    pub fn method<P, M, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        M: Method + 'static,
        F: for<'a> Fn(P, &MethodContext<'a>) -> Result<M> + 'static,
    {
        let label = self.claim::<P>(Kind::Method, name, vec![])?;
        self.methods
            .insert(name.to_string(), erase!(label, build, MethodContext<'_>, dyn Method));
        Ok(())
    }

    /// Registers a task constructor with the protocols it implements.
    pub fn task<P, T, F>(&mut self, name: &str, protocols: &[Protocol], build: F) -> Result<()>
    where
        P: Params,
        T: Task + 'static,
        F: Fn(P, &TaskContext) -> Result<T> + 'static,
    {
        let label = self.claim::<P>(Kind::Task, name, protocols.to_vec())?;
        self.tasks
            .insert(name.to_string(), erase!(label, build, TaskContext, dyn Task));
        Ok(())
    }

    /// Registers a dataset constructor.
    pub fn dataset<P, D, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        D: Dataset + 'static,
        F: Fn(P, &DatasetContext) -> Result<D> + 'static,
    {
        let label = self.claim::<P>(Kind::Dataset, name, vec![])?;
        self.datasets
            .insert(name.to_string(), erase!(label, build, DatasetContext, dyn Dataset));
        Ok(())
    }

    /// Registers an augmentation constructor.
    pub fn augmentation<P, A, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        A: Augmentation + 'static,
        F: Fn(P, &()) -> Result<A> + 'static,
    {
        let label = self.claim::<P>(Kind::Augmentation, name, vec![])?;
        self.augmentations
            .insert(name.to_string(), erase!(label, build, (), dyn Augmentation));
        Ok(())
    }

    /// Registers a metric constructor.
    pub fn metric<P, M, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        M: Metric + 'static,
        F: Fn(P, &()) -> Result<M> + 'static,
    {
        let label = self.claim::<P>(Kind::Metric, name, vec![])?;
        self.metrics
            .insert(name.to_string(), erase!(label, build, (), dyn Metric));
        Ok(())
    }

    /// Registers an optimiser constructor.
    pub fn optimizer<P, O, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        O: Optimizer + 'static,
        F: for<'a> Fn(P, &OptimizerContext<'a>) -> Result<O> + 'static,
    {
        let label = self.claim::<P>(Kind::Optimizer, name, vec![])?;
        self.optimizers.insert(
            name.to_string(),
            erase!(label, build, OptimizerContext<'_>, dyn Optimizer),
        );
        Ok(())
    }

    /// Registers a scheduler constructor.
    pub fn scheduler<P, S, F>(&mut self, name: &str, build: F) -> Result<()>
    where
        P: Params,
        S: Scheduler + 'static,
        F: Fn(P, &()) -> Result<S> + 'static,
    {
        let label = self.claim::<P>(Kind::Scheduler, name, vec![])?;
        self.schedulers
            .insert(name.to_string(), erase!(label, build, (), dyn Scheduler));
        Ok(())
    }

    /// Information about a component, if registered.
    pub fn info(&self, kind: Kind, name: &str) -> Option<&ComponentInfo> {
        self.info.get(&(kind, name.to_string()))
    }

    /// Every registered component as `(kind, name, info)`, sorted.
    pub fn components(&self) -> impl Iterator<Item = (Kind, &str, &ComponentInfo)> {
        self.info.iter().map(|((k, n), i)| (*k, n.as_str(), i))
    }

    /// Names registered for `kind`, sorted.
    pub fn names(&self, kind: Kind) -> Vec<&str> {
        self.components()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, n, _)| n)
            .collect()
    }

    fn missing(&self, kind: Kind, name: &str) -> Error {
        Error::msg(format!(
            "unknown {kind} `{name}` (registered: {})",
            self.names(kind).join(", ")
        ))
    }

    /// Builds backbone `name` from JSON `params`.
    pub fn build_backbone(&self, name: &str, params: &str, ctx: &BackboneContext<'_>) -> Result<Box<dyn Backbone>> {
        let build = self
            .backbones
            .get(name)
            .ok_or_else(|| self.missing(Kind::Backbone, name))?;
        build(params, ctx)
    }

    /// Builds method `name` from JSON `params`.
    pub fn build_method(&self, name: &str, params: &str, ctx: &MethodContext<'_>) -> Result<Box<dyn Method>> {
        let build = self.methods.get(name).ok_or_else(|| self.missing(Kind::Method, name))?;
        build(params, ctx)
    }

    /// Builds task `name` from JSON `params`.
    pub fn build_task(&self, name: &str, params: &str, ctx: &TaskContext) -> Result<Box<dyn Task>> {
        let build = self.tasks.get(name).ok_or_else(|| self.missing(Kind::Task, name))?;
        build(params, ctx)
    }

    /// Builds dataset `name` from JSON `params`.
    pub fn build_dataset(&self, name: &str, params: &str, ctx: &DatasetContext) -> Result<Box<dyn Dataset>> {
        let build = self
            .datasets
            .get(name)
            .ok_or_else(|| self.missing(Kind::Dataset, name))?;
        build(params, ctx)
    }

    /// Builds augmentation `name` from JSON `params`.
    pub fn build_augmentation(&self, name: &str, params: &str) -> Result<Box<dyn Augmentation>> {
        let build = self
            .augmentations
            .get(name)
            .ok_or_else(|| self.missing(Kind::Augmentation, name))?;
        build(params, &())
    }

    /// Builds metric `name` from JSON `params`.
    pub fn build_metric(&self, name: &str, params: &str) -> Result<Box<dyn Metric>> {
        let build = self.metrics.get(name).ok_or_else(|| self.missing(Kind::Metric, name))?;
        build(params, &())
    }

    /// Builds optimiser `name` from JSON `params`.
    pub fn build_optimizer(&self, name: &str, params: &str, ctx: &OptimizerContext<'_>) -> Result<Box<dyn Optimizer>> {
        let build = self
            .optimizers
            .get(name)
            .ok_or_else(|| self.missing(Kind::Optimizer, name))?;
        build(params, ctx)
    }

    /// Builds scheduler `name` from JSON `params`.
    pub fn build_scheduler(&self, name: &str, params: &str) -> Result<Box<dyn Scheduler>> {
        let build = self
            .schedulers
            .get(name)
            .ok_or_else(|| self.missing(Kind::Scheduler, name))?;
        build(params, &())
    }
}
