//! Repository hygiene checks (rust-analyzer's tidy), for the invariants ARCHITECTURE.md states:
//! every Rust file opens with a `//!` comment saying what it does and no module uses `mod.rs`;
//! no import cycle between a crate's top-level modules; SQL and `rusqlite` only in the store
//! crates; HTML only in `templates/`; no product file over 500 lines without a written reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Product files allowed over [`MAX_LINES`], each with its reason.
const LONG_FILES: &[(&str, &str)] = &[];

/// The most lines a product file has (its inline `#[cfg(test)]` module not counted).
const MAX_LINES: usize = 500;

/// Where SQL may be written: the balancer's store crate and the recorder's store module.
fn may_hold_sql(file: &str) -> bool {
    file.starts_with("store/") || file.starts_with("recorder/src/store")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Every `.rs` file of the repository, as (path relative to the root, text).
fn rust_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | ".git" | ".venv" | "node_modules") {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(root(), &mut paths);
    let mut files: Vec<(String, String)> = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let rel = p
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, text)
        })
        .collect();
    files.sort();
    assert!(files.len() > 20, "found only {} files", files.len());
    files
}

/// A file's text without its inline test module (by convention the last item).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Whether a file is product code: not the test crates, not a test file.
fn is_product(file: &str) -> bool {
    !(file.starts_with("tests/")
        || file.starts_with("bench/")
        || file.ends_with("/tests.rs")
        || file.contains("/tests/"))
}

#[test]
fn every_rust_file_says_what_it_does() {
    let mut missing = Vec::new();
    for (file, text) in rust_files() {
        if !text.trim_start().starts_with("//!") {
            missing.push(file.clone());
        }
        assert!(
            !file.ends_with("mod.rs"),
            "{file}: use foo.rs + foo/ instead of mod.rs"
        );
    }
    assert!(
        missing.is_empty(),
        "files without a //! module comment: {missing:#?}"
    );
}

/// The `crate::NAME` references of each crate's top-level modules, in non-test code.
fn module_graph(
    files: &[(String, String)],
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut crates: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (file, text) in files {
        let Some((krate, inside)) = file.split_once("/src/") else {
            continue;
        };
        if !is_product(file) && !krate.starts_with("tests") {
            continue;
        }
        let top = inside.split('/').next().unwrap().trim_end_matches(".rs");
        if matches!(top, "lib" | "main" | "bin") {
            continue;
        }
        let graph = crates.entry(krate.to_owned()).or_default();
        let uses = graph.entry(top.to_owned()).or_default();
        let code = without_tests(text);
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != top {
                uses.insert(name);
            }
        }
    }
    crates
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.graph[v].iter().filter(|w| self.graph.contains_key(*w)) {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w.as_str()]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w.as_str()) {
                    let low = self.low[v].min(self.index[w.as_str()]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    let files = rust_files();
    let crates = module_graph(&files);
    assert!(
        crates["balancer"].len() > 15,
        "{:?}",
        crates["balancer"].keys()
    );
    let found: Vec<String> = crates
        .iter()
        .flat_map(|(krate, graph)| {
            cycles(graph)
                .into_iter()
                .map(move |c| format!("{krate}: {}", c.join(" <-> ")))
        })
        .collect();
    assert!(found.is_empty(), "module cycles: {found:#?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry((*a).into()).or_default().insert((*b).into());
            g.entry((*b).into()).or_default();
        }
        g
    };
    assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
    assert_eq!(
        cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        vec![vec!["a".to_owned(), "b".into(), "c".into()]]
    );
}

#[test]
fn only_the_store_crates_hold_sql() {
    const SQL: &[&str] = &[
        "rusqlite",
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "CREATE TABLE",
        "PRAGMA ",
        "BEGIN IMMEDIATE",
    ];
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter(|(file, _)| !may_hold_sql(file) && file != "tests/tests/e2e/tidy.rs")
        .filter_map(|(file, text)| {
            let hits: Vec<&str> = SQL.iter().copied().filter(|s| text.contains(s)).collect();
            (!hits.is_empty()).then(|| format!("{file}: {hits:?}"))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL outside the stores: {offenders:#?}"
    );
    for manifest in [
        "balancer",
        "agent",
        "shared",
        "tests",
        "bench",
        "geoip",
        "templates",
    ] {
        let text = std::fs::read_to_string(root().join(manifest).join("Cargo.toml")).unwrap();
        assert!(
            !text.contains("rusqlite"),
            "{manifest}/Cargo.toml names rusqlite"
        );
    }
}

#[test]
fn only_templates_hold_html() {
    const HTML: &[&str] = &[
        "<!doctype",
        "<!DOCTYPE",
        "<html",
        "<body>",
        "<body ",
        "<div>",
        "<div ",
        "<form>",
        "<form ",
        "<h1>",
    ];
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter(|(file, _)| !file.starts_with("templates/") && file != "tests/tests/e2e/tidy.rs")
        // The simulator's join page stands in for BBB's HTML5 client, not for a Conflux page.
        .filter(|(file, _)| file != "tests/src/sim.rs")
        .filter(|(file, text)| is_product(file) && HTML.iter().any(|h| text.contains(h)))
        .map(|(file, _)| file)
        .collect();
    assert!(
        offenders.is_empty(),
        "HTML outside templates/: {offenders:#?}"
    );
}

#[test]
fn product_files_stay_short_or_say_why() {
    let mut long = Vec::new();
    for (file, text) in rust_files() {
        let lines = without_tests(&text).lines().count();
        let allowed = LONG_FILES.iter().any(|(f, _)| *f == file);
        if is_product(&file) && lines > MAX_LINES && !allowed {
            long.push(format!("{file}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "split these files, or add them to LONG_FILES with a reason: {long:#?}"
    );
    for (file, reason) in LONG_FILES {
        assert!(
            root().join(file).exists(),
            "LONG_FILES names {file}, which is gone"
        );
        assert!(reason.len() > 20, "{file}: say why it is long");
    }
}
