//! The names the binder resolves at load: the members, methods and statics every family of
//! builtins registers beside its code (its `NAMES`), and the types `new` may build. A name no
//! family registers is a load error.

use super::super::types::{RType, Ty};
use super::{convert, linq};

/// What one family of builtins implements, by kind of name. Each family module registers its
/// names in a `NAMES` constant beside the code that implements them.
pub(super) struct Names {
    /// Properties (`x.Name`).
    pub members: &'static [&'static str],
    /// Methods (`x.Name(...)`).
    pub methods: &'static [&'static str],
    /// Static properties and enum-like constants (`string.Empty`, `DateTime.UtcNow`).
    pub static_members: &'static [&'static str],
    /// Static methods (`string.IsNullOrEmpty`, `JObject.Parse`).
    pub static_methods: &'static [&'static str],
}

/// Every family, with the file that implements it (for the test that a registered name is
/// implemented where it is registered).
const FAMILIES: &[(&Names, &str)] = &[
    (&super::NAMES, include_str!("mod.rs")),
    (&super::context::NAMES, include_str!("context.rs")),
    (&super::convert::NAMES, include_str!("convert.rs")),
    (&super::crypto::NAMES, include_str!("crypto.rs")),
    (&super::json::NAMES, include_str!("json.rs")),
    (&super::jwt::NAMES, include_str!("jwt.rs")),
    (&super::linq::NAMES, include_str!("linq.rs")),
    (&super::objects::NAMES, include_str!("objects.rs")),
    (&super::statics::NAMES, include_str!("statics.rs")),
    (&super::string::NAMES, include_str!("string.rs")),
    (&super::time::NAMES, include_str!("time.rs")),
    (&super::xml::NAMES, include_str!("xml.rs")),
    (&super::x509::NAMES, include_str!("x509.rs")),
];

fn find(n: &str, kinds: &[fn(&Names) -> &'static [&'static str]]) -> Option<&'static str> {
    kinds.iter().find_map(|kind| {
        FAMILIES
            .iter()
            .flat_map(|(f, _)| kind(f).iter())
            .find(|m| **m == n)
            .copied()
    })
}

/// A member name (a method name is accepted too: a method group read as a value).
pub fn member_name(n: &str) -> Option<&'static str> {
    find(n, &[|f| f.members, |f| f.methods])
        .or_else(|| linq::LINQ.iter().find(|m| **m == n).copied())
}

/// A method name (a member name is accepted too: a delegate-valued property called).
pub fn method_name(n: &str) -> Option<&'static str> {
    find(n, &[|f| f.methods])
        .or_else(|| linq::LINQ.iter().find(|m| **m == n).copied())
        .or_else(|| find(n, &[|f| f.members]))
}

/// Static properties and enum constants: `string.Empty`, `DateTime.UtcNow`, `Encoding.UTF8`.
pub fn static_member(ty: &RType, n: &str) -> Option<&'static str> {
    if ty.ty == Ty::Enum {
        return convert::enum_value(&ty.name, n).map(|e| e.name);
    }
    find(n, &[|f| f.static_members])
}

/// Static methods: `string.IsNullOrEmpty`, `JObject.Parse`, `Convert.ToBase64String`, ...
/// The type is not consulted: a registered name is accepted on any allowed type, and a
/// combination no family implements fails when it runs.
pub fn static_method(_ty: &RType, n: &str) -> Option<&'static str> {
    find(n, &[|f| f.static_methods])
}

pub fn constructible(t: &RType) -> bool {
    t.arrays > 0
        || matches!(
            t.ty,
            Ty::Object
                | Ty::String
                | Ty::List
                | Ty::Dictionary
                | Ty::HashSet
                | Ty::KeyValuePair
                | Ty::JObject
                | Ty::JArray
                | Ty::JValue
                | Ty::JProperty
                | Ty::Uri
                | Ty::Regex
                | Ty::Guid
                | Ty::DateTime
                | Ty::DateTimeOffset
                | Ty::TimeSpan
                | Ty::StringBuilder
                | Ty::Exception
                | Ty::Static
                | Ty::Bytes
                | Ty::IpAddress
                | Ty::X509
        ) && t.ty != Ty::XElement
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered name must appear in its family's code outside the `NAMES` list (a match arm
    /// or a table): a name registered with no implementation would load and then fail every
    /// request with MissingMethodException. Context objects' members are implemented by the
    /// engine's context (`exec/env.rs`) and the binder's `ctx_member`.
    #[test]
    fn every_registered_name_appears_in_its_family_code() {
        let context_impl = [
            include_str!("../../exec/env.rs"),
            include_str!("../compile/expressions.rs"),
        ];
        let mut missing = Vec::new();
        for (i, (names, source)) in FAMILIES.iter().enumerate() {
            let start = source.find("const NAMES: Names").unwrap_or_default();
            let end = start + source[start..].find("};").unwrap_or_default();
            assert!(end > start, "family {i} has no NAMES list");
            let code = format!("{}{}", &source[..start], &source[end..]);
            let code = code
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_string()
                + &if i == 1 {
                    context_impl.concat()
                } else {
                    String::new()
                };
            for n in names
                .members
                .iter()
                .chain(names.methods)
                .chain(names.static_members)
                .chain(names.static_methods)
            {
                if !code.contains(&format!("\"{n}\"")) {
                    missing.push(*n);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "registered but not implemented: {missing:?}"
        );
    }

    #[test]
    fn lookups_find_registered_names_only() {
        assert_eq!(member_name("Length"), Some("Length"));
        assert_eq!(method_name("Substring"), Some("Substring"));
        assert_eq!(method_name("Where"), Some("Where"));
        assert_eq!(method_name("Encrypt"), Some("Encrypt"));
        assert_eq!(method_name("TransformFinalBlock"), None);
        let string = RType {
            ty: Ty::String,
            arrays: 0,
            args: Vec::new(),
            nullable: false,
            name: "string".into(),
        };
        assert_eq!(static_member(&string, "Empty"), Some("Empty"));
        assert_eq!(
            static_method(&string, "IsNullOrEmpty"),
            Some("IsNullOrEmpty")
        );
        assert_eq!(static_method(&string, "Resize"), None);
    }
}
