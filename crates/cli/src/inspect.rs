//! `suitcase inspect FILE [--json | --diag]`: decode an envelope and show everything in
//! it, as a reader wants it (a tree of named commands) or, with `--diag`, as CBOR
//! diagnostic notation (RFC 8949 §8) with every `bstr .cbor` layer opened (`<<…>>`).
//!
//! Nothing is authenticated: no key is involved, and the output says so first. The
//! decoder is the device's own (`suitcase-suit`), so a file that inspects cleanly is one
//! the processor will parse; a decode error names its byte offset.

mod commands;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use suitcase_cose::{CoseError, CoseMessage};
use suitcase_suit::{
    CommandSequence, DecodeError, Digest, DigestAlgorithm, Envelope, Manifest, Resolved,
    SeverableKind,
};

use crate::{diag, names};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The envelope (a CBOR SUIT_Envelope, tag 107).
    pub file: PathBuf,
    /// Print JSON Lines: one object per element, tagged by "type"; nothing else.
    #[arg(long, conflicts_with = "diag")]
    pub json: bool,
    /// Print the whole envelope as CBOR diagnostic notation, bstr-wrapped CBOR opened.
    #[arg(long)]
    pub diag: bool,
}

/// One element of the output, in both renderings.
struct Section {
    json: Value,
    text: Vec<String>,
}

