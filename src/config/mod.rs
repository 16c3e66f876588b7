//! Loading `gatehouse.yaml`: strict parsing, named-value resolution (plain and secret) and
//! positions for semantic errors found later.

pub mod apiops;
pub mod contract;
pub mod duration;
pub mod model;
pub mod openapi;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostics, LineIndex, Span};
pub use model::*;

/// A parsed configuration file together with its text, for positions of later errors.
pub struct LoadedConfig {
    pub raw: RawConfig,
    /// The policy documents of the APIOps extract merged in (`apiops`), if any.
    pub apiops: Option<apiops::PolicyFiles>,
    /// What loading the APIOps extract found (errors too): compile reports it with its own,
    /// and fails when it holds an error.
    pub load_diagnostics: Diagnostics,
    pub path: Arc<str>,
    pub dir: PathBuf,
    pub text: String,
    /// Built on first use: every `key: value` line of the text, so positions are found without
    /// rescanning it (compiling thousands of APIs asks for thousands of positions).
    located: std::sync::OnceLock<Located>,
}

type Entries = ahash::AHashMap<(String, String), Vec<(usize, usize)>>;

struct Located {
    starts: Vec<usize>,
    /// (key, value) -> (line start, offset of the value), in text order; key "" holds `- value`
    /// and bare lines.
    kv: Entries,
    /// key -> (line start, offset of the line's first character).
    keys: ahash::AHashMap<String, Vec<(usize, usize)>>,
}

impl Located {
    fn new(text: &str) -> Located {
        let (mut kv, mut keys): (Entries, ahash::AHashMap<String, Vec<(usize, usize)>>) =
            Default::default();
        let mut off = 0;
        for line in text.split_inclusive('\n') {
            let start = off;
            off += line.len();
            let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
            let col = start + line.len() - line.trim_start().len();
            let bare = trimmed.trim_end().trim_matches(|c| c == '"' || c == '\'');
            let value_at = |rest: &str| start + line.find(rest).unwrap_or(col - start);
            kv.entry((String::new(), bare.to_string()))
                .or_default()
                .push((start, value_at(trimmed)));
            if let Some((k, rest)) = trimmed.split_once(':') {
                let rest = rest.trim_start();
                let v = rest.trim_end().trim_matches(|c| c == '"' || c == '\'');
                kv.entry((k.to_string(), v.to_string()))
                    .or_default()
                    .push((start, value_at(rest)));
                keys.entry(k.to_string()).or_default().push((start, col));
            }
        }
        Located {
            starts: LineIndex::line_starts(text),
            kv,
            keys,
        }
    }

    /// The same answer as `find_kv`, from the index.
    fn find(&self, from: usize, key: &str, value: &str) -> Option<usize> {
        let list = if value.is_empty() && !key.is_empty() {
            self.keys.get(key)?
        } else {
            self.kv.get(&(key.to_string(), value.to_string()))?
        };
        list.iter()
            .find(|(start, _)| *start >= from)
            .map(|(_, at)| *at)
    }
}

impl LoadedConfig {
    fn located(&self) -> &Located {
        self.located.get_or_init(|| Located::new(&self.text))
    }

    /// Best-effort position of a value in the YAML text: the first line holding
    /// `key: value` (or `- value`) after any line holding `anchor`.
    pub fn locate(&self, anchor: Option<&str>, key: &str, value: &str) -> Span {
        let l = self.located();
        let start = anchor.and_then(|a| l.find(0, "id", a)).unwrap_or(0);
        let found = l
            .find(start, key, value)
            .or_else(|| l.find(0, key, value))
            .or_else(|| find_word(&self.text, start, value));
        match found {
            Some(off) => LineIndex::with_starts(&self.text, &l.starts).span(&self.path, off),
            None => Span::new(&self.path, 1, 1),
        }
    }

    pub fn locate_nth(&self, key: &str, value: &str, n: usize) -> Span {
        let l = self.located();
        let list = if value.is_empty() && !key.is_empty() {
            l.keys.get(key)
        } else {
            l.kv.get(&(key.to_string(), value.to_string()))
        };
        match list.and_then(|v| v.get(n)) {
            Some((_, at)) => LineIndex::with_starts(&self.text, &l.starts).span(&self.path, *at),
            None => Span::new(&self.path, 1, 1),
        }
    }

