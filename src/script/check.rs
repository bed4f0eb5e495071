//! A static check of a compiled script: every function it calls exists with that many
//! arguments, and every error class an `expect_error` names literally exists, so that a typo is
//! found before any etcd member starts.

use std::collections::{HashMap, HashSet};

use rhai::{ASTNode, Engine, Expr, Position, Stmt, AST};

use super::catalog::Catalog;

/// Functions the Rhai language provides itself, outside any package: name and arities.
const LANGUAGE: &[(&str, &[usize])] = &[
    ("print", &[1]),
    ("debug", &[1]),
    ("type_of", &[1]),
    ("Fn", &[1]),
    ("call", &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("curry", &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("is_def_fn", &[2, 3]),
    ("is_def_var", &[1]),
    ("is_shared", &[1]),
];

/// Name and argument count of every function a script may call: the primitives from the
/// catalog, the rest from the engine's own signatures, and the script's own functions.
fn known(engine: &Engine, catalog: &Catalog, ast: &AST) -> HashMap<String, HashSet<usize>> {
    let mut map: HashMap<String, HashSet<usize>> = HashMap::new();
    for p in &catalog.primitives {
        map.entry(p.name.to_owned())
            .or_default()
            .extend(p.arities());
    }
    for sig in engine.gen_fn_signatures(true) {
        let Some((name, rest)) = sig.split_once('(') else {
            continue;
        };
        if catalog.primitive(name).is_some() {
            continue;
        }
        let params = rest.split(')').next().unwrap_or("");
        let arity = if params.trim().is_empty() {
            0
        } else {
            params.split(',').count()
        };
        map.entry(name.to_owned()).or_default().insert(arity);
    }
    for f in ast.iter_functions() {
        map.entry(f.name.to_owned())
            .or_default()
            .insert(f.params.len());
    }
    for (name, arities) in LANGUAGE {
        map.entry((*name).to_owned())
            .or_default()
            .extend(arities.iter().copied());
    }
    map
}

/// A call to a function that does not exist with that many arguments.
pub struct UnknownCall {
    pub name: String,
    pub arity: usize,
    pub pos: Position,
    /// A known function with a near name, when the name itself is unknown.
    pub near: Option<String>,
}

/// Every call to a function that does not exist with that many arguments.
pub fn unknown_calls(engine: &Engine, catalog: &Catalog, ast: &AST) -> Vec<UnknownCall> {
    let known = known(engine, catalog, ast);
    // A variable may hold a closure and be called like a function: never flag those.
    let mut variables = HashSet::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Var(x, ..))) = path.last() {
            variables.insert(x.0.name.to_string());
        }
        true
    });
    for f in ast.iter_functions() {
        variables.extend(f.params.iter().map(|p| p.to_string()));
    }
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos, receiver) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos)))
            | Some(ASTNode::Stmt(Stmt::FnCall(x, pos))) => (x, *pos, 0),
            Some(ASTNode::Expr(Expr::MethodCall(x, pos))) => (x, *pos, 1),
            _ => return true,
        };
        let name = call.name.as_str();
        let plain = call.op_token.is_none()
            && call.namespace.is_empty()
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
            && !name.contains('$');
        if !plain || variables.contains(name) {
            return true;
        }
        let arity = call.args.len() + receiver;
        if known.get(name).is_some_and(|a| a.contains(&arity)) {
            return true;
        }
        let near = if known.contains_key(name) {
            None
        } else {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            super::opts::closest(name, &names).map(str::to_owned)
        };
        found.push(UnknownCall {
            name: name.to_owned(),
            arity,
            pos,
            near,
        });
        true
    });
    found
}

/// Every `expect_error` whose expected class, given literally, is no class: the message and
/// where.
pub fn bad_expectations(ast: &AST) -> Vec<(String, Position)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos)))
            | Some(ASTNode::Stmt(Stmt::FnCall(x, pos))) => (x, *pos),
            _ => return true,
        };
        if call.name.as_str() != "expect_error" || call.args.len() != 2 {
            return true;
        }
        let Some(expected) = call.args[1].get_literal_value(None) else {
            return true;
        };
        if let Err(msg) = super::expect::Expectation::parse(&expected) {
            let at = call.args[1].start_position();
            found.push((msg, if at.is_none() { pos } else { at }));
        }
        true
    });
    found
}

/// Every key of a literal options map that the primitive does not know: the message, with the
/// valid keys and the likely one, and where. A map built at run time is checked when the call
/// runs.
pub fn bad_options(catalog: &Catalog, ast: &AST) -> Vec<(String, Position)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, receiver) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, _))) | Some(ASTNode::Stmt(Stmt::FnCall(x, _))) => {
                (x, 0)
            }
            Some(ASTNode::Expr(Expr::MethodCall(x, _))) => (x, 1),
            _ => return true,
        };
        let Some(p) = catalog.primitive(call.name.as_str()) else {
            return true;
        };
        for (i, arg) in call.args.iter().enumerate() {
            let Some(keys) = p.params.get(i + receiver).and_then(|q| q.ty.keys()) else {
                continue;
            };
            // A map of constants is folded into one value; a map with expressions keeps its keys
            // and their positions.
            let given: Vec<(String, Position)> = match arg {
                Expr::Map(m, _) => {
                    m.0.iter()
                        .map(|(k, _)| (k.name.to_string(), k.pos))
                        .collect()
                }
                _ => match arg
                    .get_literal_value(None)
                    .and_then(|v| v.try_cast::<rhai::Map>())
                {
                    Some(m) => m
                        .keys()
                        .map(|k| (k.to_string(), arg.start_position()))
                        .collect(),
                    None => continue,
                },
            };
            for (key, pos) in given {
                if keys.contains(&key.as_str()) {
                    continue;
                }
                let near = super::opts::closest(&key, keys)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                let param = p.params[i + receiver].name;
                found.push((
                    format!(
                        "{}(): unknown option `{key}` in `{param}`{near}; valid options are: {}",
                        p.name,
                        keys.join(", ")
                    ),
                    pos,
                ));
            }
        }
        true
    });
    found
}
