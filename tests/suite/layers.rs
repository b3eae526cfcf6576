//! Keeps the module graph the shape `src/lib.rs` documents: layers that only point down, and no
//! cycle between modules.
//!
//! It reads `src/` as text, resolves every `crate::…` and `super::…` path (in `use` lines and
//! inline, test code included) to the file module it names, and fails, naming file and line, on
//! - an import of a module in a higher layer than the importer's (the layer map is read from the
//!   ```` ```text ```` block under "## Layers" in `src/lib.rs`'s docs, so the docs and the check
//!   cannot drift apart), or of a top-level module the map does not list;
//! - any cycle between top-level modules, or between files (a file and its own ancestors'
//!   `mod.rs`, which declare and re-export it, are not counted as a cycle).
//!
//! No build of stressctl is involved: this is a check of the source as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a reference was written.
#[derive(Clone, Debug)]
struct Site {
    file: String,
    line: usize,
}

/// One file of `src/`, as a module path (`["campaign", "slot"]`; `[]` for lib.rs and main.rs).
struct SourceFile {
    rel: String,
    module: Vec<String>,
    text: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read_sources() -> Vec<SourceFile> {
    let mut out = Vec::new();
    let mut stack = vec![src_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src_dir()).expect("under src").to_string_lossy().into_owned();
            let mut module: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push(SourceFile { rel: format!("src/{rel}"), module, text });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The layer map from `src/lib.rs`: one line per layer, top first, modules separated by commas.
fn layer_map() -> BTreeMap<String, usize> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read lib.rs");
    let docs: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("//!")).map(str::trim).collect();
    let start = docs.iter().position(|l| *l == "## Layers").expect("src/lib.rs's docs have a \"## Layers\" section");
    let open = docs[start..].iter().position(|l| *l == "```text").expect("a ```text block under ## Layers") + start + 1;
    let mut map = BTreeMap::new();
    for (layer, line) in docs[open..].iter().take_while(|l| **l != "```").enumerate() {
        let modules = line.split_once("  ").map_or(*line, |(m, _)| m); // two spaces start a note
        for m in modules.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            assert!(map.insert(m.to_string(), layer).is_none(), "module {m} is in two layers of src/lib.rs's map");
        }
    }
    assert!(!map.is_empty(), "the layer map in src/lib.rs is empty");
    map
}

/// The text with comments blanked out (line structure kept, so line numbers stay right).
fn strip_comments(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' && i + 1 < b.len() {
                out.push(c as char);
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            out.push(if c == b'\n' { '\n' } else { ' ' });
            i += 1;
            continue;
        }
        if c == b'"' && !(i > 0 && b[i - 1] == b'\'' && i + 1 < b.len() && b[i + 1] == b'\'') {
            // a raw string r"…" / r#"…"#: skip to its end
            let mut hashes = 0;
            let mut j = i;
            while j > 0 && b[j - 1] == b'#' {
                hashes += 1;
                j -= 1;
            }
            if j > 0 && b[j - 1] == b'r' {
                let end = format!("\"{}", "#".repeat(hashes));
                let rest = &s[i + 1..];
                let len = rest.find(&end).map_or(rest.len(), |k| k + end.len());
                for ch in s[i..i + 1 + len].chars() {
                    out.push(if ch == '\n' { '\n' } else { ' ' });
                }
                i += 1 + len;
                continue;
            }
            in_str = true;
            out.push(' ');
            i += 1;
            continue;
        }
        if c == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && i + 1 < b.len() && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            continue;
        }
        // multi-byte characters are copied whole
        let ch = s[i..].chars().next().expect("a char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree starting at `chars[at..]` (just after `crate::` or `super::`) into its
/// leaf paths, each with the offset (in chars) where its own part of the tree starts. Returns
/// where the tree ends.
fn expand_tree(chars: &[char], at: usize, prefix: &[String], out: &mut Vec<(Vec<String>, usize)>) -> usize {
    let mut path = prefix.to_vec();
    let mut i = at;
    let leaf_start = at;
    loop {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '{' {
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return i + 1;
                }
                i = expand_tree(chars, i, &path, out);
            }
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > start {
            path.push(chars[start..i].iter().collect());
        } else if i < chars.len() && chars[i] == '*' {
            i += 1;
        }
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
            continue;
        }
        out.push((path, leaf_start));
        return i;
    }
}

