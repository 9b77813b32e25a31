//! Faces per second on one thread at 64, 112 and 224 pixels, with every
//! nuisance factor on (the default parameters):
//! `cargo bench -p visage-plugin-synthface --bench render -- --quick`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synthface::params::SynthFaceParams;
use visage_core::dataset::Split;

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    for side in [64usize, 112, 224] {
        let params = SynthFaceParams {
            resolution: side,
            ..SynthFaceParams::default()
        };
        let len = synthface::render::split_len(&params, Split::Train);
        let mut index = 0;
        group.bench_function(format!("{side}px"), |b| {
            b.iter(|| {
                index = (index + 1) % len;
                synthface::render(&params, 0, Split::Train, index).unwrap()
            })
        });
    }
    // The same at 224 with every nuisance factor off: the cost of the face alone.
    let params = SynthFaceParams {
        resolution: 224,
        nuisance: synthface::params::NuisanceParams::none(),
        ..SynthFaceParams::default()
    };
    let mut index = 0;
    group.bench_function("224px_no_nuisance", |b| {
        b.iter(|| {
            index = (index + 1) % 100;
            synthface::render(&params, 0, Split::Train, index).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
