//! The integration tests link this plugin and synthface as libraries, and
//! each declares its `VISAGE_PLUGIN` entry point (the symbol the runner
//! looks up in a plugin's shared object). No test reads that symbol, so
//! the test binaries let the linker keep the first of the two.
fn main() {
    println!("cargo:rustc-link-arg-tests=-Wl,--allow-multiple-definition");
}
