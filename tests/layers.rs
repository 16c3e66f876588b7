//! The layer rule of docs/architecture.md, read from the source: a module imports only from its
//! own layer or the layers below it, folders form no import cycle, and no pingora path appears in
//! the layers that must stay free of it. The test reads `src/` as text, so it needs no build of
//! its own and names every offending line at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, highest first. A module may name modules of its own rank or lower.
const LAYERS: &[(u8, &[&str])] = &[
    (7, &["main", "lib", "cli", "admin", "lifecycle", "systemd"]),
    (6, &["proxy"]),
    (5, &["runtime"]),
    (4, &["gateway"]),
    (3, &["exec"]),
    (2, &["upstream", "store", "observe"]),
    (1, &["policy"]),
    (0, &["expr"]),
];
/// The leaves sit below everything.
const LEAVES: &[&str] = &["codec", "net", "diag", "config"];

/// Layers that name no pingora type: the engine, documents, language, stores, raw configuration
/// and the leaves. (`upstream` builds its pools on pingora-load-balancing and `gateway` holds the
/// compiled certificates; the adapter resolves certificate ids against them.)
const NO_PINGORA: &[&str] = &[
    "exec", "policy", "expr", "store", "config", "codec", "net", "diag",
];

fn rank(module: &str) -> Option<i16> {
    if LEAVES.contains(&module) {
        return Some(-1);
    }
    LAYERS
        .iter()
        .find(|(_, ms)| ms.contains(&module))
        .map(|(r, _)| *r as i16)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap_or_else(|e| panic!("{e}")).path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file under `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy());
    first
        .unwrap_or_default()
        .trim_end_matches(".rs")
        .to_string()
}

/// The line with comments and the contents of string literals blanked out, so that a doc comment
/// or a log target naming a module is not mistaken for an import. `in_block` carries a `/* */`
/// comment across lines.
fn code_of(line: &str, in_block: &mut bool) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        if *in_block {
            if b[i..].starts_with(b"*/") {
                *in_block = false;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        if in_str {
            if b[i] == b'\\' {
                i += 2;
                continue;
            }
            if b[i] == b'"' {
                in_str = false;
                out.push('"');
            }
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"//") {
            break;
        }
        if b[i..].starts_with(b"/*") {
            *in_block = true;
            i += 2;
            continue;
        }
        if b[i] == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
            continue;
        }
        // A char literal such as '"' would open a string: skip it whole.
        if b[i] == b'\'' && i + 2 < b.len() && b[i + 2] == b'\'' {
            out.push_str("' '");
            i += 3;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Every top-level module a line of code names through `crate::`, including the members of a
/// grouped `use crate::{a::X, b}`.
fn crate_refs(code: &str, group: &mut Option<i32>) -> Vec<String> {
    let mut refs = Vec::new();
    // Inside a multi-line `use crate::{ ... }`: each top-level item names a module.
    if let Some(depth) = *group {
        *group = scan_group(code, depth, &mut refs);
    }
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `gatehouse_crate::` or `$crate::` in a macro
        }
        if let Some(inner) = after.strip_prefix('{') {
            *group = scan_group(inner, 1, &mut refs);
        } else {
            let id = ident_at(after);
            // `crate::invalid!(...)` names an exported macro, not a module.
            let is_macro = after[id.len()..].starts_with('!');
            if !id.is_empty() && !is_macro {
                refs.push(id.to_string());
            }
        }
    }
    refs
}

/// Scan text inside a `use crate::{ ... }` group that is `depth` braces deep where `text`
/// starts, pushing the first identifier of each top-level item; the depth still open at the
/// end of `text` (`None` once the group closes).
fn scan_group(text: &str, mut depth: i32, refs: &mut Vec<String>) -> Option<i32> {
    let mut at_item = true;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return None;
                }
            }
            ',' => at_item = depth == 1,
            c if c.is_ascii_alphabetic() && at_item && depth == 1 => {
                refs.push(ident_at(&text[i..]).to_string());
                at_item = false;
            }
            c if !c.is_whitespace() => at_item = false,
            _ => {}
        }
    }
    Some(depth)
}

fn names_pingora(code: &str) -> bool {
    let mut rest = code;
    while let Some(at) = rest.find("pingora") {
        let before = rest[..at].chars().last();
        let after = rest[at + "pingora".len()..].chars().next();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && after.is_none_or(|c| c == ':' || c == '_' || c == ';' || c == ' ' || c == ',')
        {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

struct Scan {
    /// "src/x.rs:12: `exec` (rank 3) names `gateway` (rank 4)" lines.
    upward: Vec<String>,
    pingora: Vec<String>,
    unknown: BTreeSet<String>,
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn scan(src: &Path) -> Scan {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut s = Scan {
        upward: Vec::new(),
        pingora: Vec::new(),
        unknown: BTreeSet::new(),
        edges: BTreeMap::new(),
    };
    for file in &files {
        let module = module_of(src, file);
        let Some(own) = rank(&module) else {
            s.unknown.insert(module);
            continue;
        };
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let shown = file
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(file)
            .display();
        let mut in_block = false;
        let mut group = None;
        for (n, line) in text.lines().enumerate() {
            let code = code_of(line, &mut in_block);
            if NO_PINGORA.contains(&module.as_str()) && names_pingora(&code) {
                s.pingora
                    .push(format!("{shown}:{}: `{module}` names pingora", n + 1));
            }
            for target in crate_refs(&code, &mut group) {
                if target == module || target == "self" {
                    continue;
                }
                let Some(r) = rank(&target) else {
                    s.unknown.insert(target);
                    continue;
                };
                s.edges
                    .entry(module.clone())
                    .or_default()
                    .insert(target.clone());
                if r > own {
                    s.upward.push(format!(
                        "{shown}:{}: `{module}` imports `{target}`, a layer above it",
                        n + 1
                    ));
                }
            }
        }
    }
    s
}

/// A cycle among top-level modules, if there is one (modules of one rank may import each other,
/// but not in a circle).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|m| m == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn layers_import_downward_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let s = scan(&src);
    let mut problems = Vec::new();
    if !s.unknown.is_empty() {
        problems.push(format!(
            "modules missing from the layer table (tests/layers.rs, docs/architecture.md): {:?}",
            s.unknown
        ));
    }
    problems.extend(s.upward);
    problems.extend(s.pingora);
    if let Some(c) = cycle(&s.edges) {
        problems.push(format!("import cycle between folders: {}", c.join(" -> ")));
    }
    assert!(
        problems.is_empty(),
        "{} layer violation(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The scanner itself: a check that reads text must be shown to see what it looks for.
#[test]
fn the_scanner_sees_imports_and_ignores_comments_and_strings() {
    let mut group = None;
    let mut block = false;
    let refs = |line: &str, g: &mut Option<i32>, b: &mut bool| crate_refs(&code_of(line, b), g);
    assert_eq!(
        refs("use crate::exec::state::ReqState;", &mut group, &mut block),
        ["exec"]
    );
    assert_eq!(
        refs(
            "use crate::{codec::path, gateway::{self, X}, diag};",
            &mut group,
            &mut block
        ),
        ["codec", "gateway", "diag"]
    );
    assert_eq!(
        refs("use crate::{", &mut group, &mut block),
        Vec::<String>::new()
    );
    assert_eq!(
        refs("    exec::{Flow, Step},", &mut group, &mut block),
        ["exec"]
    );
    assert_eq!(refs("    policy::ast,", &mut group, &mut block), ["policy"]);
    assert_eq!(refs("};", &mut group, &mut block), Vec::<String>::new());
    assert!(group.is_none());
    assert_eq!(
        refs(
            "let x = crate::gateway::compile(a); // crate::proxy",
            &mut group,
            &mut block
        ),
        ["gateway"]
    );
    assert!(refs("/// see crate::proxy::Ctx", &mut group, &mut block).is_empty());
    assert!(refs("Err(crate::invalid!(\"x\"))", &mut group, &mut block).is_empty());
    assert!(refs(r#"let s = "crate::proxy";"#, &mut group, &mut block).is_empty());
    assert!(refs("/* crate::proxy", &mut group, &mut block).is_empty());
    assert!(refs("crate::proxy */ let a = 1;", &mut group, &mut block).is_empty());
    assert!(names_pingora(&code_of(
        "use pingora::prelude::*;",
        &mut block
    )));
    assert!(names_pingora(&code_of(
        "x: Arc<pingora::utils::tls::CertKey>,",
        &mut block
    )));
    assert!(!names_pingora(&code_of("// pingora does this", &mut block)));
    assert!(!names_pingora(&code_of(
        r#"t == "pingora_proxy""#,
        &mut block
    )));
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle(&edges).is_some());
    edges.remove("b");
    assert!(cycle(&edges).is_none());
}
