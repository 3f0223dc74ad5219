//! The layout holds: each folder of `src/` uses only the folders below it (so no cycles), no
//! source file other than tests grows past the size a reader takes in at once, and none
//! brings back the serde patterns that doubled code in the wasm.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first; a folder may use only those before it.
const LAYERS: [&str; 10] = [
    "base", "http", "jose", "platform", "access", "config", "oidc", "session", "gate", "runtime",
];
const MAX_LINES: usize = 600;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(rel: &str) -> bool {
    rel.starts_with("testing/") || rel.contains("/tests/") || rel.ends_with("/tests.rs")
}

/// The code of a file without its `#[cfg(test)] mod tests` block.
fn production_code(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

fn layer_of(rel: &str) -> &str {
    rel.split('/').next().unwrap_or(rel).trim_end_matches(".rs")
}

#[test]
fn folders_use_only_the_layers_below_them_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = BTreeSet::new();
    for path in files {
        let rel = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || is_test_file(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let code = production_code(&text);
        if code.lines().count() > MAX_LINES {
            problems.insert(format!("{rel}: over {MAX_LINES} lines without its tests"));
        }
        // Size: each of these instantiates a second copy of code the worker already has (see
        // the README's Figures): JSON is read from bytes, and log lines are written directly.
        for (costly, instead) in [
            ("serde_json::from_str", "serde_json::from_slice"),
            ("json!({\"level\"", "log_line!"),
            ("serde(untagged", "a hand-written reader"),
            ("serde(tag", "serde's default enum form"),
        ] {
            if code.contains(costly) {
                problems.insert(format!("{rel}: {costly} outside tests (use {instead})"));
            }
        }
        let own = layer_of(&rel);
        let Some(rank) = LAYERS.iter().position(|l| *l == own) else {
            problems.insert(format!("{rel}: folder {own} is not in LAYERS"));
            continue;
        };
        for (i, _) in code.match_indices("crate::") {
            let used: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if used == own || used == "testing" {
                continue;
            }
            match LAYERS.iter().position(|l| *l == used) {
                Some(r) if r < rank => {}
                _ => {
                    problems.insert(format!("{rel}: {own} uses {used}, which is not below it"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