/// Runs `inspect`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| name.clone())?;
    let sections = sections(&name, &bytes).with_context(|| name.clone())?;
    if args.diag {
        // The device decoder accepted it above, so it is one well-formed item.
        let v = diag::decode(&bytes).ok_or_else(|| anyhow::anyhow!("{name}: not one CBOR item"))?;
        for line in diag::pretty(&diag::expand(v)) {
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    for s in sections {
        if args.json {
            writeln!(out, "{}", s.json)?;
        } else {
            for line in s.text {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// Every section of the output, in order: envelope, auth, manifest, sequences, text,
/// payloads.
fn sections(name: &str, bytes: &[u8]) -> Result<Vec<Section>, DecodeError> {
    let env = Envelope::decode(bytes)?;
    let manifest = env.manifest()?;
    let mut out = vec![
        envelope(name, bytes),
        auth(&env),
        manifest_section(&env, &manifest),
    ];
    if let Some(shared) = manifest.common.shared_sequence {
        out.push(sequence("shared", 4, State::Inline, Some(&shared))?);
    }
    for (label, kind) in [
        ("dependency-resolution", SeverableKind::DependencyResolution),
        ("payload-fetch", SeverableKind::PayloadFetch),
        (
            "candidate-verification",
            SeverableKind::CandidateVerification,
        ),
        ("install", SeverableKind::Install),
    ] {
        if let Some(state) = state(&env, &manifest, kind) {
            let seq = match env.sequence(&manifest, kind)? {
                suitcase_suit::SequenceSource::Available(s) => Some(s),
                _ => None,
            };
            out.push(sequence(label, kind.key(), state, seq.as_ref())?);
        }
    }
    for (label, key, seq) in [
        ("validate", 7, manifest.validate),
        ("load", 8, manifest.load),
        ("invoke", 9, manifest.invoke),
        ("uninstall", 24, manifest.uninstall),
    ] {
        if let Some(seq) = seq {
            out.push(sequence(label, key, State::Inline, Some(&seq))?);
        }
    }
    for (label, kind) in [
        ("text", SeverableKind::Text),
        ("coswid", SeverableKind::Coswid),
    ] {
        if let Some(state) = state(&env, &manifest, kind) {
            out.push(data_member(label, kind, state, &env, &manifest));
        }
    }
    out.push(payloads(&env));
    Ok(out)
}

fn envelope(name: &str, bytes: &[u8]) -> Section {
    // The decoder accepted the file, so a leading tag (major type 6) is tag 107.
    let tagged = bytes.first().is_some_and(|b| b >> 5 == 6);
    Section {
        json: json!({
            "type": "envelope",
            "file": name,
            "authenticated": false,
            "tagged": tagged,
            "size": bytes.len(),
        }),
        text: vec![
            format!(
                "{name}: NOT AUTHENTICATED: decoded only, no signature checked (use 'suitcase verify')"
            ),
            format!(
                "envelope: {}, {} bytes",
                if tagged { "tagged 107" } else { "untagged" },
                bytes.len()
            ),
        ],
    }
}

/// Whether `bytes` hash to `d`; `None` for algorithms this tool does not compute.
fn digest_matches(d: &Digest<'_>, bytes: &[u8]) -> Option<bool> {
    (d.algorithm == DigestAlgorithm::Sha256).then(|| Sha256::digest(bytes).as_slice() == d.bytes)
}

fn digest_json(d: &Digest<'_>) -> Value {
    json!({ "alg": names::digest_algorithm(d.algorithm), "hex": hex::encode(d.bytes) })
}

fn auth(env: &Envelope<'_>) -> Section {
    let a = &env.auth;
    let matches = digest_matches(&a.digest, env.manifest_bytes);
    let verdict = match matches {
        Some(true) => "matches the manifest",
        Some(false) => "DOES NOT match the manifest",
        None => "not computed",
    };
    let mut text = vec![
        "authentication-wrapper:".to_string(),
        format!("  digest: {} ({verdict})", names::digest(&a.digest)),
        format!("  COSE blocks: {}", a.block_count()),
    ];
    let mut blocks = Vec::new();
    for (i, block) in a.blocks().enumerate() {
        let (line, j) = cose_block(block);
        text.push(format!("    [{i}] {line}"));
        blocks.push(j);
    }
    Section {
        json: json!({
            "type": "auth",
            "digest": digest_json(&a.digest),
            "digest_matches_manifest": matches,
            "blocks": blocks,
        }),
        text,
    }
}

/// One COSE block: kind, algorithm and kid when it decodes, the reason when not.
fn cose_block(block: &[u8]) -> (String, Value) {
    match CoseMessage::decode(block) {
        Ok(m) => {
            let alg = names::cose_algorithm(m.alg);
            let id = m.alg.cose_id();
            let kid = match m.kid {
                None => "no kid".to_string(),
                Some(k) => match std::str::from_utf8(k) {
                    Ok(s)
                        if !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
                    {
                        format!("kid h'{}' ({s:?})", hex::encode(k))
                    }
                    _ => format!("kid h'{}'", hex::encode(k)),
                },
            };
            let kind = names::cose_kind(m.kind);
            let what = match m.kind {
                suitcase_cose::CoseKind::Sign1 => "signature",
                suitcase_cose::CoseKind::Mac0 => "tag",
            };
            (
                format!(
                    "{kind}, alg {alg} ({id}), {kid}, {what} {} bytes",
                    m.tag.len()
                ),
                json!({
                    "kind": kind,
                    "alg": alg,
                    "alg_id": id,
                    "kid": m.kid.map(hex::encode),
                    "size": block.len(),
                }),
            )
        }
        Err(e) => {
            let why = match e {
                CoseError::UnsupportedMessage(98) => "COSE_Sign (tag 98), not decoded here".into(),
                CoseError::UnsupportedMessage(97) => "COSE_Mac (tag 97), not decoded here".into(),
                e => format!("undecodable: {e}"),
            };
            (why.clone(), json!({ "error": why, "size": block.len() }))
        }
    }
}

/// `[h'…', …]`; a segment that is printable text also shows it, in parentheses.
fn component_text(id: &suitcase_suit::ComponentId<'_>) -> String {
    let segs: Vec<String> = id
        .segments()
        .map(|s| match std::str::from_utf8(s) {
            Ok(t) if t.len() >= 2 && t.chars().all(|c| c.is_ascii_graphic()) => {
                format!("h'{}' ({t:?})", hex::encode(s))
            }
            _ => format!("h'{}'", hex::encode(s)),
        })
        .collect();
    format!("[{}]", segs.join(", "))
}

fn component_json(id: &suitcase_suit::ComponentId<'_>) -> Value {
    Value::Array(id.segments().map(|s| json!(hex::encode(s))).collect())
}

fn manifest_section(env: &Envelope<'_>, m: &Manifest<'_>) -> Section {
    let comps = &m.common.components;
    let mut text = vec![
        format!("manifest: {} bytes", env.manifest_bytes.len()),
        // The decoder refuses every version but 1.
        "  version: 1".to_string(),
        format!("  sequence-number: {}", m.sequence_number),
    ];
    if let Some(uri) = m.reference_uri {
        text.push(format!("  reference-uri: {uri:?}"));
    }
    if let Some(id) = &m.component_id {
        text.push(format!("  manifest-component-id: {}", component_text(id)));
    }
    if let Some(v) = m.set_version {
        text.push(format!("  set-version: {}", diag::of_bytes(v)));
    }
    text.push(format!("  components: {}", comps.len()));
    for (i, id) in comps.iter().enumerate() {
        text.push(format!("    {i}: {}", component_text(&id)));
    }
    if let Some(d) = m.common.dependencies {
        text.push(format!("  dependencies: {}", diag::of_bytes(d.as_bytes())));
    }
    Section {
        json: json!({
            "type": "manifest",
            "size": env.manifest_bytes.len(),
            "version": 1,
            "sequence_number": m.sequence_number,
            "reference_uri": m.reference_uri,
            "manifest_component_id": m.component_id.as_ref().map(component_json),
            "set_version": m.set_version.map(diag::of_bytes),
            "components": comps.iter().map(|c| component_json(&c)).collect::<Vec<_>>(),
            "dependencies": m.common.dependencies.map(|d| diag::of_bytes(d.as_bytes())),
        }),
        text,
    }
}

/// Where a member is: in the manifest, or severed (with what the envelope carries).
enum State {
    Inline,
    Severed {
        digest: String,
        digest_json: Value,
        carried: bool,
        matches: Option<bool>,
    },
}

fn state(env: &Envelope<'_>, m: &Manifest<'_>, kind: SeverableKind) -> Option<State> {
    match env.resolve(m, kind) {
        Resolved::Absent => None,
        Resolved::Inline(_) => Some(State::Inline),
        Resolved::Severed { digest, value } => Some(State::Severed {
            digest: names::digest(&digest),
            digest_json: digest_json(&digest),
            carried: value.is_some(),
            matches: value.and_then(|w| digest_matches(&digest, w.whole)),
        }),
    }
}

impl State {
    /// `label:` or `label: severed (sha-256:…; carried|absent)`.
    fn heading(&self, label: &str) -> String {
        match self {
            State::Inline => format!("  {label}:"),
            State::Severed {
                digest,
                carried,
                matches,
                ..
            } => {
                let where_ = match (carried, matches) {
                    (false, _) => "absent",
                    (true, Some(false)) => "carried, DIGEST MISMATCH",
                    (true, _) => "carried",
                };
                format!("  {label}: severed ({digest}; {where_})")
            }
        }
    }

    fn json_into(&self, o: &mut Value) {
        let extra = match self {
            State::Inline => json!({ "state": "inline" }),
            State::Severed {
                digest_json,
                carried,
                matches,
                ..
            } => json!({
                "state": "severed",
                "digest": digest_json,
                "carried": carried,
                "digest_matches": matches,
            }),
        };
        if let (Value::Object(o), Value::Object(extra)) = (o, extra) {
            o.extend(extra);
        }
    }
}

fn sequence(
    label: &str,
    key: i64,
    state: State,
    seq: Option<&CommandSequence<'_>>,
) -> Result<Section, DecodeError> {
    let mut text = vec![state.heading(label)];
    let mut json = json!({ "type": "sequence", "name": label, "key": key });
    state.json_into(&mut json);
    if let Some(seq) = seq {
        let cmds = commands::decode(seq)?;
        for c in &cmds {
            c.text(2, &mut text);
        }
        if let Value::Object(o) = &mut json {
            o.insert("commands".into(), commands::list_json(&cmds));
        }
    }
    Ok(Section { json, text })
}

/// Text or CoSWID: shown as CBOR diagnostic notation.
fn data_member(
    label: &str,
    kind: SeverableKind,
    state: State,
    env: &Envelope<'_>,
    m: &Manifest<'_>,
) -> Section {
    let raw = match env.resolve(m, kind) {
        Resolved::Inline(w) | Resolved::Severed { value: Some(w), .. } => Some(w.inner),
        _ => None,
    };
    let mut text = vec![state.heading(label)];
    let mut json = json!({ "type": label, "key": kind.key() });
    state.json_into(&mut json);
    if let Some(raw) = raw {
        match diag::decode(raw) {
            Some(v) => text.extend(diag::pretty(&v).into_iter().map(|l| format!("    {l}"))),
            None => text.push(format!("    h'{}'", hex::encode(raw))),
        }
        if let Value::Object(o) = &mut json {
            o.insert("diag".into(), json!(diag::of_bytes(raw)));
        }
    }
    Section { json, text }
}

fn payloads(env: &Envelope<'_>) -> Section {
    let list: Vec<(&str, usize)> = env.integrated_names().map(|(n, b)| (n, b.len())).collect();
    let mut text = Vec::new();
    if list.is_empty() {
        text.push("integrated payloads: none".to_string());
    } else {
        text.push(format!("integrated payloads: {}", list.len()));
        for (n, size) in &list {
            text.push(format!("  {n:?}: {size} bytes"));
        }
    }
    Section {
        json: json!({
            "type": "payloads",
            "payloads": list
                .iter()
                .map(|(n, size)| json!({ "name": n, "size": size }))
                .collect::<Vec<_>>(),
        }),
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from(["suitcase", "inspect", "--json", "e.suit"]).unwrap();
        let Command::Inspect(a) = cli.command else {
            panic!("not inspect")
        };
        assert!(a.json);
        assert_eq!(a.file, PathBuf::from("e.suit"));
        let cli = Cli::try_parse_from(["suitcase", "inspect", "e.suit"]).unwrap();
        let Command::Inspect(a) = cli.command else {
            panic!("not inspect")
        };
        assert!(!a.json);
        assert!(Cli::try_parse_from(["suitcase", "inspect"]).is_err());
    }

    #[test]
    fn every_spec_example_renders() {
        let dir = suitcase_testkit::vectors::dir().join(suitcase_testkit::vectors::SPEC);
        for n in 0..=5 {
            for suffix in ["", "-unsigned"] {
                let name = format!("example{n}{suffix}.suit");
                let bytes = std::fs::read(dir.join(&name)).unwrap();
                let s = sections(&name, &bytes).unwrap();
                let text: Vec<String> = s.iter().flat_map(|s| s.text.clone()).collect();
                assert!(
                    text.iter().any(|l| l == &format!("  sequence-number: {n}")),
                    "{name}: {text:#?}"
                );
                let blocks = if suffix.is_empty() { 1 } else { 0 };
                assert!(
                    text.iter()
                        .any(|l| l == &format!("  COSE blocks: {blocks}")),
                    "{name}"
                );
                assert!(
                    text.iter().any(|l| l.ends_with("(matches the manifest)")),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn severed_members_say_carried_or_absent() {
        let dir = suitcase_testkit::vectors::dir().join(suitcase_testkit::vectors::SPEC);
        let text = |name: &str| -> Vec<String> {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            sections(name, &bytes)
                .unwrap()
                .into_iter()
                .flat_map(|s| s.text)
                .collect()
        };
        let full = text("example2.suit");
        let install = full
            .iter()
            .find(|l| l.starts_with("  install: severed (sha-256:"))
            .unwrap();
        assert!(install.ends_with("; carried)"), "{install}");
        assert!(
            full.iter()
                .any(|l| l.trim_start().starts_with("fetch (policy")),
            "{full:#?}"
        );
        let severed = text("example2-severed.suit");
        let install = severed
            .iter()
            .find(|l| l.starts_with("  install: "))
            .unwrap();
        assert!(install.ends_with("; absent)"), "{install}");
        let text_member = severed.iter().find(|l| l.starts_with("  text: ")).unwrap();
        assert!(text_member.ends_with("; absent)"), "{text_member}");
    }

    #[test]
    fn truncated_input_fails_with_an_offset() {
        let dir = suitcase_testkit::vectors::dir().join(suitcase_testkit::vectors::SPEC);
        let bytes = std::fs::read(dir.join("example0.suit")).unwrap();
        let Err(e) = sections("x", &bytes[..bytes.len() - 10]) else {
            panic!("decoded")
        };
        assert!(e.to_string().contains(" at byte "), "{e}");
    }
}
