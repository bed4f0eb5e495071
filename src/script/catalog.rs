//! The script API as data: every primitive and property with its parameters, types, return
//! type, documentation and example. The registrar records it as it registers each primitive, and
//! it is the one source of `etcdscript api` (text, markdown, JSON, editor definitions), of the
//! static checks in `check` (arity, option keys) and of README's API table.

use std::fmt::Write;

/// The type of a parameter or a return value, as a script sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Array,
    /// An options map, with the keys it accepts.
    Options(&'static [&'static str]),
    Closure,
    Ca,
    Cert,
    Cluster,
    Member,
    /// A background load (from `load`).
    Load,
    /// A watch (from `watch`).
    Watch,
    /// A lease (from `lease_grant`).
    Lease,
    /// An error caught with `try`/`catch`.
    Error,
    /// A `Member` or a `Cluster`.
    Target,
    /// A `Cert`, or a map of the identity keys.
    Identity,
    /// A class name, an array of them, or `#{ class, detail }`.
    Expected,
    /// Whatever the script passes, or whatever comes back (`()` included).
    Any,
    /// Nothing comes back.
    Unit,
}

/// The keys of an identity map.
pub const IDENTITY_KEYS: &[&str] = &[
    "cert",
    "ca",
    "server_name",
    "plaintext",
    "dial",
    "timeout_ms",
    "user",
    "password",
    "insecure_skip_tls_verify",
    "tls_min",
    "tls_max",
    "cipher_suites",
    "listener",
];
/// The keys of an `expect_error` map.
pub const EXPECTED_KEYS: &[&str] = &["class", "detail"];

impl Ty {
    /// How the type reads in the reference.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::Array => "array",
            Ty::Options(_) => "map",
            Ty::Closure => "Fn",
            Ty::Ca => "Ca",
            Ty::Cert => "Cert",
            Ty::Cluster => "Cluster",
            Ty::Member => "Member",
            Ty::Load => "Load",
            Ty::Watch => "Watch",
            Ty::Lease => "Lease",
            Ty::Error => "Error",
            Ty::Target => "Member | Cluster",
            Ty::Identity => "Cert | map",
            Ty::Expected => "string | array | map",
            Ty::Any => "?",
            Ty::Unit => "()",
        }
    }

    /// How the type reads in a Rhai definition file, where only one type name fits.
    fn definition(self) -> &'static str {
        match self {
            Ty::Str => "String",
            Ty::Int => "int",
            Ty::Bool => "bool",
            Ty::Array => "Array",
            Ty::Options(_) => "Map",
            Ty::Closure => "FnPtr",
            Ty::Ca => "Ca",
            Ty::Cert => "Cert",
            Ty::Cluster => "Cluster",
            Ty::Member => "Member",
            Ty::Load => "Load",
            Ty::Watch => "Watch",
            Ty::Lease => "Lease",
            Ty::Error => "Error",
            Ty::Unit => "()",
            Ty::Target | Ty::Identity | Ty::Expected | Ty::Any => "?",
        }
    }

    /// The keys a literal map may have in this place, if it is a map of known keys.
    pub fn keys(self) -> Option<&'static [&'static str]> {
        match self {
            Ty::Options(keys) => Some(keys),
            Ty::Identity => Some(IDENTITY_KEYS),
            Ty::Expected => Some(EXPECTED_KEYS),
            _ => None,
        }
    }
}

/// One parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    /// A trailing parameter the script may leave out.
    pub optional: bool,
}

/// A required parameter.
pub const fn req(name: &'static str, ty: Ty) -> Param {
    Param {
        name,
        ty,
        optional: false,
    }
}

/// A trailing parameter the script may leave out.
pub const fn opt(name: &'static str, ty: Ty) -> Param {
    Param {
        name,
        ty,
        optional: true,
    }
}

/// One primitive.
#[derive(Clone, Copy, Debug)]
pub struct Primitive {
    pub name: &'static str,
    pub params: &'static [Param],
    pub returns: Ty,
    /// What it does, in Markdown; the first sentence is its summary.
    pub doc: &'static str,
    /// A short Rhai example.
    pub example: &'static str,
}

impl Primitive {
    /// How many arguments it takes: from the required ones to all.
    pub fn arities(&self) -> std::ops::RangeInclusive<usize> {
        let required = self.params.iter().filter(|p| !p.optional).count();
        required..=self.params.len()
    }

    /// `name(a: T, b: U [, c: V]) -> R`.
    pub fn signature(&self) -> String {
        let mut s = format!("{}(", self.name);
        for (i, p) in self.params.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if p.optional {
                let _ = write!(s, " [{sep}{}: {}]", p.name, p.ty.name());
            } else {
                let _ = write!(s, "{sep}{}: {}", p.name, p.ty.name());
            }
        }
        s.push(')');
        if self.returns != Ty::Unit {
            let _ = write!(s, " -> {}", self.returns.name());
        }
        s.replace("( [", "([")
    }
}

/// One property of a value: `c.names`.
#[derive(Clone, Copy, Debug)]
pub struct Property {
    pub of: Ty,
    pub name: &'static str,
    pub returns: Ty,
    pub doc: &'static str,
}

/// Property `name` of values of type `of`.
pub const fn prop(of: Ty, name: &'static str, returns: Ty, doc: &'static str) -> Property {
    Property {
        of,
        name,
        returns,
        doc,
    }
}

/// Every primitive and property an engine has.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub primitives: Vec<Primitive>,
    pub properties: Vec<Property>,
}

