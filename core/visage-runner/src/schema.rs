//! The experiment JSON Schema, with each component slot narrowed to the
//! registered components of its kind and their parameter schemas.

use serde_json::{json, Value};
use visage_core::nn::weights::WeightsSpec;
use visage_core::{Kind, Registry};

use crate::config::Experiment;

/// Where the experiment schema names components: (definition, property, kind,
/// whether the property is a list). `None` as definition means the root.
const SLOTS: &[(Option<&str>, &str, Kind, bool)] = &[
    (None, "backbone", Kind::Backbone, false),
    (Some("Pretrain"), "method", Kind::Method, false),
    (Some("Pretrain"), "dataset", Kind::Dataset, false),
    (Some("Pretrain"), "augmentations", Kind::Augmentation, true),
    (Some("Pretrain"), "optimizer", Kind::Optimizer, false),
    (Some("Pretrain"), "scheduler", Kind::Scheduler, false),
    (Some("KnnMonitor"), "dataset", Kind::Dataset, false),
    (Some("Views"), "augmentations", Kind::Augmentation, true),
    (Some("Evaluation"), "task", Kind::Task, false),
    (Some("Evaluation"), "dataset", Kind::Dataset, false),
    (Some("Evaluation"), "metrics", Kind::Metric, true),
];

/// The schema of experiment files given the components in `registry`.
pub fn experiment_schema(registry: &Registry) -> Value {
    let mut root = serde_json::to_value(schemars::schema_for!(Experiment)).unwrap_or_default();
    for (def, property, kind, list) in SLOTS {
        let owner = match def {
            None => &mut root,
            Some(d) => &mut root["$defs"][*d],
        };
        let slot = &mut owner["properties"][*property];
        let target = if *list { &mut slot["items"] } else { slot };
        *target = kind_schema(registry, *kind);
    }
    allow_weights(&mut root["properties"]["backbone"]);
    root
}

/// Every backbone choice also takes `weights`.
fn allow_weights(backbone: &mut Value) {
    let mut weights = serde_json::to_value(schemars::schema_for!(WeightsSpec)).unwrap_or_default();
    if let Some(map) = weights.as_object_mut() {
        map.remove("$schema");
    }
    if let Some(choices) = backbone["oneOf"].as_array_mut() {
        for choice in choices {
            choice["properties"]["weights"] = weights.clone();
        }
    }
}

/// `oneOf` the registered components of `kind`, each with its parameters.
fn kind_schema(registry: &Registry, kind: Kind) -> Value {
    let choices: Vec<Value> = registry
        .components()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, name, info)| {
            let mut params: Value = serde_json::from_str(&info.params_schema()).unwrap_or_else(|_| json!({}));
            if let Some(map) = params.as_object_mut() {
                map.remove("$schema");
            }
            json!({
                "title": format!("{name} ({})", info.plugin),
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": { "name": { "const": name }, "params": params },
            })
        })
        .collect();
    json!({ "description": format!("A registered {kind}: `name` and its `params`."), "oneOf": choices })
}

/// The schema as committed in schemas/: pretty, with a final newline.
pub fn render(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(&experiment_schema(registry)).unwrap_or_default();
    text.push('\n');
    text
}
