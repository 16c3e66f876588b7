//! The typed policy AST: what a policy document means once read and checked. Values are
//! `Val::Lit` (prepared at load) or `Val::Expr` (evaluated per request).

use crate::expr::Expr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    pub fn from_name(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Product,
    Api,
    Operation,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Product => "product",
            Scope::Api => "api",
            Scope::Operation => "operation",
        }
    }

    pub fn from_name(s: &str) -> Option<Scope> {
        [Scope::Global, Scope::Product, Scope::Api, Scope::Operation]
            .into_iter()
            .find(|x| x.name() == s)
    }
}

/// A literal prepared at load time, or an expression evaluated per request.
#[derive(Clone, Debug)]
pub enum Val<T> {
    Lit(T),
    Expr(Expr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistsAction {
    Override,
    Skip,
    Append,
    Delete,
}

impl ExistsAction {
    pub fn parse(s: &str) -> Option<ExistsAction> {
        match s {
            "override" => Some(ExistsAction::Override),
            "skip" => Some(ExistsAction::Skip),
            "append" => Some(ExistsAction::Append),
            "delete" => Some(ExistsAction::Delete),
            _ => None,
        }
    }
}

/// One piece of a rewrite-uri template: literal text or a `{param}` placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Param(String),
}

#[derive(Clone, Debug)]
pub struct UriTemplate {
    pub path: Vec<TemplatePart>,
    /// Query parameters named by the template: name and value template.
    pub query: Vec<(String, Vec<TemplatePart>)>,
}

/// Call `f` with the expression of a value, if it is one.
pub fn visit_val<T>(x: &Val<T>, f: &mut dyn FnMut(&crate::expr::Expr)) {
    if let Val::Expr(e) = x {
        f(e);
    }
}
