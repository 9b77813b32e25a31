//! The integration tests link this plugin and synthface (for its dataset)
//! as rlibs: each defines the `VISAGE_PLUGIN` declaration the host looks
//! up. The tests load neither as a plugin, so either definition will do.
fn main() {
    println!("cargo:rustc-link-arg-tests=-Wl,--allow-multiple-definition");
}
