//! `<xsl-transform>`: transform the body (request in inbound and backend, response in outbound
//! and on-error) with an XSLT 1.0 stylesheet, its `<parameter parameter-name>` values (literal
//! or expression) passed as string parameters.
//!
//! The processor is libxslt, the reference XSLT 1.0 implementation, run as its own command-line
//! front end `xsltproc` in a child process: a crash or a runaway stylesheet takes the child,
//! never the gateway, and the child gets `--nonet --nowrite --nomkdir` (no network, no files
//! written), a depth bound, a 5 s deadline, an output bound (`limits.max_body_bytes`) and a
//! cap on how many run at once. (The Rust binding of libxslt cannot be used safely: its
//! stylesheet handle is not `Send`, a stylesheet that fails to compile becomes a null pointer
//! it dereferences, and it has no way to set libxslt's security preferences.) A body with a
//! DTD is refused before the child sees it (as .NET's default `DtdProcessing.Prohibit` does),
//! so no external entity is ever read. The stylesheet is compiled by `xsltproc` at load, so a
//! bad one is a load error; without `xsltproc` installed the policy is load error P025.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::exec::{value, ErrorKind};

/// Longest a transformation may run.
const DEADLINE: Duration = Duration::from_secs(5);
/// Deepest template recursion libxslt allows (its default is 3000).
const MAX_DEPTH: &str = "3000";

#[derive(Clone, Debug)]
pub struct XslTransform {
    pub params: Vec<(String, Val<String>)>,
    pub stylesheet: Arc<Stylesheet>,
}

/// A compiled-at-load stylesheet: the file `xsltproc` reads, and the program itself.
#[derive(Debug)]
pub struct Stylesheet {
    pub path: PathBuf,
    pub program: PathBuf,
}

enum Problem {
    NoTool,
    Bad(String),
}

/// `xsltproc` on the `PATH`.
fn program() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|d| d.join("xsltproc"))
                .find(|p| p.is_file())
        })
        .clone()
}

/// Where stylesheets are written: a directory of this user's, named by content.
fn stylesheet_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("gatehouse-xsl-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(dir)
}

impl Stylesheet {
    /// Write and compile a stylesheet (what loading the policy does).
    pub fn compile(source: &str) -> Result<Stylesheet, String> {
        Stylesheet::prepare(&with_xsl_namespace(source)).map_err(|p| match p {
            Problem::NoTool => "xsltproc is not installed".to_string(),
            Problem::Bad(e) => e,
        })
    }

    fn prepare(source: &str) -> Result<Stylesheet, Problem> {
        let program = program().ok_or(Problem::NoTool)?;
        let dir = stylesheet_dir().map_err(|e| Problem::Bad(format!("cannot write it: {e}")))?;
        let hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            source.hash(&mut h);
            h.finish()
        };
        let path = dir.join(format!("{hash:016x}.xsl"));
        if !path.is_file() {
            let tmp = dir.join(format!("{hash:016x}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, source)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| Problem::Bad(format!("cannot write it: {e}")))?;
        }
        let s = Stylesheet { path, program };
        s.check()?;
        Ok(s)
    }

    fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.program);
        c.env_clear()
            .args(["--nonet", "--nowrite", "--nomkdir", "--maxdepth", MAX_DEPTH]);
        c
    }

    /// Compile the stylesheet once: run it over an empty document (exit 4 / 5, or a
    /// "compilation error" on stderr: it does not parse or compile).
    fn check(&self) -> Result<(), Problem> {
        let mut child = self
            .command()
            .arg(&self.path)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|_| Problem::NoTool)?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(b"<gatehouse-check/>");
        }
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if started.elapsed() < DEADLINE => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = (&mut e).take(4096).read_to_string(&mut err);
        }
        match status.and_then(|s| s.code()) {
            Some(4 | 5) => Err(Problem::Bad(first_lines(&err))),
            // libxslt reports some compile errors (an unknown xsl: element) and goes on.
            _ if err.contains("compilation error") => Err(Problem::Bad(first_lines(&err))),
            None => Err(Problem::Bad("compiling it took longer than 5 s".into())),
            _ => Ok(()),
        }
    }

    /// Transform `body`; at most `max` bytes of output.
    pub async fn apply(
        &self,
        body: Bytes,
        params: &[(String, String)],
        max: u64,
    ) -> Result<Vec<u8>, String> {
        let _permit = slots().acquire().await.map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::from(self.command());
        for (k, v) in params {
            cmd.arg("--stringparam").arg(k).arg(v);
        }
        let mut child = cmd
            .arg(&self.path)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start xsltproc: {e}"))?;
        let mut stdin = child.stdin.take();
        let writer = tokio::spawn(async move {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&body).await;
            }
        });
        let mut stdout = child.stdout.take().ok_or("no output")?;
        let mut stderr = child.stderr.take().ok_or("no error output")?;
        let run = async {
            let mut out = Vec::new();
            (&mut stdout)
                .take(max.saturating_add(1))
                .read_to_end(&mut out)
                .await
                .map_err(|e| e.to_string())?;
            if out.len() as u64 > max {
                return Err(format!("the result is larger than {max} bytes"));
            }
            let mut err = Vec::new();
            let _ = (&mut stderr).take(4096).read_to_end(&mut err).await;
            let status = child.wait().await.map_err(|e| e.to_string())?;
            if status.success() {
                Ok(out)
            } else {
                Err(first_lines(&String::from_utf8_lossy(&err)))
            }
        };
        let r = tokio::time::timeout(DEADLINE, run)
            .await
            .unwrap_or_else(|_| Err("the transformation took longer than 5 s".into()));
        writer.abort();
        r
    }
}

