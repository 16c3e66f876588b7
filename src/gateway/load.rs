//! The loader: every file a configuration names, read before compiling, so that `compile` does
//! no I/O (and compiles the same input the same way wherever that input came from).
//!
//! Read here: named values (`env:` variables and `file:` contents), certificate, key and CA files (the `certificates` section, backend TLS), listener
//! TLS files (only whether they exist), and the policies directory (the XML files of
//! `fragments/`, `products/`, `apis/` and `apis/<api>/`, and `global.xml`) with each document's
//! text, bounded by the document limits. A file that cannot be read is kept as its error; compile
//! reports it with the same diagnostic as a file it would have failed to read itself.

use std::path::{Path, PathBuf};

use ahash::AHashMap;

use crate::config::{LoadedConfig, NamedValue};
use crate::diag::{Diagnostics, Invalid};
use crate::policy::{self, Scope};

#[derive(Default)]
pub struct Sources {
    /// Every named value resolved (secrets from the environment or files), and what was wrong
    /// with them.
    pub named: AHashMap<String, NamedValue>,
    pub named_diagnostics: Diagnostics,
    /// Certificate, key and CA files by path (joined to the configuration's directory).
    files: AHashMap<PathBuf, Result<Vec<u8>, Invalid>>,
    /// Paths that name a regular file (listener TLS files).
    present: AHashMap<PathBuf, bool>,
    /// The `.xml` files of each policy directory read: (file stem, path), sorted.
    xml_dirs: AHashMap<PathBuf, Vec<(String, PathBuf)>>,
    /// Policy document texts by path: at most one byte past the limit is read.
    texts: AHashMap<PathBuf, Result<String, Invalid>>,
    /// The global policy document, when it is not `global.xml` (an APIOps extract's).
    global: Option<PathBuf>,
}

impl Sources {
    /// Read everything `cfg` names.
    pub fn read(cfg: &LoadedConfig) -> Sources {
        let mut s = Sources::default();
        s.named = crate::config::resolve_named_values(cfg, &mut s.named_diagnostics);
        let mut file = |f: &str| {
            let path = cfg.dir.join(f);
            let read = std::fs::read(&path).map_err(|e| Invalid(e.to_string()));
            s.files.insert(path, read);
        };
        for c in &cfg.raw.certificates {
            file(&c.cert_file);
            if let Some(k) = &c.key_file {
                file(k);
            }
        }
        for f in cfg
            .raw
            .trust
            .ca_files
            .iter()
            .chain(&cfg.raw.trust.crl_files)
        {
            file(f);
        }
        if let Some(t) = &cfg.raw.store.tls {
            for f in [&t.ca_file, &t.cert_file, &t.key_file]
                .into_iter()
                .flatten()
            {
                file(f);
            }
        }
        for b in &cfg.raw.backends {
            let t = &b.tls;
            for f in [&t.ca_file, &t.client_cert_file, &t.client_key_file]
                .into_iter()
                .flatten()
            {
                file(f);
            }
        }
        for l in &cfg.raw.listeners {
            if let Some(tls) = &l.tls {
                for f in tls.files() {
                    let path = cfg.dir.join(f);
                    let is_file = path.is_file();
                    s.present.insert(path, is_file);
                }
            }
        }
        let dir = super::compile::clean_path(&cfg.dir.join(&cfg.raw.policies.dir));
        s.read_xml_dir(&dir.join("fragments"), policy::MAX_FRAGMENT_BYTES);
        let global = dir.join("global.xml");
        if global.is_file() {
            s.read_text(&global, policy::MAX_DOCUMENT_BYTES);
        }
        s.read_xml_dir(&dir.join("products"), policy::MAX_DOCUMENT_BYTES);
        s.read_xml_dir(&dir.join("apis"), policy::MAX_DOCUMENT_BYTES);
        for api in &cfg.raw.apis {
            s.read_xml_dir(&dir.join("apis").join(&api.id), policy::MAX_DOCUMENT_BYTES);
        }
        if let Some(files) = &cfg.apiops {
            s.add_apiops(&dir, files);
        }
        s
    }

    /// An APIOps extract's documents, filed where the policy directory's would be (by id), under
    /// their own paths (so that diagnostics name the extract's files).
    fn add_apiops(&mut self, dir: &Path, files: &crate::config::apiops::PolicyFiles) {
        let max = policy::MAX_DOCUMENT_BYTES;
        let file = |s: &mut Sources, sub: PathBuf, id: &str, path: &Path, max: usize| {
            s.read_text(path, max);
            let list = s.xml_dirs.entry(sub).or_default();
            list.retain(|(i, _)| i != id);
            list.push((id.to_string(), path.to_path_buf()));
            list.sort();
        };
        for (id, p) in &files.fragments {
            file(
                self,
                dir.join("fragments"),
                id,
                p,
                policy::MAX_FRAGMENT_BYTES,
            );
        }
        for (id, p) in &files.products {
            file(self, dir.join("products"), id, p, max);
        }
        for (id, p) in &files.apis {
            file(self, dir.join("apis"), id, p, max);
        }
        for (api, op, p) in &files.operations {
            file(self, dir.join("apis").join(api), op, p, max);
        }
        if let Some(g) = &files.global {
            self.read_text(g, max);
            self.global = Some(g.clone());
        }
    }

