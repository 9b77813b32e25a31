//! `example_shapes`: one of four upright shapes, drawn at a random place,
//! size and colour on a noisy background. Labels: `class` (0 triangle,
//! 1 L, 2 T, 3 dome). No shape looks the same after a quarter turn, so the
//! rotation pretext of `example_rotation` can only be solved by seeing the
//! shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use visage_core::dataset::{Dataset, DatasetContext, DatasetInfo, Split};
use visage_core::params::check;
use visage_core::tch::Tensor;
use visage_core::{Error, Result, Sample};

use visage_core::rng::Rng;

/// Number of shape classes.
pub const CLASSES: i64 = 4;

/// Parameters of `example_shapes`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShapesParams {
    /// Samples in the split (at least 1).
    #[serde(default = "default_count", deserialize_with = "check::positive")]
    #[schemars(range(min = 1))]
    pub count: usize,
    /// Image side in pixels, 8..=512.
    #[serde(default = "default_resolution", deserialize_with = "check::int_in::<_, _, 8, 512>")]
    #[schemars(range(min = 8, max = 512))]
    pub resolution: usize,
    /// Standard deviation of the background noise.
    #[serde(default = "default_noise")]
    pub noise: f64,
}

fn default_count() -> usize {
    512
}
fn default_resolution() -> usize {
    32
}
fn default_noise() -> f64 {
    0.1
}

/// The dataset.
pub struct Shapes {
    params: ShapesParams,
    seed: u64,
    split: u64,
}

impl Shapes {
    /// Checks the parameters.
    pub fn new(params: ShapesParams, ctx: &DatasetContext) -> Result<Self> {
        if !(8..=512).contains(&params.resolution) {
            return Err(Error::msg(format!(
                "resolution must be in 8..=512, got {}",
                params.resolution
            )));
        }
        let split = match ctx.split {
            Split::Train => 1,
            Split::Test => 2,
        };
        Ok(Shapes {
            params,
            seed: ctx.seed,
            split,
        })
    }
}

impl Dataset for Shapes {
    fn len(&self) -> usize {
        self.params.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let mut rng = Rng::new(&[self.seed, self.split, index as u64]);
        let class = (rng.uniform() * CLASSES as f64) as i64;
        let image = draw(class, self.params.resolution, self.params.noise, &mut rng);
        Ok(Sample::new(image).with_label("class", Tensor::from(class)))
    }

    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            labels: vec!["class".into()],
            classes: Some(["triangle", "L", "T", "dome"].map(String::from).to_vec()),
            ..DatasetInfo::default()
        }
    }
}

fn draw(class: i64, side: usize, noise: f64, rng: &mut Rng) -> Tensor {
    let s = side as f64;
    let (cx, cy) = (rng.range(0.35, 0.65) * s, rng.range(0.35, 0.65) * s);
    let radius = rng.range(0.18, 0.3) * s;
    let colour = [rng.range(0.5, 1.0), rng.range(0.0, 1.0), rng.range(0.0, 0.5)];
    let background = rng.range(0.0, 0.4);
    let mut pixels = vec![0f32; 3 * side * side];
    for y in 0..side {
        for x in 0..side {
            let (dx, dy) = ((x as f64 + 0.5 - cx) / radius, (y as f64 + 0.5 - cy) / radius);
            // y grows downwards: "up" is negative dy.
            let inside = match class {
                0 => dy <= 0.8 && dy >= -1.0 + 2.0 * dx.abs(),
                1 => (dx.abs() <= 0.8 && (0.4..=0.8).contains(&dy)) || ((-0.8..=-0.4).contains(&dx) && dy.abs() <= 0.8),
                2 => (dx.abs() <= 0.8 && (-0.8..=-0.4).contains(&dy)) || (dx.abs() <= 0.2 && dy.abs() <= 0.8),
                _ => dx * dx + dy * dy <= 1.0 && dy <= 0.3,
            };
            for (c, value) in colour.iter().enumerate() {
                let base = if inside { *value } else { background };
                let v = base + noise * rng.normal();
                pixels[c * side * side + y * side + x] = v.clamp(0.0, 1.0) as f32;
            }
        }
    }
    Tensor::from_slice(&pixels).view([3, side as i64, side as i64])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(split: Split) -> Shapes {
        let params = ShapesParams {
            count: 64,
            resolution: 16,
            noise: 0.1,
        };
        Shapes::new(params, &DatasetContext { split, seed: 7 }).unwrap()
    }

    #[test]
    fn a_sample_is_a_pure_function_of_its_index() {
        let (a, b) = (
            shapes(Split::Train).get(5).unwrap(),
            shapes(Split::Train).get(5).unwrap(),
        );
        assert!(a.image.equal(&b.image));
        assert_eq!(a.image.size(), vec![3, 16, 16]);
        let test = shapes(Split::Test).get(5).unwrap();
        assert!(!a.image.equal(&test.image), "splits must differ");
    }

    #[test]
    fn all_classes_occur() {
        let d = shapes(Split::Train);
        let mut seen = [0; CLASSES as usize];
        for i in 0..d.len() {
            seen[d.get(i).unwrap().labels["class"].int64_value(&[]) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 5), "{seen:?}");
    }
}