/// How many transformations run at once (each is a process): twice the cores.
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(n * 2)
    })
}

fn first_lines(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        "xsltproc failed".into()
    } else {
        lines.join("; ")
    }
}

/// libxslt's `file /tmp/.../x.xsl line N` as the line of the policy document (the stylesheet
/// starts on `first`).
fn policy_lines(message: &str, first: u32) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("file ") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let Some(j) = after.find(".xsl line ") else {
            out.push_str("file ");
            rest = after;
            continue;
        };
        let tail = &after[j + 10..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let n: u32 = digits.parse().unwrap_or(1);
        out.push_str(&format!("line {}", first + n.saturating_sub(1)));
        rest = &tail[digits.len()..];
    }
    out.push_str(rest);
    out
}

/// A stylesheet whose `xsl` prefix is declared on an ancestor (the policy document) gets the
/// declaration on its own root.
fn with_xsl_namespace(source: &str) -> String {
    if source.contains("xmlns:xsl=") || !source.starts_with("<xsl:") {
        return source.to_string();
    }
    let end = source
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(source.len());
    format!(
        "{} xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\"{}",
        &source[..end],
        &source[end..]
    )
}

/// Whether an XML body declares a DTD (refused: no entity of a client's is ever expanded).
fn has_doctype(body: &[u8]) -> bool {
    let mut r = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    for _ in 0..64 {
        match r.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::DocType(_)) => return true,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_))
            | Ok(quick_xml::events::Event::Eof)
            | Err(_) => return false,
            Ok(_) => buf.clear(),
        }
    }
    false
}

impl Policy for XslTransform {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        let mut params = Vec::new();
        let mut source = None;
        for el in r.children() {
            if el.name == "parameter" {
                let mut c = r.child(el);
                let name = c.required_literal("parameter-name");
                let v = c
                    .text_value(false, |s| Ok(s.to_string()))
                    .unwrap_or(Val::Lit(String::new()));
                c.children_checked = true;
                c.finish();
                if let Some(n) = name {
                    params.push((n, v));
                }
            } else if matches!(el.name.rsplit(':').next(), Some("stylesheet" | "transform")) {
                source = el.text().map(|t| (t.value, t.span));
            } else {
                not_allowed(
                    r.diags,
                    el,
                    "xsl-transform",
                    "<parameter> or <xsl:stylesheet>",
                );
            }
        }
        let Some((source, span)) = source else {
            r.diags.error(
                "P012",
                r.el.span.clone(),
                "<xsl-transform> needs an <xsl:stylesheet>",
            );
            return None;
        };
        match Stylesheet::prepare(&with_xsl_namespace(&source)) {
            Ok(s) => Some(XslTransform {
                params,
                stylesheet: Arc::new(s),
            }),
            Err(Problem::NoTool) => {
                r.diags.error(
                    "P025",
                    span,
                    "xsl-transform runs libxslt's `xsltproc`, which is not installed (Debian: apt-get install xsltproc)",
                );
                None
            }
            Err(Problem::Bad(e)) => {
                let e = policy_lines(&e, span.line);
                r.diags.error(
                    "P012",
                    span,
                    format!("the XSLT stylesheet does not compile: {e}"),
                );
                None
            }
        }
    }

    fn needs(&self) -> Needs {
        Needs {
            request_body: true,
            response_body: true,
            replaces_request_body: true,
        }
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        for (_, v) in &self.params {
            visit_val(v, f);
        }
    }
}

impl Waits for XslTransform {
    async fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        let mut params = Vec::with_capacity(self.params.len());
        for (k, v) in &self.params {
            params.push((k.clone(), value(v, cx)?.into_owned()));
        }
        let body = cx.section_body().unwrap_or_default();
        let fail = |e: String| StepError::new(ErrorKind::Internal, format!("xsl-transform: {e}"));
        if has_doctype(&body) {
            return Err(fail(
                "the body declares a DTD, which is not processed".into(),
            ));
        }
        let max = cx.gw.limits.max_body_bytes;
        let out = Box::pin(self.stylesheet.apply(body, &params, max))
            .await
            .map_err(fail)?;
        cx.set_section_body(Bytes::from(out));
        Ok(Step::Next)
    }
}
