//! Generated input, so that the next bug of the kinds tests/badinput.rs lists is found by the
//! suite and not by a user: numbers, names, option maps and etcd flags, run through the script
//! engine bound to a real session (PKI on disk, no etcd started) and through the pure functions
//! that guard them. Nothing may panic; every refusal is a script error that says what is allowed.

use std::cell::RefCell;

use proptest::prelude::*;

use etcdscript::error::Error;
use etcdscript::fault::Fault;
use etcdscript::script::{engine, find_fault, Shared};
use etcdscript::session::{RunOptions, Session};
use etcdscript::transcript::Transcript;

/// An engine bound to a session whose work dir lives as long as the returned guard.
fn engine() -> (rhai::Engine, Shared, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let shared = Shared::default();
    let (engine, _) = engine::build(&shared, None);
    let mut session = Session::new(&RunOptions {
        workdir: Some(dir.path().join("work")),
        ..Default::default()
    })
    .expect("session");
    session.transcript = Transcript::quiet();
    shared.install(session);
    (engine, shared, dir)
}

/// Runs `text`; `Ok` or the message of the script error it ended with. Any other ending (a
/// panic, a fault of another kind) fails the property.
fn outcome(engine: &rhai::Engine, shared: &Shared, text: &str) -> Result<(), String> {
    let result = engine.run(text);
    // Each case is a run of its own: a fatal failure of one must not stop the next.
    shared.take_failure();
    match result {
        Ok(()) => Ok(()),
        Err(e) => match find_fault(&e).as_deref() {
            Some(Fault::Fatal(Error::Script(msg))) => Err(msg.clone()),
            other => panic!("{text}: ended with {other:?} / {e}"),
        },
    }
}

thread_local! {
    static ENGINE: (rhai::Engine, Shared, tempfile::TempDir) = engine();
    static COUNTER: RefCell<u64> = const { RefCell::new(0) };
}

/// A name no earlier case used (names are claimed once per run).
fn fresh(prefix: &str) -> String {
    COUNTER.with(|c| {
        *c.borrow_mut() += 1;
        format!("{prefix}{}", c.borrow())
    })
}

fn run(text: &str) -> Result<(), String> {
    ENGINE.with(|(engine, shared, _)| outcome(engine, shared, text))
}

/// Numbers that matter: edges, their neighbours, and anything at all.
fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::MIN + 1),
        Just(0i64),
        Just(-1i64),
        Just(1i64),
        Just(36_500i64),
        Just(36_501i64),
        Just(-36_500i64),
        Just(-36_501i64),
        Just(3_689_348_814_741_910_324i64),
        -100_000i64..100_000,
        any::<i64>(),
    ]
}

