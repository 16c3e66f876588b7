//! The APIM policy elements gatehouse knows but does not run: which are not run yet and which
//! are Azure-only, and where each may appear (apim-reference.md Appendix A). The elements it
//! runs are registered with their modules in `exec::policies`.

use super::ast::Section;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// A real APIM policy that this build does not run yet: a load error, never skipped.
    NotYet,
    /// Depends on an Azure service or identity: a load error (apim-reference.md §6.1 tier 3).
    AzureOnly,
}

pub const I: u8 = 1;
pub const B: u8 = 2;
pub const O: u8 = 4;
pub const E: u8 = 8;
pub const ALL: u8 = I | B | O | E;

/// (element, support, allowed sections bitmask); section bits for `allowed_in`.
const CATALOG: &[(&str, Support, u8)] = &[
    ("cache-value", Support::NotYet, ALL),
    ("validate-graphql-request", Support::NotYet, I),
    // Neither depends on Azure: they are policies gatehouse does not run yet.
    ("llm-token-limit", Support::NotYet, I),
    ("llm-emit-token-metric", Support::NotYet, ALL),
    ("get-authorization-context", Support::AzureOnly, I),
    ("log-to-eventhub", Support::AzureOnly, ALL),
    ("send-service-bus-message", Support::AzureOnly, ALL),
    ("llm-semantic-cache-lookup", Support::AzureOnly, I),
    ("llm-semantic-cache-store", Support::AzureOnly, O),
    ("llm-content-safety", Support::AzureOnly, I),
    ("publish-to-dapr", Support::AzureOnly, ALL),
    ("invoke-dapr-binding", Support::AzureOnly, ALL),
    ("http-data-source", Support::AzureOnly, ALL),
    ("sql-data-source", Support::AzureOnly, ALL),
    ("cosmosdb-data-source", Support::AzureOnly, ALL),
    ("publish-event", Support::AzureOnly, ALL),
    ("invoke-request", Support::AzureOnly, ALL),
];

/// Every element listed here (for the docs check).
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG
        .iter()
        .map(|(n, _, _)| *n)
        .chain(std::iter::once("azure-openai-*"))
}

/// Look an element up; `azure-openai-*` policies are Azure-only as a family.
pub fn lookup(name: &str) -> Option<(&'static str, Support, u8)> {
    if let Some(&(n, s, m)) = CATALOG.iter().find(|(n, _, _)| *n == name) {
        return Some((n, s, m));
    }
    if name.starts_with("azure-openai-") {
        return Some(("azure-openai-*", Support::AzureOnly, ALL));
    }
    None
}

pub fn allowed_in(mask: u8, section: Section) -> bool {
    let bit = match section {
        Section::Inbound => I,
        Section::Backend => B,
        Section::Outbound => O,
        Section::OnError => E,
    };
    mask & bit != 0
}

/// The sections a mask allows, for messages.
pub fn sections_of(mask: u8) -> String {
    Section::ALL
        .into_iter()
        .filter(|s| allowed_in(mask, *s))
        .map(Section::name)
        .collect::<Vec<_>>()
        .join(", ")
}