    pub fn file_span(&self) -> Span {
        Span::new(&self.path, 1, 1)
    }
}

pub fn locate_in(
    text: &str,
    file: &Arc<str>,
    anchor: Option<&str>,
    key: &str,
    value: &str,
) -> Span {
    let idx = LineIndex::new(text);
    let start = anchor.and_then(|a| find_kv(text, 0, "id", a)).unwrap_or(0);
    let found = find_kv(text, start, key, value)
        .or_else(|| find_kv(text, 0, key, value))
        .or_else(|| find_word(text, start, value));
    match found {
        Some(off) => idx.span(file, off),
        None => Span::new(file, 1, 1),
    }
}

/// The n-th (0-based) line holding `key: value`.
pub fn locate_nth(text: &str, file: &Arc<str>, key: &str, value: &str, n: usize) -> Span {
    let idx = LineIndex::new(text);
    let mut from = 0;
    let mut found = None;
    for _ in 0..=n {
        found = find_kv(text, from, key, value);
        match found {
            Some(off) => from = text[off..].find('\n').map_or(text.len(), |e| off + e + 1),
            None => break,
        }
    }
    found.map_or_else(|| Span::new(file, 1, 1), |off| idx.span(file, off))
}

/// First occurrence of `word` (not inside a longer name) at or after `from`.
fn find_word(text: &str, from: usize, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    let is_name = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut at = from;
    while let Some(i) = text.get(at..)?.find(word) {
        let s = at + i;
        let before = text[..s].chars().next_back().is_some_and(is_name);
        let after = text[s + word.len()..].chars().next().is_some_and(is_name);
        if !before && !after {
            return Some(s);
        }
        at = s + word.len();
    }
    None
}

/// Offset of the value in a line like `key: value`, `key: "value"` or `- value`, from `from`.
fn find_kv(text: &str, from: usize, key: &str, value: &str) -> Option<usize> {
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let line_start = off;
        off += line.len();
        if line_start < from {
            continue;
        }
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        let rest = if key.is_empty() {
            Some(trimmed)
        } else {
            trimmed
                .strip_prefix(key)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim_start)
        };
        let Some(rest) = rest else { continue };
        let v = rest.trim_end().trim_matches(|c| c == '"' || c == '\'');
        if v == value || (value.is_empty() && !key.is_empty()) {
            let col = line.len() - line.trim_start().len();
            let value_col = line.find(rest).unwrap_or(col);
            return Some(line_start + if value.is_empty() { col } else { value_col });
        }
    }
    None
}

/// Read and strictly parse a configuration file. Shape errors carry the YAML position.
/// The settings read only at start, by section, each as a fingerprint (never printed: the
/// store's URL may hold a password). A reload compares them and warns about each section that
/// changed, since it takes effect only at the next restart or upgrade.
pub fn start_only(raw: &RawConfig) -> Vec<(&'static str, String)> {
    vec![
        ("name", format!("{:?}", raw.name)),
        ("server", format!("{:?}", raw.server)),
        ("listeners", format!("{:?}", raw.listeners)),
        ("admin", format!("{:?}", raw.admin)),
        ("access_log", format!("{:?}", raw.access_log)),
        ("store", format!("{:?}", raw.store)),
        ("otlp", format!("{:?}", raw.otlp)),
    ]
}

pub fn load(path: &Path) -> Result<LoadedConfig, Diagnostics> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let mut diags = Diagnostics::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.error(
                "C001",
                Span::new(&file, 1, 1),
                format!("cannot read configuration: {e}"),
            );
            return Err(diags);
        }
    };
    load_text(path, text)
}

/// `--apiops DIR` on the command line: replaces the configuration's `apiops` for every load
/// (start, check, reload).
static APIOPS_OVERRIDE: std::sync::OnceLock<ApiopsSpec> = std::sync::OnceLock::new();

/// Set `--apiops` (once, before the first load).
pub fn set_apiops_override(dir: &Path, skip_unsupported: bool) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let _ = APIOPS_OVERRIDE.set(ApiopsSpec {
        dir: dir.display().to_string(),
        skip_unsupported,
    });
}

