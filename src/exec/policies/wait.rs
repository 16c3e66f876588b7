//! `<wait for="all|any">`: its send-request and cache-lookup-value children run concurrently
//! (apim-reference.md §2.4). Each child's attributes are evaluated first, in order; then the
//! calls run together; then their results are assigned in document order. A `choose` child
//! picks its branch first; the branch's send-request / cache-lookup-value statements join the
//! concurrent calls, and any other statement in it runs in order before the calls start.
//! `any` finishes when the first call completes and drops (cancels) the rest; only that call's
//! variable is set.

use super::*;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::cache::CachingType;
use super::document::parse_statements;
use super::send_request::SendRequest;
use super::{cache_value, choose, send_request};
use crate::exec::{run_nested, value, ErrorKind};
use crate::expr::value::Message;

/// `<wait for="all|any">`: send-request, cache-lookup-value and choose children run
/// concurrently.
#[derive(Clone, Debug)]
pub struct Wait {
    pub any: Val<bool>,
    pub body: Vec<Stmt>,
}

impl Policy for Wait {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        read(r)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.any, f);
        self.body.iter().for_each(|s| s.visit_exprs(f));
    }

    fn children(&self) -> Vec<&Stmt> {
        self.body.iter().collect()
    }
}

impl Waits for Wait {
    async fn run(&self, cx: &mut ExecCtx<'_>, at: &At<'_>) -> Outcome {
        match run(&self.any, &self.body, cx, at.inner()).await? {
            None => Ok(Step::Next),
            Some(flow) => Ok(Step::End(flow)),
        }
    }
}

fn read(r: &mut Reader) -> Option<Wait> {
    let any = r
        .value("for", |s| match s.trim() {
            "all" => Ok(false),
            "any" => Ok(true),
            other => Err(crate::invalid!("`for` must be all or any, found {other:?}")),
        })
        .unwrap_or(Val::Lit(false));
    r.children_checked = true;
    let body = parse_statements(r.el, r.env, r.diags);
    for st in &body {
        if !matches!(
            st.kind,
            StmtKind::SendRequest(_) | StmtKind::CacheLookupValue(_) | StmtKind::Choose(_)
        ) {
            r.diags.error(
                "P046",
                st.span.clone(),
                format!(
                    "<{}> cannot be a child of <wait>; its children are send-request, cache-lookup-value and choose",
                    st.element
                ),
            );
        }
    }
    Some(Wait { any, body })
}

enum Job<'s> {
    Send(&'s SendRequest, Box<send_request::Prepared>),
    Lookup {
        key: String,
        variable: &'s str,
        default: Option<&'s Val<String>>,
        caching: CachingType,
    },
}

enum Done {
    Send(Result<Message, (ErrorKind, String)>),
    Lookup(Option<Vec<u8>>),
}

type JobFuture<'a> = Pin<Box<dyn Future<Output = Done> + Send + 'a>>;

/// Ok(None): continue after the wait; Ok(Some(flow)): the section ends with `flow`.
async fn run<'s>(
    any: &Val<bool>,
    body: &'s [Stmt],
    cx: &mut ExecCtx<'_>,
    inner: String,
) -> Result<Option<Flow>, StepError> {
    let any = *value(any, cx)?;
    let mut jobs: Vec<Job<'s>> = Vec::new();
    if let Some(flow) = collect(body, cx, &inner, &mut jobs).await? {
        return Ok(Some(flow));
    }
    let (transport, store) = (cx.transport, cx.store);
    let mut futures: Vec<Option<JobFuture>> = jobs
        .iter()
        .map(|j| -> Option<JobFuture> {
            Some(match j {
                Job::Send(_, p) => {
                    Box::pin(async move { Done::Send(send_request::call(transport, p).await) })
                }
                Job::Lookup { key, caching, .. } => {
                    let (key, caching) = (key.clone(), *caching);
                    Box::pin(
                        async move { Done::Lookup(cache_value::get(store, &key, caching).await) },
                    )
                }
            })
        })
        .collect();
    let mut results: Vec<Option<Done>> = (0..jobs.len()).map(|_| None).collect();
    std::future::poll_fn(|task| {
        for (i, slot) in futures.iter_mut().enumerate() {
            if let Some(f) = slot {
                if let Poll::Ready(d) = f.as_mut().poll(task) {
                    results[i] = Some(d);
                    *slot = None;
                }
            }
        }
        let finished = results.iter().filter(|r| r.is_some()).count();
        if finished == results.len() || (any && finished > 0) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    drop(futures);
    for (job, done) in jobs.iter().zip(results) {
        match (job, done) {
            (Job::Send(r, _), Some(Done::Send(res))) => {
                if let Some(var) = &r.response_variable {
                    send_request::finish(var, r.ignore_error, res, cx)?;
                }
            }
            (
                Job::Lookup {
                    variable, default, ..
                },
                Some(Done::Lookup(found)),
            ) => cache_value::assign(found, variable, *default, cx)?,
            _ => {}
        }
    }
    Ok(None)
}

/// Evaluate the children into jobs; statements that cannot run concurrently (inside a chosen
/// branch) run now.
fn collect<'s, 'c, 'x>(
    body: &'s [Stmt],
    cx: &'c mut ExecCtx<'x>,
    inner: &'c str,
    jobs: &'c mut Vec<Job<'s>>,
) -> Pin<Box<dyn Future<Output = Result<Option<Flow>, StepError>> + Send + 'c>>
where
    's: 'c,
{
    Box::pin(async move {
        for (i, st) in body.iter().enumerate() {
            match &st.kind {
                StmtKind::SendRequest(r) if r.response_variable.is_some() => {
                    jobs.push(Job::Send(r, Box::new(send_request::prepare(r, cx)?)));
                }
                StmtKind::CacheLookupValue(cache_value::CacheLookupValue {
                    key,
                    variable,
                    default,
                    caching,
                }) => jobs.push(Job::Lookup {
                    key: value(key, cx)?.into_owned(),
                    variable,
                    default: default.as_ref(),
                    caching: *caching,
                }),
                StmtKind::Choose(c) => {
                    // Position among the same-named siblings, as everywhere else.
                    let n = body[..=i].iter().filter(|s| s.element == "choose").count();
                    let path = format!("{inner}choose[{n}]");
                    if let Some((branch, prefix)) = choose::select(c, cx, &path)? {
                        let concurrent = branch.iter().all(|s| {
                            matches!(
                                s.kind,
                                StmtKind::SendRequest(_) | StmtKind::CacheLookupValue(_)
                            )
                        });
                        if concurrent {
                            if let Some(f) = collect(branch, cx, inner, jobs).await? {
                                return Ok(Some(f));
                            }
                        } else {
                            match run_nested(branch, cx, prefix).await {
                                Flow::Continue => {}
                                other => return Ok(Some(other)),
                            }
                        }
                    }
                }
                _ => match run_nested(std::slice::from_ref(st), cx, inner.to_string()).await {
                    Flow::Continue => {}
                    other => return Ok(Some(other)),
                },
            }
        }
        Ok(None)
    })
}
