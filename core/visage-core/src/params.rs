//! Typed component parameters: decoding with key paths, JSON Schema, and the
//! normalised form written to the run directory.
//!
//! Parameters cross the plugin boundary as JSON text, so that the host never
//! depends on the plugin's serde types.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ParamsError;

/// What a component's parameter type must implement. Derive
/// `Serialize, Deserialize, JsonSchema` and add
/// `#[serde(deny_unknown_fields)]` so that typos are caught.
pub trait Params: Serialize + DeserializeOwned + JsonSchema + 'static {}
impl<T: Serialize + DeserializeOwned + JsonSchema + 'static> Params for T {}

/// Parameters of a component that takes none; any key is an error.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Decodes JSON parameters into `P`, reporting the key path of the first error.
pub fn decode<P: Params>(json: &str) -> Result<P, ParamsError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| ParamsError {
        path: vec![],
        message: format!("not valid JSON: {e}"),
    })?;
    from_value(value)
}

/// Deserialises `value` into any `T`, reporting the key path of the first
/// error (`["layers", "1", "stride"]`).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ParamsError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        ParamsError {
            path,
            message: err.inner().to_string(),
        }
    })
}

/// Decodes and re-encodes, so that defaults appear explicitly.
pub fn normalize<P: Params>(json: &str) -> Result<String, ParamsError> {
    let typed: P = decode(json)?;
    serde_json::to_string(&typed).map_err(|e| ParamsError {
        path: vec![],
        message: e.to_string(),
    })
}

/// JSON Schema of `P` as text, with sub-schemas inlined so that it can be
/// embedded into the experiment schema.
pub fn schema<P: Params>() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<P>();
    serde_json::to_string(&schema).unwrap_or_else(|_| "{}".into())
}

/// Validating deserialisers for `#[serde(deserialize_with = "...")]`: a
/// value out of range fails to deserialise, so that the host reports it like
/// a wrong type, with the file, line, column and key, before anything is
/// built. The field keeps its plain type (and schema); add the matching
/// `#[schemars(range(...))]` for the schema.
///
/// ```
/// use serde::Deserialize;
/// use visage_core::params::check;
/// #[derive(Deserialize)]
/// struct P {
///     #[serde(deserialize_with = "check::positive")]
///     count: usize,
///     #[serde(deserialize_with = "check::int_in::<_, _, 8, 512>")]
///     resolution: usize,
///     #[serde(deserialize_with = "check::positive_finite")]
///     lr: f64,
/// }
/// let err = serde_json::from_str::<P>(r#"{"count": 0, "resolution": 8, "lr": 1}"#).err().unwrap();
/// assert!(err.to_string().starts_with("invalid value: integer `0`, expected a positive integer"));
/// let err = serde_json::from_str::<P>(r#"{"count": 1, "resolution": 4, "lr": 1}"#).err().unwrap();
/// assert!(err.to_string().starts_with("invalid value: integer `4`, expected an integer in 8..=512"));
/// let err = serde_json::from_str::<P>(r#"{"count": 1, "resolution": 8, "lr": -1}"#).err().unwrap();
/// assert!(err.to_string().starts_with("invalid value: floating point `-1.0`, expected a positive finite number"));
/// ```
pub mod check {
    use serde::de::{Error, Unexpected};
    use serde::{Deserialize, Deserializer};

    fn integer<'de, D, T>(d: D, min: u64, max: u64, expected: &dyn serde::de::Expected) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Copy + TryInto<u64>,
    {
        let value = T::deserialize(d)?;
        let wide: u64 = value.try_into().unwrap_or(u64::MAX);
        if (min..=max).contains(&wide) {
            Ok(value)
        } else {
            Err(D::Error::invalid_value(Unexpected::Unsigned(wide), expected))
        }
    }

    /// An unsigned integer of at least 1 (a count, a size).
    pub fn positive<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Copy + TryInto<u64>,
    {
        integer(d, 1, u64::MAX, &"a positive integer")
    }

    /// An unsigned integer in `MIN..=MAX`.
    pub fn int_in<'de, D, T, const MIN: u64, const MAX: u64>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Copy + TryInto<u64>,
    {
        integer(d, MIN, MAX, &format!("an integer in {MIN}..={MAX}").as_str())
    }

    /// A finite number greater than 0 (a learning rate).
    pub fn positive_finite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let value = f64::deserialize(d)?;
        if value.is_finite() && value > 0.0 {
            Ok(value)
        } else {
            Err(D::Error::invalid_value(
                Unexpected::Float(value),
                &"a positive finite number",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conv {
        #[serde(default = "default_width")]
        width: i64,
        layers: Vec<Layer>,
    }
    fn default_width() -> i64 {
        16
    }
    #[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Layer {
        stride: i64,
    }

    #[test]
    fn errors_carry_the_key_path() {
        let err = decode::<Conv>(r#"{"layers": [{"stride": 1}, {"strde": 2}]}"#).unwrap_err();
        assert_eq!(err.path, vec!["layers", "1", "strde"]);
        assert_eq!(err.message, "unknown field `strde`, expected `stride`");
        let err = decode::<Conv>(r#"{"width": "wide", "layers": []}"#).unwrap_err();
        assert_eq!(err.path, vec!["width"]);
        assert!(
            err.message.starts_with("invalid type: string \"wide\", expected i64"),
            "{}",
            err.message
        );
    }

    #[test]
    fn normalize_fills_defaults() {
        let out = normalize::<Conv>(r#"{"layers": []}"#).unwrap();
        assert_eq!(out, r#"{"width":16,"layers":[]}"#);
    }

    #[test]
    fn schema_is_self_contained() {
        let s: serde_json::Value = serde_json::from_str(&schema::<Conv>()).unwrap();
        assert!(s.get("$defs").is_none(), "{s}");
        assert_eq!(
            s["properties"]["layers"]["items"]["properties"]["stride"]["type"],
            "integer"
        );
        assert_eq!(s["additionalProperties"], false);
    }
}
