//! The source fingerprint: a hash of visage-core's definitions, with the
//! parts that cannot change a layout or a signature taken out.
//!
//! Compiled twice: by `build.rs` (`#[path]`), which hashes `src/` and hands
//! the result to the crate as `VISAGE_ABI_SOURCE`, and into the crate under
//! `#[cfg(test)]`, so that the normalisation is tested where it lives.
//!
//! Every file's syntax tree is kept except for:
//! - doc comments (`#[doc]` attributes, wherever they are, macro bodies
//!   included) and ordinary comments and whitespace, which the lexer drops;
//! - function bodies (free functions, methods, trait default methods), which
//!   become `{}`;
//! - items under `#[cfg(test)]`, and the files of `#[cfg(test)] mod x;`,
//!   which are compiled into neither the host nor a plugin.
//!
//! The rest is printed as canonical token text and hashed with FNV-1a 64,
//! file by file in the order of their relative paths, each preceded by its
//! path.

use std::path::Path;

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};

use super::fnv::{fnv1a, OFFSET};

/// One source file, normalised.
pub struct Normalised {
    /// The canonical token text of what is kept.
    pub text: String,
    /// Names of the out-of-line modules the file declares under
    /// `#[cfg(test)]` (`#[cfg(test)] mod tests;`): their files are skipped.
    pub test_modules: Vec<String>,
}

/// Normalises the text of one source file.
pub fn normalise(source: &str) -> syn::Result<Normalised> {
    let mut file = syn::parse_file(source)?;
    let test_modules = file
        .items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(m) if m.content.is_none() && test_only(&m.attrs) => Some(m.ident.to_string()),
            _ => None,
        })
        .collect();
    Skeleton.visit_file_mut(&mut file);
    let text = without_docs(file.into_token_stream()).to_string();
    Ok(Normalised { text, test_modules })
}

/// The fingerprint of a crate's `src` folder: every `.rs` file under it.
pub fn fingerprint_dir(src: &Path) -> Result<u64, String> {
    let mut files = vec![];
    collect(src, "", &mut files)?;
    fingerprint(&files)
}

/// The fingerprint of `(path relative to src/, text)` pairs, in any order.
pub fn fingerprint(files: &[(String, String)]) -> Result<u64, String> {
    let mut kept = vec![];
    let mut skipped = vec![];
    for (path, text) in files {
        let normalised = normalise(text).map_err(|e| format!("src/{path}: {e}"))?;
        skipped.extend(normalised.test_modules.iter().map(|m| module_files(path, m)));
        kept.push((path.as_str(), normalised.text));
    }
    kept.sort();
    let mut hash = OFFSET;
    for (path, text) in kept {
        if skipped
            .iter()
            .any(|(file, folder)| path == file || path.starts_with(folder.as_str()))
        {
            continue;
        }
        hash = fnv1a(hash, path.as_bytes());
        hash = fnv1a(hash, &[0]);
        hash = fnv1a(hash, text.as_bytes());
        hash = fnv1a(hash, &[0]);
    }
    Ok(hash)
}

/// The file (`a/m.rs`) and folder (`a/m/`) of module `name` declared in
/// `parent` (`lib.rs`, `a/mod.rs` or `a.rs`, relative to src/).
fn module_files(parent: &str, name: &str) -> (String, String) {
    let dir = match parent.rsplit_once('/') {
        Some((dir, "mod.rs")) => format!("{dir}/"),
        None if parent == "lib.rs" || parent == "mod.rs" => String::new(),
        _ => format!("{}/", parent.trim_end_matches(".rs")),
    };
    (format!("{dir}{name}.rs"), format!("{dir}{name}/"))
}

/// Reads every `.rs` file under `dir`, with its path relative to the root
/// (`/`-separated), into `files`.
fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, String)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let relative = format!("{prefix}{name}");
        if path.is_dir() {
            collect(&path, &format!("{relative}/"), files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.push((relative, text));
        }
    }
    Ok(())
}