impl Catalog {
    /// The primitive with this name.
    pub fn primitive(&self, name: &str) -> Option<&Primitive> {
        self.primitives.iter().find(|p| p.name == name)
    }

    fn sorted(&self) -> (Vec<&Primitive>, Vec<&Property>) {
        let mut prims: Vec<&Primitive> = self.primitives.iter().collect();
        prims.sort_by_key(|p| p.name);
        let mut props: Vec<&Property> = self.properties.iter().collect();
        props.sort_by_key(|p| (p.of.name(), p.name));
        (prims, props)
    }

    /// The reference as text: every primitive with its signature, documentation and example,
    /// the properties, and the error classes.
    pub fn text(&self, classes: &[(&str, &str)]) -> String {
        let (prims, props) = self.sorted();
        let mut out = String::new();
        for p in prims {
            let _ = writeln!(
                out,
                "## {}\n\n{}\n\n```rhai\n{}\n```\n",
                p.signature(),
                p.doc,
                p.example
            );
        }
        out.push_str("## Properties\n\n");
        for p in props {
            let _ = writeln!(
                out,
                "- `{}.{} -> {}`: {}",
                p.of.name(),
                p.name,
                p.returns.name(),
                p.doc
            );
        }
        out.push_str("\n## Error classes\n\n");
        for (name, meaning) in classes {
            let _ = writeln!(out, "- `{name}`: {meaning}");
        }
        out
    }

    /// README's API table: a row per primitive with its signature and summary.
    pub fn markdown(&self) -> String {
        let (prims, props) = self.sorted();
        let mut out = String::from("| primitive | what it does |\n| --- | --- |\n");
        for p in prims {
            let _ = writeln!(
                out,
                "| `{}` | {} |",
                p.signature().replace('|', "\\|"),
                summary(p.doc).replace('|', "\\|")
            );
        }
        out.push_str("\nProperties: ");
        let list: Vec<String> = props
            .iter()
            .map(|p| format!("`{}.{}`", p.of.name(), p.name))
            .collect();
        out.push_str(&list.join(", "));
        out.push_str(".\n");
        out
    }

    /// The catalog as JSON, for tools.
    pub fn json(&self, classes: &[(&str, &str)]) -> String {
        let (prims, props) = self.sorted();
        let param = |p: &Param| {
            serde_json::json!({
                "name": p.name,
                "type": p.ty.name(),
                "optional": p.optional,
                "keys": p.ty.keys(),
            })
        };
        let value = serde_json::json!({
            "primitives": prims.iter().map(|p| serde_json::json!({
                "name": p.name,
                "signature": p.signature(),
                "params": p.params.iter().map(param).collect::<Vec<_>>(),
                "returns": p.returns.name(),
                "doc": p.doc,
                "example": p.example,
            })).collect::<Vec<_>>(),
            "properties": props.iter().map(|p| serde_json::json!({
                "of": p.of.name(),
                "name": p.name,
                "returns": p.returns.name(),
                "doc": p.doc,
            })).collect::<Vec<_>>(),
            "error_classes": classes.iter().map(|(n, m)| serde_json::json!({ "name": n, "meaning": m })).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    }

    /// A Rhai definition file (`.d.rhai`) for the Rhai language server: one declaration per
    /// arity of every primitive, and a getter per property.
    pub fn definitions(&self) -> String {
        let (prims, props) = self.sorted();
        let mut out = String::from("module static;\n\n");
        for p in prims {
            for n in p.arities() {
                for line in p.doc.lines() {
                    let _ = writeln!(out, "/// {line}");
                }
                let params: Vec<String> = p.params[..n]
                    .iter()
                    .map(|q| format!("{}: {}", q.name, q.ty.definition()))
                    .collect();
                let _ = writeln!(
                    out,
                    "fn {}({}) -> {};\n",
                    p.name,
                    params.join(", "),
                    p.returns.definition()
                );
            }
        }
        for p in props {
            let _ = writeln!(out, "/// {}", p.doc);
            let _ = writeln!(
                out,
                "fn get {}(this: {}) -> {};\n",
                p.name,
                p.of.definition(),
                p.returns.definition()
            );
        }
        out
    }
}

/// The first sentence of a doc.
fn summary(doc: &str) -> String {
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.find(". ") {
        Some(i) => flat[..=i].to_owned(),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: Primitive = Primitive {
        name: "kv_get",
        params: &[
            req("target", Ty::Target),
            req("key", Ty::Str),
            opt("identity", Ty::Identity),
        ],
        returns: Ty::Any,
        doc: "Reads a key. The value, or `()`.",
        example: "kv_get(c, \"k\")",
    };

    #[test]
    fn signatures_show_optional_parameters_and_script_types() {
        assert_eq!(
            SAMPLE.signature(),
            "kv_get(target: Member | Cluster, key: string [, identity: Cert | map]) -> ?"
        );
        assert_eq!(SAMPLE.arities(), 2..=3);
    }

    #[test]
    fn definitions_declare_every_arity() {
        let c = Catalog {
            primitives: vec![SAMPLE],
            properties: vec![],
        };
        let d = c.definitions();
        assert!(d.contains("fn kv_get(target: ?, key: String) -> ?;"), "{d}");
        assert!(
            d.contains("fn kv_get(target: ?, key: String, identity: ?) -> ?;"),
            "{d}"
        );
        assert!(!c.json(&[]).contains("::"));
    }
}