/// A Rhai expression of any kind a script could put in an options map.
fn option_value() -> impl Strategy<Value = String> {
    prop_oneof![
        number().prop_map(|n| n.to_string()),
        "[a-z0-9 /.-]{0,12}".prop_map(|s| format!("{s:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("()".to_owned()),
        Just("1.5".to_owned()),
        Just("'c'".to_owned()),
        Just("ca".to_owned()),
        Just("s".to_owned()),
        Just("[]".to_owned()),
        Just("#{}".to_owned()),
        prop::collection::vec(number(), 0..4).prop_map(|v| format!("{v:?}")),
        prop::collection::vec("[a-z0-9.-]{0,8}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("[ca, s]".to_owned()),
        Just("|| 1".to_owned()),
    ]
}

const SERVER: &str =
    "#{ cn: \"localhost\", sans: [\"localhost\", \"127.0.0.1\"], usage: [\"server\", \"client\"] }";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ca_days_are_accepted_in_range_and_refused_with_the_range(days in number()) {
        let name = fresh("ca");
        let r = run(&format!("ca(\"{name}\", #{{ days: {days} }});"));
        if (1..=36_500).contains(&days) {
            prop_assert!(r.is_ok(), "{days}: {r:?}");
        } else {
            let msg = r.expect_err("out of range");
            prop_assert!(msg.contains("`days` must be from 1 to 36500"), "{msg}");
        }
    }

    #[test]
    fn certificate_validity_never_overflows(
        before in proptest::option::of(number()),
        after in proptest::option::of(number()),
        days in proptest::option::of(number()),
    ) {
        let (ca, cert) = (fresh("ca"), fresh("c"));
        let mut opts = Vec::new();
        if let Some(b) = before { opts.push(format!("not_before_days: {b}")); }
        if let Some(a) = after { opts.push(format!("not_after_days: {a}")); }
        if let Some(d) = days { opts.push(format!("days: {d}")); }
        let text = format!("let ca = ca(\"{ca}\");\nissue(ca, \"{cert}\", #{{ {} }});", opts.join(", "));
        let in_range = |v: Option<i64>, lo: i64| v.is_none_or(|v| (lo..=36_500).contains(&v));
        let end = after.or(days).unwrap_or(365);
        // Without not_before_days validity starts a few minutes before now.
        let ordered = match before { Some(start) => end > start, None => end >= 0 };
        let valid = in_range(before, -36_500) && in_range(after, -36_500) && in_range(days, 1)
            && !(after.is_some() && days.is_some()) && ordered;
        match run(&text) {
            Ok(()) => prop_assert!(valid, "{text} passed"),
            Err(msg) => {
                prop_assert!(!valid, "{text}: {msg}");
                prop_assert!(msg.contains("must be from") || msg.contains("give one of") || msg.contains("end before it starts"), "{msg}");
            }
        }
    }

    #[test]
    fn cluster_timings_are_range_checked(hb in number(), el in number(), health in number()) {
        let (ca, server, m) = (fresh("ca"), fresh("s"), fresh("m"));
        let text = format!(
            "let ca = ca(\"{ca}\");\nlet s = issue(ca, \"{server}\", {SERVER});\n\
             cluster([\"{m}\"], #{{ ca: ca, cert: s, token: \"{m}\", heartbeat_ms: {hb}, election_ms: {el}, health_timeout_ms: {health} }});"
        );
        let in_range = (1..=10_000).contains(&hb) && (1..=50_000).contains(&el) && (1..=3_600_000).contains(&health);
        match run(&text) {
            Ok(()) => prop_assert!(in_range && el >= 5 * hb, "{text} passed"),
            Err(msg) => prop_assert!(
                (!in_range && msg.contains("must be from 1 to")) || (in_range && msg.contains("at least 5 times")),
                "{hb} {el} {health}: {msg}"
            ),
        }
    }

    #[test]
    fn names_are_accepted_or_refused_never_a_panic(name in "\\PC{0,80}") {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        let r = run(&format!("ca(\"{escaped}\");"));
        if let Err(msg) = &r {
            prop_assert!(msg.contains("not allowed") || msg.contains("already taken"), "{name:?}: {msg}");
        } else {
            prop_assert!(!name.contains('/') && !name.starts_with('.') && !name.is_empty(), "{name:?} passed");
        }
    }

    #[test]
    fn unknown_option_keys_name_the_valid_ones(key in "[a-z][a-z_]{0,11}") {
        let valid = ["cn", "sans", "usage", "days", "not_before_days", "not_after_days", "key"];
        prop_assume!(!valid.contains(&key.as_str()));
        let ca = fresh("ca");
        // Quoted, so that a key that is a keyword (`do`, `fn`) is still a key.
        let msg = run(&format!("let ca = ca(\"{ca}\");\nissue(ca, \"{}\", #{{ \"{key}\": 1 }});", fresh("c")))
            .expect_err("an unknown key");
        prop_assert!(msg.contains(&format!("unknown option `{key}`")) && msg.contains("valid options are: cn, sans"), "{msg}");
    }

    #[test]
    fn any_value_for_any_option_is_taken_or_refused_in_words(
        which in 0usize..5,
        key_index in 0usize..14,
        value in option_value(),
    ) {
        let (ca, s, m) = (fresh("ca"), fresh("s"), fresh("m"));
        let pki = format!("let ca = ca(\"{ca}\");\nlet s = issue(ca, \"{s}\", {SERVER});\n");
        let (keys, call): (&[&str], String) = match which {
            0 => (&["key", "days"], format!("ca(\"{}\", #{{ K: V }});", fresh("ca"))),
            1 => (&["cn", "sans", "usage", "days", "not_before_days", "not_after_days", "key"],
                  format!("issue(ca, \"{}\", #{{ K: V }});", fresh("c"))),
            2 => (&["client_cert_auth", "peer_cert_auth", "host", "client_ports", "peer_ports",
                    "heartbeat_ms", "election_ms", "args", "client_crl", "peer_crl", "health_timeout_ms"],
                  format!("cluster([\"{m}\"], #{{ ca: ca, cert: s, token: \"{m}\", K: V }});")),
            3 => (&["cert", "ca", "args"],
                  format!("let c = cluster([\"{m}\"], #{{ ca: ca, cert: s, token: \"{m}\" }});\n\
                           spawn_member(c, \"nope\", #{{ K: V }});")),
            _ => (&["cert", "ca", "server_name", "plaintext"],
                  format!("let c = cluster([\"{m}\"], #{{ ca: ca, cert: s, token: \"{m}\" }});\n\
                           kv_get(c, \"k\", #{{ K: V }});")),
        };
        let key = keys[key_index % keys.len()];
        let text = format!("{pki}{}", call.replace('K', key).replace('V', &value));
        // Ok, or a script error in words: a panic or a Rust type name fails the property.
        if let Err(msg) = run(&text) {
            prop_assert!(!msg.contains("::"), "{text}: {msg}");
        }
    }

    #[test]
    fn path_flags_are_refused_in_every_spelling(
        stem in "[a-z]{1,8}(-[a-z]{1,8}){0,2}",
        suffix in prop::sample::select(vec!["-file", "-dir", "-path", "-outputs", "-output"]),
        dashes in prop::sample::select(vec!["-", "--"]),
        value in proptest::option::of("[a-z/,.]{0,20}"),
        separate in any::<bool>(),
    ) {
        let flag = format!("{dashes}{stem}{suffix}");
        let mut args = vec![];
        match (&value, separate) {
            (Some(v), false) => args.push(format!("{flag}={v}")),
            (Some(v), true) => { args.push(flag.clone()); args.push(v.clone()); }
            (None, _) => args.push(flag.clone()),
        }
        let why = etcdscript::etcd::flags::check(&args).expect_err("a path flag");
        let named = format!("`--{stem}{suffix}`");
        prop_assert!(why.contains(&named) && why.contains("outside the work dir"), "{why}");
        // And through a script, in cluster args and member overrides alike.
        let quoted: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        let (ca, s, m) = (fresh("ca"), fresh("s"), fresh("m"));
        let text = format!(
            "let ca = ca(\"{ca}\");\nlet s = issue(ca, \"{s}\", {SERVER});\n\
             cluster([\"{m}\"], #{{ ca: ca, cert: s, token: \"{m}\", args: [{}] }});", quoted.join(", ")
        );
        let msg = run(&text).expect_err("refused");
        prop_assert!(msg.contains(&named), "{msg}");
    }

    #[test]
    fn other_arguments_pass(arg in "[a-z0-9.:=,]{0,30}") {
        prop_assume!(!arg.contains("unix") && !arg.contains("key="));
        prop_assert_eq!(etcdscript::etcd::flags::refusal(&arg), None);
        prop_assert_eq!(etcdscript::etcd::flags::refusal(&format!("--snapshot-count={arg}")), None);
    }

    #[test]
    fn a_quoted_line_is_bounded_and_the_caret_still_points_at_its_character(
        line in "\\PC{0,3000}",
        col in 1usize..4000,
    ) {
        let (window, caret) = etcdscript::quote::around(&line, col, 200);
        prop_assert!(window.chars().count() <= 202);
        let chars: Vec<char> = line.chars().collect();
        if col <= chars.len() {
            prop_assert_eq!(window.chars().nth(caret - 1), Some(chars[col - 1]));
        }
        prop_assert!(etcdscript::quote::clip(&line, 100).chars().count() <= 130);
    }

    #[test]
    fn owner_stamps_parse_or_are_refused_never_a_panic(text in "\\PC{0,200}") {
        let _ = etcdscript::workdirs::Stamp::parse(&text);
    }

    #[test]
    fn owner_stamps_read_back(
        pid in any::<u32>(),
        start in "[0-9]{1,12}",
        ns in "pid:\\[[0-9]{1,12}\\]",
        boot in "[0-9a-f-]{1,36}",
        keep in any::<bool>(),
    ) {
        let stamp = etcdscript::workdirs::Stamp { pid, start, pidns: ns, boot, keep };
        prop_assert_eq!(etcdscript::workdirs::Stamp::parse(&stamp.render()), Some(stamp));
    }
}