/// `load` of configuration text that claims to come from `path` (relative paths inside it are
/// relative to `path`'s directory).
pub fn load_text(path: &Path, text: String) -> Result<LoadedConfig, Diagnostics> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let mut diags = Diagnostics::new();
    match serde_yaml::from_str::<RawConfig>(&text) {
        Ok(mut raw) => {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if let Some(o) = APIOPS_OVERRIDE.get() {
                raw.apiops = Some(o.clone());
            }
            // The extract's problems go on to compile, which reports them with its own, all at
            // once (a policy problem in the extract is found only there).
            let mut from_apiops = Diagnostics::new();
            let apiops = raw.apiops.clone().map(|spec| {
                apiops::merge(
                    &mut raw,
                    &dir.join(&spec.dir),
                    spec.skip_unsupported,
                    &mut from_apiops,
                )
            });
            openapi::import(&mut raw.apis, &dir, &mut diags);
            if diags.has_errors() {
                diags.extend(from_apiops);
                return Err(diags);
            }
            Ok(LoadedConfig {
                located: Default::default(),
                apiops,
                load_diagnostics: from_apiops,
                raw,
                path: file,
                dir,
                text,
            })
        }
        Err(e) => {
            let (line, col) = e
                .location()
                .map_or((1, 1), |l| (l.line() as u32, l.column() as u32));
            let msg = e.to_string();
            // serde_yaml appends " at line X column Y"; the position is already in front.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            diags.error("C002", Span::new(&file, line, col), msg);
            Err(diags)
        }
    }
}

/// A resolved named value.
#[derive(Clone, Debug)]
pub struct NamedValue {
    pub value: String,
    pub secret: bool,
}

/// Largest file a named value is read from: a secret or a certificate, never more.
const MAX_NAMED_VALUE_FILE: u64 = 1024 * 1024;

/// Read a UTF-8 file of at most `limit` bytes (a device or a huge file is an error, not a
/// stall or an allocation of its size).
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(text)
}

/// Resolve every named value: plain text, or secrets from `env` / `file`.
pub fn resolve_named_values(
    cfg: &LoadedConfig,
    diags: &mut Diagnostics,
) -> ahash::AHashMap<String, NamedValue> {
    let mut out = ahash::AHashMap::new();
    for (name, spec) in &cfg.raw.named_values {
        let span = cfg.locate(None, name, "");
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            || name.is_empty()
        {
            diags.error(
                "C010",
                span.clone(),
                format!(
                    "named value {name:?}: names may hold only letters, digits, '.', '-' and '_'"
                ),
            );
        }
        let sources = [
            spec.value.is_some(),
            spec.env.is_some(),
            spec.file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if sources != 1 {
            diags.error(
                "C011",
                span,
                format!("named value {name:?} needs exactly one of `value`, `env` or `file`"),
            );
            continue;
        }
        let value = if let Some(v) = &spec.value {
            v.clone()
        } else if let Some(var) = &spec.env {
            match std::env::var(var) {
                Ok(v) => v,
                Err(_) => {
                    diags.error(
                        "C012",
                        span,
                        format!("named value {name:?}: environment variable {var} is not set"),
                    );
                    continue;
                }
            }
        } else if let Some(f) = &spec.file {
            let p = cfg.dir.join(f);
            match read_bounded(&p, MAX_NAMED_VALUE_FILE) {
                Ok(v) => v.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => {
                    diags.error(
                        "C013",
                        span,
                        format!("named value {name:?}: cannot read {}: {e}", p.display()),
                    );
                    continue;
                }
            }
        } else {
            continue;
        };
        let secret = spec.secret || spec.env.is_some() || spec.file.is_some();
        out.insert(name.clone(), NamedValue { value, secret });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_value_after_anchor() {
        let text = "apis:\n  - id: a\n    backend: x\n  - id: b\n    backend: x\n";
        let f: Arc<str> = Arc::from("c.yaml");
        let s = locate_in(text, &f, Some("b"), "backend", "x");
        assert_eq!((s.line, s.col), (5, 14));
    }
}
