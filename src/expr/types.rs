//! The .NET types policy expressions may name (apim-reference.md §3.2): casts, `is` / `as`,
//! `new`, generic arguments and static members. Anything else is a load-time error.

use crate::diag::Invalid;

/// A type as the interpreter understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Object,
    Bool,
    Int,
    Long,
    Double,
    Char,
    Byte,
    String,
    Guid,
    DateTime,
    DateTimeOffset,
    TimeSpan,
    Bytes,
    Array,
    List,
    Dictionary,
    HashSet,
    KeyValuePair,
    JToken,
    JObject,
    JArray,
    JValue,
    JProperty,
    Uri,
    Regex,
    Match,
    Group,
    Jwt,
    BasicAuth,
    IResponse,
    IRequest,
    IMessageBody,
    IUrl,
    XElement,
    XDocument,
    StringBuilder,
    IpAddress,
    X509,
    /// `XNamespace` / `XName` (LINQ to XML names).
    XNamespace,
    XName,
    Exception,
    Enum,
    /// Types only used for static members (`Math`, `Convert`, `Encoding`, ...).
    Static,
}

/// Every type name an expression may use, with what it means.
const TYPES: &[(&str, Ty)] = &[
    ("object", Ty::Object),
    ("Object", Ty::Object),
    ("dynamic", Ty::Object),
    ("bool", Ty::Bool),
    ("Boolean", Ty::Bool),
    ("int", Ty::Int),
    ("Int32", Ty::Int),
    ("short", Ty::Int),
    ("Int16", Ty::Int),
    ("ushort", Ty::Int),
    ("UInt16", Ty::Int),
    ("sbyte", Ty::Int),
    ("SByte", Ty::Int),
    ("long", Ty::Long),
    ("Int64", Ty::Long),
    ("uint", Ty::Long),
    ("UInt32", Ty::Long),
    ("ulong", Ty::Long),
    ("UInt64", Ty::Long),
    ("double", Ty::Double),
    ("Double", Ty::Double),
    ("float", Ty::Double),
    ("Single", Ty::Double),
    ("decimal", Ty::Double),
    ("Decimal", Ty::Double),
    ("char", Ty::Char),
    ("Char", Ty::Char),
    ("byte", Ty::Byte),
    ("Byte", Ty::Byte),
    ("string", Ty::String),
    ("String", Ty::String),
    ("Guid", Ty::Guid),
    ("DateTime", Ty::DateTime),
    ("DateTimeOffset", Ty::DateTimeOffset),
    ("TimeSpan", Ty::TimeSpan),
    ("Array", Ty::Array),
    ("List", Ty::List),
    ("IList", Ty::List),
    ("ICollection", Ty::List),
    ("IEnumerable", Ty::List),
    ("IReadOnlyCollection", Ty::List),
    ("IReadOnlyList", Ty::List),
    ("Queue", Ty::List),
    ("Stack", Ty::List),
    ("Dictionary", Ty::Dictionary),
    ("IDictionary", Ty::Dictionary),
    ("IReadOnlyDictionary", Ty::Dictionary),
    ("HashSet", Ty::HashSet),
    ("ISet", Ty::HashSet),
    ("KeyValuePair", Ty::KeyValuePair),
    ("JToken", Ty::JToken),
    ("JContainer", Ty::JToken),
    ("JObject", Ty::JObject),
    ("JArray", Ty::JArray),
    ("JValue", Ty::JValue),
    ("JProperty", Ty::JProperty),
    ("JRaw", Ty::JValue),
    ("JsonConvert", Ty::Static),
    ("Formatting", Ty::Enum),
    ("JTokenType", Ty::Enum),
    ("Uri", Ty::Uri),
    ("UriPartial", Ty::Enum),
    ("Regex", Ty::Regex),
    ("RegexOptions", Ty::Enum),
    ("Match", Ty::Match),
    ("Group", Ty::Group),
    ("Capture", Ty::Group),
    ("Jwt", Ty::Jwt),
    ("BasicAuthCredentials", Ty::BasicAuth),
    ("IResponse", Ty::IResponse),
    ("IRequest", Ty::IRequest),
    ("IMessageBody", Ty::IMessageBody),
    ("IUrl", Ty::IUrl),
    ("XElement", Ty::XElement),
    ("XDocument", Ty::XDocument),
    ("XNode", Ty::XElement),
    ("StringBuilder", Ty::StringBuilder),
    ("IPAddress", Ty::IpAddress),
    ("X509Certificate2", Ty::X509),
    ("XNamespace", Ty::XNamespace),
    ("XName", Ty::XName),
    ("Exception", Ty::Exception),
    ("Math", Ty::Static),
    ("Convert", Ty::Static),
    ("Encoding", Ty::Static),
    ("BitConverter", Ty::Static),
    ("WebUtility", Ty::Static),
    ("HttpUtility", Ty::Static),
    ("Enumerable", Ty::Static),
    ("Environment", Ty::Static),
    ("Random", Ty::Static),
    ("StringComparison", Ty::Enum),
    ("StringComparer", Ty::Static),
    ("StringSplitOptions", Ty::Enum),
    ("DateTimeKind", Ty::Enum),
    ("DayOfWeek", Ty::Enum),
    ("MidpointRounding", Ty::Enum),
    ("CultureInfo", Ty::Static),
    ("DateTimeStyles", Ty::Enum),
    ("NumberStyles", Ty::Enum),
    ("SHA256", Ty::Static),
    ("SHA1", Ty::Static),
    ("SHA384", Ty::Static),
    ("SHA512", Ty::Static),
    ("MD5", Ty::Static),
    ("HMACSHA256", Ty::Static),
    ("HMACSHA1", Ty::Static),
    ("HMACSHA384", Ty::Static),
    ("HMACSHA512", Ty::Static),
    ("HMACMD5", Ty::Static),
    ("SHA256Managed", Ty::Static),
    ("SHA1Managed", Ty::Static),
    ("SHA512Managed", Ty::Static),
    ("HashAlgorithm", Ty::Static),
    ("KeyedHashAlgorithm", Ty::Static),
    ("RandomNumberGenerator", Ty::Static),
    ("AddressFamily", Ty::Enum),
    ("Tuple", Ty::Static),
];