/// Every module path the file refers to through `crate::` or `super::`, with its line.
fn references(f: &SourceFile) -> Vec<(Vec<String>, usize)> {
    let text = strip_comments(&f.text);
    let mut out = Vec::new();
    // inline `mod x {` blocks change what `super` means: track their depth
    let mut inline_mods: Vec<i64> = Vec::new();
    let mut depth: i64 = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut k = 0;
    let mut line = 1;
    while k < chars.len() {
        let (pos, c) = chars[k];
        match c {
            '\n' => line += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if inline_mods.last() == Some(&depth) {
                    inline_mods.pop();
                }
            }
            _ => {}
        }
        let boundary = pos == 0 || !is_ident(text[..pos].chars().next_back().unwrap_or(' '));
        let rest = &text[pos..];
        if boundary && rest.starts_with("mod ") {
            let after = rest[4..].trim_start();
            let name_len = after.chars().take_while(|c| is_ident(*c)).count();
            if after[name_len..].trim_start().starts_with('{') {
                inline_mods.push(depth);
            }
        }
        let base = if boundary && rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if boundary && rest.starts_with("super::") && !text[..pos].trim_end().ends_with("::") {
            let mut n: usize = 0;
            let mut len = 0;
            while rest[len..].starts_with("super::") {
                n += 1;
                len += "super::".len();
            }
            // inside inline mods the first supers climb out of them, not out of the file
            let n = n.saturating_sub(inline_mods.len());
            Some((f.module[..f.module.len().saturating_sub(n)].to_vec(), len))
        } else {
            None
        };
        if let Some((prefix, skip)) = base {
            let tree: Vec<char> = rest[skip..].chars().collect();
            let mut paths = Vec::new();
            let consumed = expand_tree(&tree, 0, &prefix, &mut paths);
            for (p, at) in paths {
                out.push((p, line + tree[..at].iter().filter(|c| **c == '\n').count()));
            }
            // step over what was read, counting its lines and braces
            let end = pos + skip + tree[..consumed.min(tree.len())].iter().map(|c| c.len_utf8()).sum::<usize>();
            while k + 1 < chars.len() && chars[k + 1].0 < end {
                k += 1;
                match chars[k].1 {
                    '\n' => line += 1,
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        }
        k += 1;
    }
    out
}

/// The file module a path lands in: its longest prefix that is a file of `src/`.
fn owner<'a>(path: &[String], modules: &'a BTreeSet<Vec<String>>) -> Option<&'a Vec<String>> {
    (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

/// Strongly connected components with more than one member (Tarjan).
fn cycles<T: Ord + Clone>(edges: &BTreeMap<T, BTreeSet<T>>) -> Vec<Vec<T>> {
    struct St<T> {
        index: BTreeMap<T, usize>,
        low: BTreeMap<T, usize>,
        stack: Vec<T>,
        on: BTreeSet<T>,
        out: Vec<Vec<T>>,
    }
    fn visit<T: Ord + Clone>(v: &T, e: &BTreeMap<T, BTreeSet<T>>, st: &mut St<T>) {
        let n = st.index.len();
        st.index.insert(v.clone(), n);
        st.low.insert(v.clone(), n);
        st.stack.push(v.clone());
        st.on.insert(v.clone());
        for w in e.get(v).into_iter().flatten() {
            if !st.index.contains_key(w) {
                visit(w, e, st);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if st.on.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                st.out.push(comp);
            }
        }
    }
    let mut st = St { index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for v in edges.keys() {
        if !st.index.contains_key(v) {
            visit(v, edges, &mut st);
        }
    }
    st.out
}

/// Every violation of the map and every cycle, one line each (empty when the shape holds).
fn violations(files: &[SourceFile], layers: &BTreeMap<String, usize>) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut problems = Vec::new();
    for m in modules.iter().filter(|m| m.len() == 1) {
        if !layers.contains_key(&m[0]) {
            problems.push(format!("module `{}` is not in src/lib.rs's layer map: add it to the layer it belongs to", m[0]));
        }
    }
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut top_sites: BTreeMap<(String, String), Site> = BTreeMap::new();
    let mut file_edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut file_sites: BTreeMap<(Vec<String>, Vec<String>), Site> = BTreeMap::new();
    for f in files {
        for (path, line) in references(f) {
            let Some(target) = owner(&path, &modules) else { continue };
            let site = Site { file: f.rel.clone(), line };
            let (Some(from), Some(to)) = (f.module.first(), target.first()) else { continue };
            if from != to {
                if let (Some(lf), Some(lt)) = (layers.get(from), layers.get(to)) {
                    if lt < lf {
                        problems.push(format!(
                            "{}:{}: `{from}` (layer {lf}) imports `{}` from `{to}` (layer {lt}): an upward import against src/lib.rs's layer map",
                            site.file,
                            site.line,
                            path.join("::")
                        ));
                    }
                }
                top.entry(from.clone()).or_default().insert(to.clone());
                top_sites.entry((from.clone(), to.clone())).or_insert_with(|| site.clone());
            }
            // a file and its ancestors (the mod.rs files that declare it) are one unit
            let related = target.starts_with(&f.module) || f.module.starts_with(target);
            if !related {
                file_edges.entry(f.module.clone()).or_default().insert(target.clone());
                file_sites.entry((f.module.clone(), target.clone())).or_insert(site);
            }
        }
    }
    for comp in cycles(&top) {
        let set: BTreeSet<&String> = comp.iter().collect();
        let mut lines = Vec::new();
        for ((a, b), s) in &top_sites {
            if set.contains(a) && set.contains(b) {
                lines.push(format!("    {}:{}: {a} -> {b}", s.file, s.line));
            }
        }
        problems.push(format!("import cycle between modules {}:\n{}", comp.join(", "), lines.join("\n")));
    }
    for comp in cycles(&file_edges) {
        let set: BTreeSet<&Vec<String>> = comp.iter().collect();
        let mut lines = Vec::new();
        for ((a, b), s) in &file_sites {
            if set.contains(a) && set.contains(b) {
                lines.push(format!("    {}:{}: {} -> {}", s.file, s.line, a.join("::"), b.join("::")));
            }
        }
        let names: Vec<String> = comp.iter().map(|m| m.join("::")).collect();
        problems.push(format!("import cycle between files {}:\n{}", names.join(", "), lines.join("\n")));
    }
    problems
}

#[test]
fn layers_only_point_down_and_no_module_imports_in_a_cycle() {
    let problems = violations(&read_sources(), &layer_map());
    assert!(problems.is_empty(), "the module graph broke its shape ({} problems):\n{}", problems.len(), problems.join("\n"));
}

/// The checker itself, on made-up sources: an upward import and a cycle are both caught, with
/// their file and line; a downward import is not.
#[test]
fn the_checker_catches_an_upward_import_and_a_cycle() {
    let file = |rel: &str, module: &[&str], text: &str| SourceFile {
        rel: rel.to_string(),
        module: module.iter().map(|s| s.to_string()).collect(),
        text: text.to_string(),
    };
    let layers: BTreeMap<String, usize> = [("top", 0), ("low", 1)].into_iter().map(|(m, l)| (m.to_string(), l)).collect();
    let files = vec![
        file("src/top/mod.rs", &["top"], "use crate::low::x::{a, b::C};\n"),
        file("src/low/mod.rs", &["low"], "mod x;\n"),
        file("src/low/x.rs", &["low", "x"], "// crate::top in a comment is no import\nfn f() {\n    super::y::g();\n}\n"),
        file("src/low/y.rs", &["low", "y"], "use crate::{\n    low::x,\n    top::Thing,\n};\n"),
    ];
    let p = violations(&files, &layers);
    assert!(p.iter().any(|l| l.starts_with("src/low/y.rs:3: `low` (layer 1) imports `top::Thing`")), "{p:#?}");
    assert!(p.iter().any(|l| l.contains("import cycle between files low::x, low::y") && l.contains("src/low/x.rs:3")), "{p:#?}");
    assert!(p.iter().any(|l| l.contains("import cycle between modules low, top")), "{p:#?}");
    assert!(!p.iter().any(|l| l.contains("src/top/mod.rs:1: `top`")), "a downward import is fine: {p:#?}");
    assert!(!p.iter().any(|l| l.contains("src/low/x.rs:1")), "a comment is not an import: {p:#?}");
}
