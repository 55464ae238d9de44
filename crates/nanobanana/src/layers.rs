//! The layers of the crate (DESIGN §2), declared once, here. A top-level module may import
//! modules of its own layer or below, never above; two modules never import each other; and
//! the processes of layer 4 (`payments`, `worker`) never import one another at all — they reach
//! a user only through `outbox` and `texts`. The test below reads the sources and fails when a
//! module breaks a rule or is missing from this table.

/// Every top-level module of the crate and its layer.
pub const LAYERS: &[(&str, u8)] = &[
    // L0 pure: types and rules, the bot's words. No I/O.
    ("domain", 0),
    ("texts", 0),
    // L1 base: configuration, secrets, logs, metrics, shutdown, the audit's read-only report.
    ("config", 1),
    ("secret", 1),
    ("telemetry", 1),
    ("metrics", 1),
    ("shutdown", 1),
    ("audit", 1),
    ("budget", 1),
    // L2 core: the ledger, the job queue, the other tables, and the adapters to the outside.
    ("ledger", 2),
    ("jobs", 2),
    ("db", 2),
    ("telegram", 2),
    ("gemini", 2),
    ("yookassa", 2),
    ("storage", 2),
    ("signals", 2),
    ("redis", 2),
    // L3: what the user is sent.
    ("outbox", 3),
    // L4 processes: independent of one another.
    ("payments", 4),
    ("worker", 4),
    ("broadcast", 4),
    // L5: the conversation.
    ("bot", 5),
    // L6 entry points: the command line, the composition root, HTTP, the operator's panel, the
    // sandbox.
    ("cli", 6),
    ("panel", 6),
    ("service", 6),
    ("http", 6),
    ("sandbox", 6),
    ("layers", 6),
];

/// The layer whose modules must not import one another.
pub const INDEPENDENT_LAYER: u8 = 4;

/// The layer of top-level module `name`, if it is declared.
pub fn layer_of(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(module, _)| *module == name).map(|(_, layer)| *layer)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use super::*;

    /// Source text without test modules, comments and string literals (as `modgraph.py` reads it).
    fn strip(text: &str) -> String {
        let text = match text.find("\n#[cfg(test)]\nmod tests") {
            Some(at) => &text[..at],
            None => text,
        };
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            out.push('\n');
                            break;
                        }
                    }
                }
                '"' => {
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                    out.push_str("\"\"");
                }
                '\'' => {
                    // A char literal ('x', '\n', '"') or a lifetime ('a): copy a lifetime as is.
                    let rest: String = chars.clone().take(3).collect();
                    let close =
                        if rest.starts_with('\\') { rest.chars().nth(2) } else { rest.chars().nth(1) };
                    if close == Some('\'') {
                        let skip = if rest.starts_with('\\') { 3 } else { 2 };
                        for _ in 0..skip {
                            chars.next();
                        }
                        out.push_str("' '");
                    } else {
                        out.push(c);
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// The top-level modules a source text names: `crate::x…` and each branch of
    /// `use crate::{x, y::{…}}`.
    fn imports(text: &str) -> BTreeSet<String> {
        let text = strip(text);
        let mut found = BTreeSet::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.insert(head(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                found.insert(head(&item));
            } else {
                found.insert(head(rest));
            }
        }
        found.remove("");
        found
    }

    fn head(path: &str) -> String {
        path.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Module → the top-level modules it imports, for the crate's `src`.
    fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
        let mut files = Vec::new();
        rust_files(src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in files {
            let relative = file.strip_prefix(src).unwrap_or(&file);
            let first = relative.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
            let Some(first) = first else { continue };
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let targets = graph.entry(module.clone()).or_default();
            targets.extend(imports(&text).into_iter().filter(|t| *t != module));
        }
        graph
    }

    /// Every broken rule of `graph`, one line each.
    fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
        let mut found = Vec::new();
        for (module, targets) in graph {
            let Some(mine) = layer_of(module) else {
                found.push(format!("{module}: not in layers::LAYERS"));
                continue;
            };
            for target in targets {
                let Some(theirs) = layer_of(target) else {
                    found.push(format!("{module} -> {target}: {target} is not in layers::LAYERS"));
                    continue;
                };
                if theirs > mine {
                    found.push(format!("{module} (L{mine}) imports {target} (L{theirs}), a higher layer"));
                }
                if theirs == mine && mine == INDEPENDENT_LAYER {
                    found
                        .push(format!("{module} imports {target}: the processes of L{mine} are independent"));
                }
                if module < target && graph.get(target).is_some_and(|back| back.contains(module)) {
                    found.push(format!("{module} and {target} import each other"));
                }
            }
        }
        found
    }

    #[test]
    fn every_module_imports_only_its_layer_or_below_and_no_two_import_each_other() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let graph = graph(&src);
        assert!(graph.len() >= LAYERS.len() - 1, "the sources were not read from {}", src.display());
        let broken = violations(&graph);
        assert!(broken.is_empty(), "layer rules broken (DESIGN §2):\n{}", broken.join("\n"));
    }

    #[test]
    fn the_check_sees_an_upward_import_a_mutual_pair_and_an_unknown_module() {
        let text =
            "use crate::{bot::inbox, domain::{Credits, TelegramId}};\nfn f() { crate::texts::render(); }";
        assert_eq!(
            imports(text),
            BTreeSet::from(["bot".to_owned(), "domain".to_owned(), "texts".to_owned()])
        );
        let commented =
            "// use crate::bot;\nlet s = \"crate::bot\";\n#[cfg(test)]\nmod tests { use crate::bot; }";
        assert!(imports(commented).is_empty(), "{:?}", imports(commented));
        let graph = BTreeMap::from([
            ("ledger".to_owned(), BTreeSet::from(["bot".to_owned(), "jobs".to_owned()])),
            ("jobs".to_owned(), BTreeSet::from(["ledger".to_owned()])),
            ("payments".to_owned(), BTreeSet::from(["worker".to_owned()])),
            ("newcomer".to_owned(), BTreeSet::new()),
        ]);
        let broken = violations(&graph);
        assert!(broken.iter().any(|v| v.contains("ledger (L2) imports bot (L5)")), "{broken:?}");
        assert!(broken.iter().any(|v| v == "jobs and ledger import each other"), "{broken:?}");
        assert!(broken.iter().any(|v| v.contains("payments imports worker")), "{broken:?}");
        assert!(broken.iter().any(|v| v == "newcomer: not in layers::LAYERS"), "{broken:?}");
    }
}
