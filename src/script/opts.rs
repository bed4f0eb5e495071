//! Options maps (`#{ cn: "x", days: 30 }`): every key checked against the keys a primitive
//! knows, so that a typo is an error that names the valid keys, never silently ignored.

use std::rc::Rc;

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::convert::type_label;

use super::script_err;
use crate::pki::{Ca, Cert};

/// A checked options map for one primitive.
pub struct Opts<'a> {
    map: &'a Map,
    what: &'static str,
}

type R<T> = Result<T, Box<EvalAltResult>>;

impl<'a> Opts<'a> {
    /// Fails on any key not in `valid`, naming the valid ones.
    pub fn new(map: &'a Map, what: &'static str, valid: &[&str]) -> R<Opts<'a>> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(|k| k.as_str())
            .filter(|k| !valid.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            let near = unknown
                .iter()
                .filter_map(|u| {
                    closest(u, valid).map(|v| format!(" (did you mean `{v}` for `{u}`?)"))
                })
                .collect::<String>();
            return Err(script_err(format!(
                "{what}: unknown option{} {}{near}; valid options are: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                valid.join(", ")
            )));
        }
        Ok(Opts { map, what })
    }

    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key)
    }

    fn wrong(&self, key: &str, want: &str, got: &Dynamic) -> Box<EvalAltResult> {
        script_err(format!(
            "{}: option `{key}` must be {want}, got {}",
            self.what,
            type_label(got)
        ))
    }

    /// A string option.
    pub fn string(&self, key: &str) -> R<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) if d.is_string() => Ok(Some(d.clone().into_string().expect("a string"))),
            Some(d) => Err(self.wrong(key, "a string", d)),
        }
    }

    /// An integer option.
    pub fn int(&self, key: &str) -> R<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) if d.is_int() => Ok(Some(d.as_int().expect("an integer"))),
            Some(d) => Err(self.wrong(key, "an integer", d)),
        }
    }

    /// An integer option that must lie in `range`; the error gives the range.
    pub fn int_in(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> R<Option<i64>> {
        match self.int(key)? {
            Some(v) if !range.contains(&v) => Err(script_err(format!(
                "{}: option `{key}` must be from {} to {}, got {v}",
                self.what,
                range.start(),
                range.end()
            ))),
            v => Ok(v),
        }
    }

    /// A boolean option.
    pub fn bool(&self, key: &str) -> R<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) if d.is_bool() => Ok(Some(d.as_bool().expect("a bool"))),
            Some(d) => Err(self.wrong(key, "true or false", d)),
        }
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> R<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) if d.is_array() => {
                let arr = d.clone().cast::<Array>();
                arr.into_iter()
                    .map(|v| {
                        if v.is_string() {
                            Ok(v.into_string().expect("a string"))
                        } else {
                            Err(self.wrong(key, "an array of strings", &v))
                        }
                    })
                    .collect::<R<Vec<_>>>()
                    .map(Some)
            }
            Some(d) => Err(self.wrong(key, "an array of strings", d)),
        }
    }

    /// An array of port numbers.
    pub fn ports(&self, key: &str) -> R<Option<Vec<u16>>> {
        self.array_of(key, "an array of port numbers (1 to 65535)", |v| {
            match v.as_int() {
                Ok(p) if (1..=65535).contains(&p) => Some(p as u16),
                _ => None,
            }
        })
    }

    /// An array whose items `item` converts, or an error saying it must be `want`.
    fn array_of<T>(
        &self,
        key: &str,
        want: &str,
        item: impl Fn(&Dynamic) -> Option<T>,
    ) -> R<Option<Vec<T>>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) if d.is_array() => d
                .clone()
                .cast::<Array>()
                .iter()
                .map(|v| item(v).ok_or_else(|| self.wrong(key, want, v)))
                .collect::<R<Vec<_>>>()
                .map(Some),
            Some(d) => Err(self.wrong(key, want, d)),
        }
    }

    /// A CA option.
    pub fn ca(&self, key: &str) -> R<Option<Rc<Ca>>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) => d
                .clone()
                .try_cast::<Rc<Ca>>()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a Ca (from ca())", d)),
        }
    }

    /// A certificate option.
    pub fn cert(&self, key: &str) -> R<Option<Rc<Cert>>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) => d
                .clone()
                .try_cast::<Rc<Cert>>()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a Cert (from issue())", d)),
        }
    }

    /// A lease (from `lease_grant`).
    pub fn lease(&self, key: &str) -> R<Option<crate::session::LeaseId>> {
        match self.get(key) {
            None => Ok(None),
            Some(d) => d
                .clone()
                .try_cast::<crate::session::LeaseId>()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a Lease (from lease_grant())", d)),
        }
    }

    /// An array of certificates.
    pub fn certs(&self, key: &str) -> R<Option<Vec<Rc<Cert>>>> {
        self.array_of(key, "an array of Certs (from issue())", |v| {
            v.clone().try_cast::<Rc<Cert>>()
        })
    }

    /// The raw value of an option, for conversions of their own.
    pub fn raw(&self, key: &str) -> Option<&Dynamic> {
        self.get(key)
    }

    /// A required option.
    pub fn required<T>(&self, key: &str, v: Option<T>) -> R<T> {
        v.ok_or_else(|| script_err(format!("{}: option `{key}` is required", self.what)))
    }
}

/// The valid key nearest to a typo, if it is near enough to be the likely meaning.
pub fn closest<'v>(typo: &str, valid: &[&'v str]) -> Option<&'v str> {
    valid
        .iter()
        .map(|v| (edit_distance(typo, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 4))
        .min()
        .map(|(_, v)| v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_names_the_valid_keys_and_the_likely_one() {
        let mut map = Map::new();
        map.insert("sanz".into(), Dynamic::from(Array::new()));
        let err = Opts::new(&map, "issue()", &["cn", "sans", "usage"])
            .err()
            .expect("an error");
        let text = super::super::find_fault(&err).expect("a fault").to_string();
        assert!(text.contains("unknown option `sanz`"), "{text}");
        assert!(text.contains("did you mean `sans`"), "{text}");
        assert!(
            text.contains("valid options are: cn, sans, usage"),
            "{text}"
        );
    }
}
