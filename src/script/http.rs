//! HTTP primitives: `http_get` and `http_post` on a member's client port, and `base64`, which
//! the v3 JSON gateway wants keys and values in.

use base64::Engine as _;
use rhai::{Dynamic, Map};

use super::catalog::{opt, req, Primitive, Ty};
use super::registrar::{Call, Registrar};
use super::script_err;
use crate::etcd::http::Answer;

/// The longest path a script may ask for.
const MAX_PATH: usize = 1024;

const HTTP_GET: Primitive = Primitive {
    name: "http_get",
    params: &[
        req("target", Ty::Target),
        req("path", Ty::Str),
        opt("identity", Ty::Identity),
    ],
    returns: Ty::Any,
    doc: "Sends `GET path` to a member's client port as `identity` (see `kv_set`; with\n\
          `listener: \"http\"`, to its plain-text port) and returns `#{ status, body }`. Any\n\
          answer is returned, whatever its status: the transcript shows the status, not the\n\
          body (which differs between etcd versions). A refusal at the handshake is a\n\
          rejection, as for `kv_get`; so is Go's answer to plain HTTP on a TLS port\n\
          (\"not tls\").",
    example: "let r = http_get(m1, \"/health\", client);\nassert(r.body.contains(\"\\\"health\\\":\\\"true\\\"\"), \"healthy\");\n\
              expect_error(|| http_get(m1, \"/metrics\"), \"no client certificate\");",
};

const HTTP_POST: Primitive = Primitive {
    name: "http_post",
    params: &[
        req("target", Ty::Target),
        req("path", Ty::Str),
        req("body", Ty::Any),
        opt("identity", Ty::Identity),
    ],
    returns: Ty::Any,
    doc: "Sends `POST path` with a JSON body (a string as it is, or a map written as JSON) and\n\
          returns `#{ status, body }`, as `http_get`. The v3 JSON gateway takes keys and values\n\
          in base64 (see `base64`) at `/v3/kv/put` and `/v3/kv/range`, on 3.4 and 3.5 alike.\n\
          On a remote cluster only the calls that read are sent: `/v3/kv/range`,\n\
          `/v3/auth/status`, `/v3/maintenance/status`, `/v3/cluster/member/list`.",
    example: "let r = http_post(m1, \"/v3/kv/put\", #{ key: base64(\"k\"), value: base64(\"v\") }, client);\n\
              assert_eq(r.status, 200);",
};

const BASE64: Primitive = Primitive {
    name: "base64",
    params: &[req("text", Ty::Str)],
    returns: Ty::Str,
    doc: "The text in base64 (standard alphabet, padded), as etcd's JSON gateway wants keys and\n\
          values.",
    example: "assert_eq(base64(\"foo\"), \"Zm9v\");",
};

fn path(c: &Call) -> Result<String, Box<rhai::EvalAltResult>> {
    let p = c.string(1)?;
    let ok = p.starts_with('/') && p.len() <= MAX_PATH && p.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(script_err(format!(
            "{}: path `{p}` must start with `/` and hold no spaces or control characters (at most \
             {MAX_PATH} bytes)",
            c.what()
        )));
    }
    Ok(p)
}

fn answer(a: Answer) -> Dynamic {
    let mut m = Map::new();
    m.insert("status".into(), (a.status as i64).into());
    m.insert("body".into(), a.body.into());
    m.into()
}

/// A JSON body: a string as given, or a map written as JSON.
fn json_body(c: &Call, i: usize) -> Result<String, Box<rhai::EvalAltResult>> {
    let d = c.get(i).cloned().unwrap_or(Dynamic::UNIT);
    if d.is_string() {
        return c.string(i);
    }
    if d.is_map() {
        return serde_json::to_string(&d).map_err(|e| {
            script_err(format!(
                "{}: the body cannot be written as JSON: {e}",
                c.what()
            ))
        });
    }
    Err(script_err(format!(
        "{}: `body` must be a string or a map, got {}",
        c.what(),
        super::convert::type_label(&d)
    )))
}

/// Registers the HTTP primitives.
pub fn register(r: &mut Registrar) {
    r.primitive(HTTP_GET, |c| {
        let (t, p, id) = (c.target(0)?, path(c)?, c.identity(2)?);
        c.session(|ss| ss.http(t, "GET", &p, None, &id)).map(answer)
    });
    r.primitive(HTTP_POST, |c| {
        let (t, p, body, id) = (c.target(0)?, path(c)?, json_body(c, 2)?, c.identity(3)?);
        c.session(|ss| ss.http(t, "POST", &p, Some(&body), &id))
            .map(answer)
    });
    r.primitive(BASE64, |c| {
        Ok(base64::engine::general_purpose::STANDARD.encode(c.string(0)?))
    });
}
