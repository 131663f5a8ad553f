//! The import graph of a crate's modules, read from its sources, and the
//! circles in it.
//!
//! Each `.rs` file under `src/` is a module (`a/mod.rs` is `a`). A module
//! depends on another when its code names a path into it: `crate::a::b::…`
//! (in `use` trees too, braces included) or `super::…`. Doc comments and
//! line comments are not code. A module naming one of its own ancestors or
//! descendants is structure (a parent declares and re-exports its children,
//! a child uses what its room defines), not a dependency between rooms, so
//! those edges are left out; every other edge counts, tests included.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module's path below the crate root, e.g. `["client", "builder"]`.
pub type ModulePath = Vec<String>;

/// The modules of the crate whose sources are under `src` and what each
/// depends on.
pub fn graph(src: &Path) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let mut files = Vec::new();
    collect(src, src, &mut files);
    let modules: BTreeSet<ModulePath> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &files {
        let code = strip_comments(text);
        let mut targets = BTreeSet::new();
        for path in referenced_paths(&code, module) {
            let Some(target) = longest_module(&modules, &path) else {
                continue;
            };
            let related = target.starts_with(module) || module.starts_with(&target);
            if !related {
                targets.insert(target);
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

/// The circles in `graph`, each as the modules along it (first repeated at
/// the end); empty when there are none.
pub fn cycles(graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>) -> Vec<Vec<String>> {
    // Depth-first search with colours; each back edge closes a circle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    fn visit(
        node: &ModulePath,
        graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
        colour: &mut BTreeMap<ModulePath, Colour>,
        stack: &mut Vec<ModulePath>,
        found: &mut Vec<Vec<String>>,
    ) {
        colour.insert(node.clone(), Colour::Grey);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match colour.get(next).copied().unwrap_or(Colour::White) {
                Colour::White => visit(next, graph, colour, stack, found),
                Colour::Grey => {
                    let start = stack.iter().position(|m| m == next).unwrap_or(0);
                    let mut circle: Vec<String> = stack[start..].iter().map(name).collect();
                    circle.push(name(next));
                    found.push(circle);
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(node.clone(), Colour::Black);
    }
    let mut colour = BTreeMap::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        if colour.get(node).copied().unwrap_or(Colour::White) == Colour::White {
            visit(node, graph, &mut colour, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// The graph with each module replaced by its room (its first segment
/// below the crate root); the crate root itself is left out.
pub fn rooms(
    graph: &BTreeMap<ModulePath, BTreeSet<ModulePath>>,
) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let mut out: BTreeMap<ModulePath, BTreeSet<ModulePath>> = BTreeMap::new();
    for (from, targets) in graph {
        let Some(room) = from.first() else { continue };
        let entry = out.entry(vec![room.clone()]).or_default();
        for to in targets {
            if let Some(other) = to.first().filter(|other| *other != room) {
                entry.insert(vec![other.clone()]);
            }
        }
    }
    out
}

/// A module's name as Rust spells its path.
pub fn name(module: &ModulePath) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(ModulePath, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under the root");
        let mut module: ModulePath = relative
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            module.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            module.pop();
        }
        if let Ok(text) = fs::read_to_string(&path) {
            out.push((module, text));
        }
    }
}

/// The text without `//` comments (doc comments included), string
/// literals and character literals, so that only code is read.
fn strip_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|b| **b == b'#').count();
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            i += 2 + hashes;
            while i < bytes.len() && !bytes[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.extend_from_slice(b"\"\"");
        } else if rest[0] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else if rest.starts_with(b"'\"'")
            || rest.starts_with(b"'\\''")
            || rest.starts_with(b"'\\\"'")
        {
            i += if rest[1] == b'\\' { 4 } else { 3 };
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every path the code names through `crate::`, `super::` or `self::`,
/// resolved to a path from the crate root, braces of `use` trees expanded.
fn referenced_paths(code: &str, module: &ModulePath) -> Vec<ModulePath> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let base = if !at_word {
            None
        } else if bytes[i..].starts_with(b"crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if bytes[i..].starts_with(b"super::") {
            Some((parent(module), "super::".len()))
        } else if bytes[i..].starts_with(b"self::") {
            Some((module.clone(), "self::".len()))
        } else {
            None
        };
        match base {
            Some((mut base, skip)) => {
                let mut j = i + skip;
                // `super::super::…`
                while bytes[j..].starts_with(b"super::") {
                    base = parent(&base);
                    j += "super::".len();
                }
                let (paths, end) = use_tree(code, j);
                for path in paths {
                    let mut full = base.clone();
                    full.extend(path);
                    found.push(full);
                }
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    found
}

fn parent(module: &ModulePath) -> ModulePath {
    let mut parent = module.clone();
    parent.pop();
    parent
}

/// The paths of the use tree (or plain path) starting at `at`, and where it
/// ends.
fn use_tree(code: &str, mut at: usize) -> (Vec<ModulePath>, usize) {
    let bytes = code.as_bytes();
    let mut prefix = Vec::new();
    loop {
        while at < bytes.len() && bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        if at < bytes.len() && bytes[at] == b'{' {
            let mut paths = Vec::new();
            at += 1;
            loop {
                while at < bytes.len() && (bytes[at].is_ascii_whitespace() || bytes[at] == b',') {
                    at += 1;
                }
                if at >= bytes.len() || bytes[at] == b'}' {
                    break;
                }
                let (inner, end) = use_tree(code, at);
                for path in inner {
                    let mut full = prefix.clone();
                    full.extend(path);
                    paths.push(full);
                }
                at = if end > at { end } else { at + 1 };
            }
            return (paths, at + 1);
        }
        let start = at;
        while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
            at += 1;
        }
        let segment = &code[start..at];
        if segment.is_empty() {
            return (vec![prefix], at);
        }
        prefix.push(segment.to_owned());
        if bytes[at..].starts_with(b"::") {
            at += 2;
        } else {
            // ` as name` and the rest do not change which module is named.
            return (vec![prefix], at);
        }
    }
}

/// The longest known module `path` starts with.
fn longest_module(modules: &BTreeSet<ModulePath>, path: &ModulePath) -> Option<ModulePath> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str) -> ModulePath {
        path.split("::").map(str::to_owned).collect()
    }

    #[test]
    fn reads_use_trees_and_relative_paths() {
        let code = strip_comments(
            "use crate::{a::b::{C, d::E}, f};\n/// [`X`](crate::doc::X)\nlet s = \"crate::nope\";\nsuper::g::H; crate::i::J as K;",
        );
        let paths = referenced_paths(&code, &module("x::y"));
        assert_eq!(
            paths,
            vec![
                module("a::b::C"),
                module("a::b::d::E"),
                module("f"),
                module("x::g::H"),
                module("i::J"),
            ]
        );
    }

    #[test]
    fn finds_a_circle_and_none_in_a_chain() {
        let mut graph = BTreeMap::new();
        graph.insert(module("a"), BTreeSet::from([module("b")]));
        graph.insert(module("b"), BTreeSet::from([module("c")]));
        graph.insert(module("c"), BTreeSet::new());
        assert!(cycles(&graph).is_empty());
        graph.insert(module("c"), BTreeSet::from([module("a")]));
        assert_eq!(cycles(&graph), vec![vec!["a", "b", "c", "a"]]);
    }
}