    /// Where the global policy document is (`global.xml` of the policy directory, unless an
    /// APIOps extract gives one).
    pub fn global_path(&self, dir: &Path) -> PathBuf {
        self.global
            .clone()
            .unwrap_or_else(|| dir.join("global.xml"))
    }

    fn read_xml_dir(&mut self, dir: &Path, max: usize) {
        let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
            .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p.clone())))
            .collect();
        found.sort();
        for (_, p) in &found {
            self.read_text(p, max);
        }
        self.xml_dirs.insert(dir.to_path_buf(), found);
    }

    fn read_text(&mut self, path: &Path, max: usize) {
        let text =
            crate::config::read_bounded(path, max as u64 + 1).map_err(|e| Invalid(e.to_string()));
        self.texts.insert(path.to_path_buf(), text);
    }

    /// A certificate, key or CA file's bytes, or why it could not be read.
    pub fn file(&self, path: &Path) -> Result<&[u8], Invalid> {
        match self.files.get(path) {
            Some(Ok(b)) => Ok(b),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Invalid::from("not read by the loader")),
        }
    }

    /// Whether a listener TLS file exists.
    pub fn is_file(&self, path: &Path) -> bool {
        self.present.get(path).copied().unwrap_or(false)
    }

    /// The `.xml` files of a policy directory: (file stem, path), sorted.
    pub fn xml_files(&self, dir: &Path) -> &[(String, PathBuf)] {
        self.xml_dirs.get(dir).map_or(&[], |v| v.as_slice())
    }

    /// Whether a policy document was found (and read) at `path`.
    pub fn has_text(&self, path: &Path) -> bool {
        self.texts.contains_key(path)
    }

    /// A policy document's text (possibly one byte past its limit), or why it could not be read.
    pub fn text(&self, path: &Path) -> Result<&str, Invalid> {
        match self.texts.get(path) {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Invalid::from("not read by the loader")),
        }
    }
}

/// What `gatehouse check --policy` checks a document with, besides the document itself.
#[derive(Default)]
pub struct CheckWith<'a> {
    /// A configuration whose named values (and, without `fragments`, whose policy directory's
    /// fragments) apply.
    pub config: Option<&'a LoadedConfig>,
    /// `NAME=VALUE` pairs, over the configuration's.
    pub named: Vec<(String, String)>,
    /// A directory of fragments (`<id>.xml`).
    pub fragments: Option<&'a Path>,
}

/// Check one standalone policy or fragment document (`gatehouse check --policy`): read it, its
/// named values and fragments, then `compile::check_policy_text`.
pub fn check_policy_file(path: &Path, scope: Scope, with: &CheckWith) -> Diagnostics {
    let mut d = Diagnostics::new();
    let mut standalone = super::compile::Standalone::default();
    let mut fragments_dir = with.fragments.map(Path::to_path_buf);
    if let Some(cfg) = with.config {
        standalone.named = crate::config::resolve_named_values(cfg, &mut d);
        if fragments_dir.is_none() {
            let dir = super::compile::clean_path(&cfg.dir.join(&cfg.raw.policies.dir));
            fragments_dir = Some(dir.join("fragments"));
        }
    }
    for (name, value) in &with.named {
        standalone.named.insert(
            name.clone(),
            NamedValue {
                value: value.clone(),
                secret: false,
            },
        );
    }
    if let Some(dir) = fragments_dir {
        let mut s = Sources::default();
        s.read_xml_dir(&dir, policy::MAX_FRAGMENT_BYTES);
        for (id, p) in s.xml_files(&dir) {
            let text = s.text(p).map(str::to_string);
            standalone.fragments.push((id.clone(), p.clone(), text));
        }
    }
    let text = crate::config::read_bounded(path, policy::MAX_DOCUMENT_BYTES as u64 + 1)
        .map_err(|e| Invalid(e.to_string()));
    d.extend(super::compile::check_policy_text(
        path,
        text.as_deref().map_err(Invalid::clone),
        scope,
        &standalone,
    ));
    // Secret named values from the configuration never appear in what is printed.
    let secrets: Vec<String> = standalone
        .named
        .values()
        .filter(|v| v.secret)
        .map(|v| v.value.clone())
        .collect();
    d.mask_secrets(&secrets);
    d.sorted()
}

/// The first policy element in a document that gatehouse does not run (Azure-only or not yet),
/// with its position; `None` for a document that cannot be read or parsed (compile reports it).
/// What `--skip-unsupported` uses to leave out an APIOps API (`config::apiops::set_policy_scan`).
pub fn unsupported_policy(file: &Path) -> Option<(crate::diag::Span, String)> {
    let text = crate::config::read_bounded(file, policy::MAX_DOCUMENT_BYTES as u64).ok()?;
    let name: std::sync::Arc<str> = std::sync::Arc::from(file.display().to_string());
    let root = policy::xml::parse(&name, &text).ok()?;
    fn walk(e: &policy::xml::Element) -> Option<(crate::diag::Span, String)> {
        if policy::catalog::lookup(&e.name).is_some() {
            return Some((e.span.clone(), e.name.clone()));
        }
        e.elements().find_map(walk)
    }
    walk(&root)
}
