//! `<set-method>`: change the method of the backend request.

use super::*;
use crate::exec::value;

#[derive(Clone, Debug)]
pub struct SetMethod(pub Val<Method>);

impl Policy for SetMethod {
    fn read(r: &mut Reader, _element: &str) -> Option<Self> {
        r.no_children();
        let v = r
            .text_value(true, parse_method)
            .unwrap_or(Val::Lit(Method::GET));
        Some(SetMethod(v))
    }

    fn needs(&self) -> Needs {
        Needs::NONE
    }

    fn exprs(&self, f: &mut dyn FnMut(&Expr)) {
        visit_val(&self.0, f);
    }
}

impl RunsNow for SetMethod {
    fn run(&self, cx: &mut ExecCtx<'_>, _at: &At<'_>) -> Outcome {
        cx.req.method = value(&self.0, cx)?.into_owned();
        Ok(Step::Next)
    }
}
