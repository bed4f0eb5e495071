//! The PKI of an export as openssl commands: keys, CAs, certificates with the subject, SANs,
//! usages and validity the run gave them (`openssl ca` where dates are set), chains, and CRLs.

use super::commands::{sh, Context};
use super::Chunk;
use crate::pki::{CertSpec, KeyKind, Usage};

/// openssl's `-subj` for a common name: `\\`, `/` and `+` escaped, so that the name stays one
/// attribute whatever it holds.
fn subj(cn: &str) -> String {
    let mut s = String::from("/CN=");
    for ch in cn.chars() {
        if matches!(ch, '\\' | '/' | '+') {
            s.push('\\');
        }
        s.push(ch);
    }
    sh(&s)
}

fn genkey(name: &str, key: KeyKind) -> String {
    match key {
        KeyKind::Rsa2048 => {
            format!("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {name}.key")
        }
        _ => format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {name}.key"
        ),
    }
}

/// `date` for a day offset, as `openssl ca` takes it.
fn date(days: i64) -> String {
    format!("$(date -u -d '{days:+} days' +%Y%m%d%H%M%SZ)")
}

pub(super) fn render_ca(
    ctx: &mut Context,
    name: &str,
    days: i64,
    key: KeyKind,
    parent: Option<&str>,
    c: &mut Chunk,
) {
    ctx.parents
        .insert(name.to_owned(), parent.map(str::to_owned));
    c.commands.push(genkey(name, key));
    c.commands.push(format!(
        "openssl req -new -key {name}.key -subj {} -out {name}.csr",
        subj(name)
    ));
    c.commands.push(format!(
        "printf '%s\\n' 'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' 'subjectKeyIdentifier=hash' > {name}.ext"
    ));
    match parent {
        None => c.commands.push(format!(
            "openssl x509 -req -in {name}.csr -signkey {name}.key -days {days} -extfile {name}.ext -out {name}.crt"
        )),
        Some(p) => c.commands.push(format!(
            "openssl x509 -req -in {name}.csr -CA {p}.crt -CAkey {p}.key -CAcreateserial -days {days} -extfile {name}.ext -out {name}.crt"
        )),
    }
}

/// The `openssl ca` configuration of `ca` (its database of what it signed and revoked), made
/// once.
fn ca_config(ctx: &mut Context, ca: &str, c: &mut Chunk) {
    if ctx.ca_configs.iter().any(|n| n == ca) {
        return;
    }
    ctx.ca_configs.push(ca.to_owned());
    c.commands.push(format!(
        "printf '%s\\n' '[ca]' 'default_ca=d' '[d]' 'database={ca}.index' 'new_certs_dir=.' 'serial={ca}.serial' 'default_md=sha256' 'default_crl_days=30' 'policy=p' 'unique_subject=no' '[p]' 'commonName=supplied' > {ca}.cnf"
    ));
    c.commands
        .push(format!(": > {ca}.index; echo 1000 > {ca}.serial"));
}

/// `ca`'s CRL, written again from its database.
pub(super) fn gencrl(ctx: &mut Context, ca: &str, c: &mut Chunk) {
    ca_config(ctx, ca, c);
    if !ctx.crls.iter().any(|n| n == ca) {
        ctx.crls.push(ca.to_owned());
    }
    c.commands.push(format!(
        "openssl ca -gencrl -config {ca}.cnf -cert {ca}.crt -keyfile {ca}.key -out {ca}.crl 2>/dev/null"
    ));
}

pub(super) fn render_cert(ctx: &mut Context, name: &str, spec: &CertSpec, ca: &str, c: &mut Chunk) {
    c.commands.push(genkey(name, spec.key));
    c.commands.push(format!(
        "openssl req -new -key {name}.key -subj {} -out {name}.csr",
        subj(&spec.cn)
    ));
    let mut ext = vec!["basicConstraints=CA:FALSE".to_owned()];
    ext.push(match spec.key {
        KeyKind::EcP256 => "keyUsage=critical,digitalSignature".into(),
        _ => "keyUsage=critical,digitalSignature,keyEncipherment".into(),
    });
    let usages: Vec<&str> = spec
        .usage
        .iter()
        .map(|u| match u {
            Usage::Server => "serverAuth",
            Usage::Client => "clientAuth",
        })
        .collect();
    ext.push(format!("extendedKeyUsage={}", usages.join(",")));
    if !spec.sans.is_empty() {
        let sans: Vec<String> = spec
            .sans
            .iter()
            .map(|s| {
                if s.parse::<std::net::IpAddr>().is_ok() {
                    format!("IP:{s}")
                } else {
                    format!("DNS:{s}")
                }
            })
            .collect();
        ext.push(format!("subjectAltName={}", sans.join(",")));
    }
    let quoted: Vec<String> = ext.iter().map(|e| sh(e)).collect();
    c.commands
        .push(format!("printf '%s\\n' {} > {name}.ext", quoted.join(" ")));
    let custom_dates = spec.not_before_days.is_some() || spec.not_after_secs.is_some();
    if !custom_dates {
        c.commands.push(format!(
            "openssl x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -CAcreateserial -days {} -extfile {name}.ext -out {name}.crt",
            spec.not_after_days
        ));
    } else {
        // `openssl x509` sets no start date: `openssl ca` does, with a configuration of its own.
        ca_config(ctx, ca, c);
        let start = date(spec.not_before_days.unwrap_or(0));
        let end = match spec.not_after_secs {
            Some(s) => format!("$(date -u -d '{s:+} seconds' +%Y%m%d%H%M%SZ)"),
            None => date(spec.not_after_days),
        };
        c.commands.push(format!(
            "openssl ca -batch -notext -config {ca}.cnf -cert {ca}.crt -keyfile {ca}.key -in {name}.csr -startdate {start} -enddate {end} -extfile {name}.ext -out {name}.crt 2>/dev/null"
        ));
    }
    if spec.chain {
        let mut chain = Vec::new();
        let mut at = Some(ca.to_owned());
        while let Some(name_) = at {
            let parent = ctx.parents.get(&name_).cloned().flatten();
            if parent.is_some() {
                chain.push(format!("{name_}.crt"));
            }
            at = parent;
        }
        if !chain.is_empty() {
            c.commands
                .push(format!("cat {} >> {name}.crt", chain.join(" ")));
        }
    }
}

/// `revoke`: `file` entered as revoked in `ca`'s database, and its CRL written again.
pub(super) fn render_revoke(ctx: &mut Context, ca: &str, file: &str, c: &mut Chunk) {
    ca_config(ctx, ca, c);
    c.commands.push(format!(
        "openssl ca -config {ca}.cnf -cert {ca}.crt -keyfile {ca}.key -revoke {file} 2>/dev/null"
    ));
    gencrl(ctx, ca, c);
}