pub fn lookup(name: &str) -> Option<Ty> {
    // Accept namespace-qualified names: `System.Text.Encoding`, `Newtonsoft.Json.Linq.JObject`.
    let short = name.rsplit('.').next().unwrap_or(name);
    TYPES.iter().find(|(n, _)| *n == short).map(|(_, t)| *t)
}

pub fn is_known_type(name: &str) -> bool {
    lookup(name).is_some()
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Object => "object",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Long => "long",
            Ty::Double => "double",
            Ty::Char => "char",
            Ty::Byte => "byte",
            Ty::String => "string",
            Ty::Guid => "Guid",
            Ty::DateTime => "DateTime",
            Ty::DateTimeOffset => "DateTimeOffset",
            Ty::TimeSpan => "TimeSpan",
            Ty::Bytes => "byte[]",
            Ty::Array => "Array",
            Ty::List => "List",
            Ty::Dictionary => "Dictionary",
            Ty::HashSet => "HashSet",
            Ty::KeyValuePair => "KeyValuePair",
            Ty::JToken => "JToken",
            Ty::JObject => "JObject",
            Ty::JArray => "JArray",
            Ty::JValue => "JValue",
            Ty::JProperty => "JProperty",
            Ty::Uri => "Uri",
            Ty::Regex => "Regex",
            Ty::Match => "Match",
            Ty::Group => "Group",
            Ty::Jwt => "Jwt",
            Ty::BasicAuth => "BasicAuthCredentials",
            Ty::IResponse => "IResponse",
            Ty::IRequest => "IRequest",
            Ty::IMessageBody => "IMessageBody",
            Ty::IUrl => "IUrl",
            Ty::XElement => "XElement",
            Ty::XDocument => "XDocument",
            Ty::StringBuilder => "StringBuilder",
            Ty::IpAddress => "IPAddress",
            Ty::X509 => "X509Certificate2",
            Ty::XNamespace => "XNamespace",
            Ty::XName => "XName",
            Ty::Exception => "Exception",
            Ty::Enum => "enum",
            Ty::Static => "static",
        }
    }
}

/// A resolved type reference: the type, its array rank and generic arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RType {
    pub ty: Ty,
    pub arrays: usize,
    pub args: Vec<RType>,
    pub nullable: bool,
    /// The short name as written (for enums and static types).
    pub name: String,
}

impl RType {
    pub fn display(&self) -> String {
        let mut s = self.name.clone();
        if !self.args.is_empty() {
            s.push('<');
            s.push_str(
                &self
                    .args
                    .iter()
                    .map(RType::display)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            s.push('>');
        }
        for _ in 0..self.arrays {
            s.push_str("[]");
        }
        s
    }
}

/// Resolve a parsed type reference against the allowed list.
pub fn resolve(t: &super::ast::TypeRef) -> Result<RType, Invalid> {
    let ty = lookup(&t.name)
        .ok_or_else(|| crate::invalid!("type `{}` is not allowed in policy expressions", t.name))?;
    let mut args = Vec::new();
    for a in &t.args {
        args.push(resolve(a)?);
    }
    let short = t.name.rsplit('.').next().unwrap_or(&t.name).to_string();
    let ty = if ty == Ty::Byte && t.arrays > 0 {
        Ty::Bytes
    } else {
        ty
    };
    let arrays = if ty == Ty::Bytes {
        t.arrays - 1
    } else {
        t.arrays
    };
    Ok(RType {
        ty,
        arrays,
        args,
        nullable: t.nullable,
        name: short,
    })
}
