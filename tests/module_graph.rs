//! The library's modules form a graph without cycles, readable bottom up: every
//! file uses only files below it. This test reads the sources (from `src/lib.rs`,
//! following `mod` declarations), finds each file's uses of other files of the
//! crate (`crate::…`, `super::…`, `$crate::…`; through re-exports to the file
//! that defines the item; test modules left out), and fails on a cycle, naming
//! it. Run it with `--nocapture` to see the files in order, one layer per line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module of the crate (its path, `backend::node`, is its key).
struct Module {
    /// Child modules declared with `mod name;` (and whether they are files).
    children: BTreeSet<String>,
    /// `pub use` re-exports: item name → the module path it comes from.
    reexports: BTreeMap<String, String>,
    /// The source, comments and test modules removed.
    code: String,
}

#[test]
fn the_module_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    load(&src.join("lib.rs"), String::new(), &mut modules);
    assert!(modules.len() > 20, "found only {} modules: is the parser lost?", modules.len());

    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, module) in &modules {
        if path.is_empty() {
            continue; // the crate root declares and re-exports; it uses nothing itself
        }
        let targets = edges.entry(path.clone()).or_default();
        for used in uses(path, &module.code) {
            let target = resolve(&used, &modules);
            if !target.is_empty() && target != *path {
                targets.insert(target);
            }
        }
    }

    if let Some(cycle) = find_cycle(&edges) {
        panic!("the modules form a cycle: {}", cycle.join(" -> "));
    }
    // Bottom up: each layer uses only the layers before it.
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    while placed.len() < edges.len() {
        let ready: Vec<String> = edges
            .iter()
            .filter(|(module, used)| !placed.contains_key(*module) && used.iter().all(|u| placed.contains_key(u)))
            .map(|(module, _)| module.clone())
            .collect();
        assert!(!ready.is_empty(), "no cycle was found, yet no module can be placed");
        for module in ready {
            let layer = edges[&module].iter().map(|u| placed[u] + 1).max().unwrap_or(0);
            placed.insert(module, layer);
        }
    }
    let layers = placed.values().max().copied().unwrap_or(0);
    println!("{} modules, {} layers, bottom up:", placed.len(), layers + 1);
    for layer in 0..=layers {
        let names: Vec<&str> = placed.iter().filter(|(_, l)| **l == layer).map(|(m, _)| m.as_str()).collect();
        println!("  {layer:>2}: {}", names.join("  "));
    }
}

/// Reads the module at `file` and, recursively, the modules it declares.
fn load(file: &Path, path: String, modules: &mut BTreeMap<String, Module>) {
    let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let code = strip(&source);
    let mut children = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim();
        let declaration = line
            .strip_prefix("pub(crate) mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = declaration.and_then(|rest| rest.strip_suffix(';')) {
            children.insert(name.trim().to_owned());
        }
    }
    let reexports = reexports(&code, &path);
    let directory = if file.file_name().is_some_and(|name| name == "lib.rs" || name == "mod.rs") {
        file.parent().expect("a directory").to_path_buf()
    } else {
        file.with_extension("")
    };
    for child in &children {
        let as_file = directory.join(format!("{child}.rs"));
        let as_dir = directory.join(child).join("mod.rs");
        let child_file = if as_file.exists() { as_file } else { as_dir };
        let child_path = if path.is_empty() { child.clone() } else { format!("{path}::{child}") };
        load(&child_file, child_path, modules);
    }
    modules.insert(path, Module { children, reexports, code });
}

