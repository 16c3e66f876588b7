//! `<base/>` (the parent scope's section, placed by composition) and `<include-fragment>`
//! (a fragment's statements, placed at load). Neither does anything when the request runs.

use super::*;

#[derive(Clone, Debug)]
pub struct Base;

impl Policy for Base {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        Some(Base)
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }
}

impl RunsNow for Base {
    fn run(&self, _cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        Ok(Step::Next)
    }
}

#[derive(Clone, Debug)]
pub struct IncludeFragment {
    pub id: String,
}

impl Policy for IncludeFragment {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let id = r.required_literal("fragment-id").unwrap_or_default();
        Some(IncludeFragment { id })
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }
}

impl RunsNow for IncludeFragment {
    fn run(&self, _cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        Ok(Step::Next)
    }
}