/// `#[cfg(test)]`, exactly.
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| match &a.meta {
        syn::Meta::List(list) => list.path.is_ident("cfg") && list.tokens.to_string() == "test",
        _ => false,
    })
}

/// Empties function bodies and drops test-only items.
struct Skeleton;

impl VisitMut for Skeleton {
    fn visit_file_mut(&mut self, file: &mut syn::File) {
        file.items.retain(|item| !item_test_only(item));
        visit_mut::visit_file_mut(self, file);
    }

    fn visit_item_mod_mut(&mut self, module: &mut syn::ItemMod) {
        if let Some((_, items)) = &mut module.content {
            items.retain(|item| !item_test_only(item));
        }
        visit_mut::visit_item_mod_mut(self, module);
    }

    fn visit_item_impl_mut(&mut self, block: &mut syn::ItemImpl) {
        block.items.retain(|item| match item {
            syn::ImplItem::Fn(f) => !test_only(&f.attrs),
            syn::ImplItem::Const(c) => !test_only(&c.attrs),
            _ => true,
        });
        visit_mut::visit_item_impl_mut(self, block);
    }

    fn visit_item_fn_mut(&mut self, function: &mut syn::ItemFn) {
        *function.block = empty();
    }

    fn visit_impl_item_fn_mut(&mut self, function: &mut syn::ImplItemFn) {
        function.block = empty();
    }

    fn visit_trait_item_fn_mut(&mut self, function: &mut syn::TraitItemFn) {
        // A default stays visible as `{}`: whether there is one is kept.
        if let Some(block) = &mut function.default {
            *block = empty();
        }
    }
}

fn item_test_only(item: &syn::Item) -> bool {
    let attrs = match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => return false,
    };
    test_only(attrs)
}

fn empty() -> syn::Block {
    syn::Block {
        brace_token: Default::default(),
        stmts: vec![],
    }
}

