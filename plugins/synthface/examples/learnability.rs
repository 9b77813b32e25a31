//! The full learnability measurement the README reports:
//!
//! ```text
//! [EASY=1] cargo run --release -p visage-plugin-synthface --example learnability [IDENTITIES SAMPLES RESOLUTION EPOCHS]
//! ```

use synthface::learnability::{measure, Config};

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let config = Config {
        identities: arg(0, 100),
        samples_per_identity: arg(1, 30),
        resolution: arg(2, 64),
        width: 32,
        epochs: arg(3, 30),
        seed: 0,
        easy: std::env::var("EASY").is_ok(),
    };
    let started = std::time::Instant::now();
    let report = measure(&config).expect("learnability run");
    println!("{config:?}\n\n{report}\nin {:.0} s", started.elapsed().as_secs_f64());
}
