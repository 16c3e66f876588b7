//! libxml2's and libxslt's own programs (`xsltproc`, `xmllint`) run as child processes over a
//! body: what xsl-transform and XML Schema validation share. A child gets an empty environment,
//! no network (`--nonet`), the body on its stdin, a deadline, an output bound, and a cap on how
//! many children run at once; a crash or a runaway input takes the child, never the gateway.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest a child may run.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A program on the `PATH` (looked up once per name).
pub fn program(name: &'static str) -> Option<PathBuf> {
    type Found = Vec<(&'static str, Option<PathBuf>)>;
    static FOUND: OnceLock<std::sync::Mutex<Found>> = OnceLock::new();
    let m = FOUND.get_or_init(Default::default);
    let mut m = m.lock().ok()?;
    if let Some((_, p)) = m.iter().find(|(n, _)| *n == name) {
        return p.clone();
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    m.push((name, found.clone()));
    found
}

/// A directory of this user's for files children read (stylesheets, schemas), named by
/// content so that instances and reloads share them.
pub fn write_shared(kind: &str, extension: &str, content: &str) -> std::io::Result<PathBuf> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("gatehouse-{kind}-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // A directory someone else made (or a link) in a shared /tmp would let them swap the files a
    // child reads: use only our own, private directory.
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::symlink_metadata(&dir)?;
    if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of this user",
            dir.display()
        )));
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut h);
    let hash = h.finish();
    let path = dir.join(format!("{hash:016x}.{extension}"));
    if !path.is_file() {
        let tmp = dir.join(format!("{hash:016x}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// What a child did.
pub struct Ran {
    /// Exit code (None: killed at the deadline or by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    /// The first 4 KiB of its error output.
    pub stderr: String,
}

/// Run at load (a check of a stylesheet or schema): blocking, with the deadline.
pub fn run_blocking(
    program: &Path,
    args: &[&std::ffi::OsStr],
    stdin: &[u8],
) -> std::io::Result<Ran> {
    use std::io::{Read, Write};
    let mut child = std::process::Command::new(program)
        .env_clear()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(stdin);
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait()? {
            Some(s) => break s.code(),
            None if started.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = (&mut e).take(4096).read_to_string(&mut stderr);
    }
    Ok(Ran {
        code: status,
        stdout: Vec::new(),
        stderr,
    })
}

/// How many children run at once: twice the cores.
fn slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(n * 2)
    })
}

/// Run over a request's body: at most `max` bytes of output, the deadline, the cap.
pub async fn run(
    program: &Path,
    args: Vec<std::ffi::OsString>,
    stdin: Bytes,
    max: u64,
) -> Result<Ran, String> {
    let _permit = slots().acquire().await.map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(program)
        .env_clear()
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut input = child.stdin.take();
    let writer = tokio::spawn(async move {
        if let Some(s) = input.as_mut() {
            let _ = s.write_all(&stdin).await;
        }
    });
    let mut stdout = child.stdout.take().ok_or("no output")?;
    let mut stderr = child.stderr.take().ok_or("no error output")?;
    let work = async {
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
        Ok(Ran {
            code: status.code(),
            stdout: out,
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    };
    let r = tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| Err(format!("it took longer than {} s", DEADLINE.as_secs())));
    writer.abort();
    r
}

/// Whether an XML body declares a DTD (refused before a child sees it: no entity of a client's
/// is ever expanded, as .NET's default `DtdProcessing.Prohibit`).
pub fn has_doctype(body: &[u8]) -> bool {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    for _ in 0..64 {
        match r.read_event_into(&mut buf) {
            Ok(Event::DocType(_)) => return true,
            Ok(Event::Start(_) | Event::Empty(_) | Event::Eof) | Err(_) => return false,
            Ok(_) => buf.clear(),
        }
    }
    false
}

/// The first three lines of a child's error output, for a message.
pub fn first_lines(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        "the program failed".into()
    } else {
        lines.join("; ")
    }
}

/// An XML Schema (XSD) of `schemas:`, checked by libxml2's `xmllint`.
#[derive(Debug)]
pub struct XmlSchema {
    pub path: PathBuf,
    pub program: PathBuf,
}

impl XmlSchema {
    /// Compile the schema once (at load): `Err` says why it cannot be used.
    pub fn load(path: &Path) -> Result<XmlSchema, String> {
        let program = program("xmllint").ok_or(
            "XML schemas are checked by libxml2's `xmllint`, which is not installed (Debian: apt-get install libxml2-utils)",
        )?;
        let s = XmlSchema {
            path: path.to_path_buf(),
            program,
        };
        let args = s.args();
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let ran =
            run_blocking(&s.program, &refs, b"<gatehouse-check/>").map_err(|e| e.to_string())?;
        match ran.code {
            // 5: the schema does not compile.
            Some(5) | None => Err(first_lines(&ran.stderr)),
            _ => Ok(s),
        }
    }

    fn args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--nonet".into(),
            "--noout".into(),
            "--schema".into(),
            self.path.clone().into(),
            "-".into(),
        ]
    }

    /// Validate a document: `Ok(problems)` (empty: valid), `Err` when it is not well-formed XML
    /// or could not be checked.
    pub async fn validate(&self, body: Bytes) -> Result<Vec<String>, String> {
        let ran = run(&self.program, self.args(), body, 0).await?;
        match ran.code {
            Some(0) => Ok(Vec::new()),
            // 3 / 4: not valid against the schema; each problem is one line.
            Some(3 | 4) => Ok(ran
                .stderr
                .lines()
                .filter_map(|l| {
                    l.split_once("Schemas validity error : ")
                        .map(|(_, m)| m.trim())
                })
                .take(10)
                .map(str::to_string)
                .collect::<Vec<_>>())
            .map(|v| {
                if v.is_empty() {
                    vec!["not valid".to_string()]
                } else {
                    v
                }
            }),
            _ => Err(first_lines(&ran.stderr)),
        }
    }
}