/// The tokens without `#[doc ...]` and `#![doc ...]` attributes, at any depth.
fn without_docs(tokens: TokenStream) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut i = 0;
    while i < trees.len() {
        if let TokenTree::Punct(p) = &trees[i] {
            if p.as_char() == '#' {
                let bang = matches!(trees.get(i + 1), Some(TokenTree::Punct(q)) if q.as_char() == '!');
                let at = i + 1 + usize::from(bang);
                if let Some(TokenTree::Group(g)) = trees.get(at) {
                    let first = g.stream().into_iter().next();
                    if g.delimiter() == Delimiter::Bracket
                        && matches!(&first, Some(TokenTree::Ident(ident)) if ident == "doc")
                    {
                        i = at + 1;
                        continue;
                    }
                }
            }
        }
        let tree = match &trees[i] {
            TokenTree::Group(g) => TokenTree::Group(Group::new(g.delimiter(), without_docs(g.stream()))),
            other => other.clone(),
        };
        out.extend([tree]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
//! The module.

/// A sample.
pub struct Sample {
    /// Pixels.
    pub image: Vec<f32>,
    id: u64,
}

/// A component.
pub trait Task {
    /// Runs.
    fn evaluate(&mut self, input: &Sample) -> Result<f64, String>;
    /// Has a default.
    fn name(&self) -> String {
        "task".into()
    }
}

impl Sample {
    /// Makes one.
    pub fn new(image: Vec<f32>) -> Self {
        Sample { image, id: 0 }
    }
}

pub fn free(x: u32) -> u32 {
    x + 1
}

macro_rules! twice {
    ($e:expr) => {
        /// Documented.
        ($e, $e)
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn one() {}
}
"#;

    fn hash(text: &str) -> u64 {
        fingerprint(&[("lib.rs".into(), text.into())]).unwrap()
    }

    /// `BASE` with `from` replaced by `to` (which must occur).
    fn edited(from: &str, to: &str) -> u64 {
        assert!(BASE.contains(from), "{from}");
        hash(&BASE.replacen(from, to, 1))
    }

    #[test]
    fn the_boundary_changes_the_fingerprint() {
        let base = hash(BASE);
        let changes = [
            ("    id: u64,\n", "    id: u64,\n    extra: u8,\n"),
            (
                "    fn name(&self)",
                "    fn describe(&self) -> String { String::new() }\n    fn name(&self)",
            ),
            (
                "    fn evaluate(&mut self, input: &Sample) -> Result<f64, String>;",
                "    fn evaluate(&mut self, input: &Sample) -> Result<f32, String>;",
            ),
            ("pub fn free(x: u32) -> u32", "pub fn free(x: u64) -> u32"),
            ("id: u64", "id: u32"),
            (
                "    fn name(&self) -> String {\n        \"task\".into()\n    }",
                "    fn name(&self) -> String;",
            ),
            ("($e, $e)", "($e, $e, $e)"),
        ];
        for (from, to) in changes {
            assert_ne!(edited(from, to), base, "{from} -> {to}");
        }
    }

    #[test]
    fn comments_docs_whitespace_bodies_and_tests_do_not() {
        let base = hash(BASE);
        let edits = [
            ("/// A sample.", "/// A sample of pixels.\n// and a comment"),
            ("//! The module.", ""),
            ("    /// Pixels.\n", ""),
            ("/// Documented.", "/// Documented at length."),
            ("pub struct Sample {", "pub struct Sample\n{  /* block comment */"),
            ("    x + 1", "    let y = x;\n    y.wrapping_add(1)"),
            ("        \"task\".into()", "        format!(\"{}\", 42)"),
            ("Sample { image, id: 0 }", "Sample { image, id: 7 }"),
            ("    fn one() {}", "    fn one() {}\n    #[test]\n    fn two() {}"),
        ];
        for (from, to) in edits {
            assert_eq!(edited(from, to), base, "{from} -> {to}");
        }
    }

    #[test]
    fn paths_and_test_module_files_count_as_they_should() {
        let a = ("a.rs".to_string(), "pub struct A(u8);".to_string());
        let b = ("b.rs".to_string(), "pub struct B(u8);".to_string());
        let both = fingerprint(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(
            fingerprint(&[b.clone(), a.clone()]).unwrap(),
            both,
            "order of discovery"
        );
        let renamed = ("c.rs".to_string(), b.1.clone());
        assert_ne!(fingerprint(&[a.clone(), renamed]).unwrap(), both, "paths are hashed");

        // The file of a `#[cfg(test)] mod tests;` is skipped, not that of a plain `mod`.
        let lib = ("lib.rs".to_string(), "pub mod data;".to_string());
        let tests = |body: &str| ("data/tests.rs".to_string(), body.to_string());
        for (cfg, skipped) in [("#[cfg(test)]", true), ("", false)] {
            let data = ("data/mod.rs".to_string(), format!("pub struct D;\n{cfg}\nmod tests;"));
            let before = fingerprint(&[lib.clone(), data.clone(), tests("fn t() {}")]).unwrap();
            let after = fingerprint(&[lib.clone(), data, tests("pub struct Other(u64);")]).unwrap();
            assert_eq!(before == after, skipped, "{cfg:?}");
        }
        assert_eq!(module_files("lib.rs", "x"), ("x.rs".into(), "x/".into()));
        assert_eq!(module_files("a/mod.rs", "x"), ("a/x.rs".into(), "a/x/".into()));
        assert_eq!(module_files("a/b.rs", "x"), ("a/b/x.rs".into(), "a/b/x/".into()));
    }

    #[test]
    fn unparsable_source_is_an_error_naming_the_file() {
        let error = fingerprint(&[("lib.rs".into(), "pub struct {".into())]).unwrap_err();
        assert!(error.starts_with("src/lib.rs: "), "{error}");
    }

    /// The build script and this copy of the code agree on visage-core itself.
    #[test]
    fn the_crate_fingerprint_is_the_one_the_build_script_emitted() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let hash = fingerprint_dir(&src).unwrap();
        assert_eq!(format!("{hash:016x}"), env!("VISAGE_ABI_SOURCE"));
    }
}