/// The source without comments, string literals' contents, and `#[cfg(test)]`
/// modules (tests may use anything).
fn strip(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(start) => &source[..start],
        None => source,
    };
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let line = match line.find("//") {
            Some(start) if !line[..start].contains('"') => &line[..start],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `pub use a::b::{C, D};` lines: `C` and `D` come from `a::b` (made absolute).
fn reexports(code: &str, module: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for statement in statements(code, &["pub use ", "pub(crate) use "]) {
        for used in use_tree(&statement) {
            if let Some((from, item)) = used.rsplit_once("::") {
                let from = absolute(from, module);
                found.insert(item.to_owned(), from);
            }
        }
    }
    found
}

/// Every path of the crate that `code` (of module `module`) uses, absolute and
/// without the `crate::` prefix: `use` statements (not re-exports) and paths in
/// the code.
fn uses(module: &str, code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for statement in statements(code, &["use "]) {
        paths.extend(use_tree(&statement).into_iter().map(|used| absolute(&used, module)));
    }
    let without_uses: String = code
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !(line.starts_with("use ") || line.starts_with("pub use ") || line.starts_with("pub(crate) use "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = without_uses.as_bytes();
    for prefix in ["crate::", "super::"] {
        let mut start = 0;
        while let Some(found) = without_uses[start..].find(prefix) {
            let at = start + found;
            start = at + prefix.len();
            let before = if at == 0 { b' ' } else { bytes[at - 1] };
            if before.is_ascii_alphanumeric() || before == b'_' {
                continue; // `my_crate::`, `notsuper::`
            }
            let end = without_uses[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(without_uses.len(), |e| at + e);
            paths.push(absolute(without_uses[at..end].trim_end_matches(':'), module));
        }
    }
    paths
}

/// The `use` statements (whole, possibly over several lines) starting with one of
/// `starts`, without the keyword and the `;`.
fn statements(code: &str, starts: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim();
        if current.is_none() {
            let matched = starts.iter().find(|start| trimmed.starts_with(**start));
            // `pub use` must not count as `use`.
            let matched = matched.filter(|start| **start != "use " || !trimmed.starts_with("pub"));
            if let Some(start) = matched {
                current = Some(trimmed[start.len()..].to_owned());
            } else {
                continue;
            }
        } else if let Some(text) = current.as_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
        if current.as_ref().is_some_and(|text| text.ends_with(';')) {
            let text = current.take().unwrap_or_default();
            found.push(text.trim_end_matches(';').to_owned());
        }
    }
    found
}

/// The paths a use tree names: `a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`.
fn use_tree(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand("", &tree, &mut out);
    out.retain(|path| path.starts_with("crate::") || path.starts_with("super::") || path.starts_with("self::"));
    out
}

fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    match tree.find('{') {
        None => {
            let path = tree.split(" as ").next().unwrap_or(tree).split("as").next().unwrap_or(tree);
            let path = if prefix.is_empty() { path.to_owned() } else { format!("{prefix}{path}") };
            out.push(path.trim_end_matches("::self").to_owned());
        }
        Some(open) => {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            for part in split_top(inner) {
                if part == "self" {
                    out.push(head.trim_end_matches("::").to_owned());
                } else if !part.is_empty() {
                    expand(&head, part, out);
                }
            }
        }
    }
}

/// Splits on the commas that are not inside braces.
fn split_top(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

/// A path made absolute from `module`, without `crate::`: `super::x` in
/// `backend::node` is `backend::x`.
fn absolute(path: &str, module: &str) -> String {
    let mut base: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    let mut rest = path;
    loop {
        if let Some(after) = rest.strip_prefix("crate::").or_else(|| rest.strip_prefix("$crate::")) {
            base.clear();
            rest = after;
        } else if let Some(after) = rest.strip_prefix("super::") {
            base.pop();
            rest = after;
        } else if let Some(after) = rest.strip_prefix("self::") {
            rest = after;
        } else {
            break;
        }
    }
    base.extend(rest.split("::").filter(|part| !part.is_empty()));
    base.join("::")
}

/// The module (file) an absolute path lands in: the longest prefix that is a
/// module, followed through a re-export when the next segment is one.
fn resolve(path: &str, modules: &BTreeMap<String, Module>) -> String {
    let parts: Vec<&str> = path.split("::").collect();
    let mut current = String::new();
    for (index, part) in parts.iter().enumerate() {
        let module = &modules[&current];
        if module.children.contains(*part) {
            current = if current.is_empty() { (*part).to_owned() } else { format!("{current}::{part}") };
            continue;
        }
        if let Some(source) = module.reexports.get(*part) {
            let rest = parts[index + 1..].join("::");
            let next = if rest.is_empty() { source.clone() } else { format!("{source}::{rest}") };
            if next != path {
                return resolve(&next, modules);
            }
        }
        break;
    }
    current
}

/// A cycle among the edges, as the modules in order (the first repeated last).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
