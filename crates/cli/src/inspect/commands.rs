//! Command sequences as both renderers see them: each command decoded once into a
//! [`CommandView`], then printed as indented text or as a JSON object.

use serde_json::{Value, json};
use suitcase_suit::command::{CustomArg, IndexArg};
use suitcase_suit::parameter::CustomValue;
use suitcase_suit::{Command, CommandSequence, DecodeError, Parameter, Parameters, VendorId};

use crate::{diag, names};

/// One command: its absolute byte offset in the file, code, name and argument.
#[derive(Debug)]
pub struct CommandView {
    offset: usize,
    code: i64,
    name: String,
    arg: Arg,
}

#[derive(Debug)]
enum Arg {
    /// A reporting policy (conditions and most directives).
    Policy(u32),
    /// set-component-index: the rendered argument and its JSON form.
    Index(String, Value),
    /// set-parameters / override-parameters.
    Params(Vec<ParamView>),
    TryEach {
        branches: Vec<Vec<CommandView>>,
        empty_fallback: bool,
    },
    /// run-sequence.
    Sequence(Vec<CommandView>),
    /// override-multiple: per component index.
    Multi(Vec<(u32, Vec<ParamView>)>),
    /// copy-params: per source index, the parameter codes.
    CopyParams(Vec<(u32, Vec<i64>)>),
    /// A custom command's argument (or a command this CLI does not know how to show).
    Other(String, Value),
}

/// One parameter, rendered.
#[derive(Debug)]
struct ParamView {
    name: String,
    text: String,
    json: Value,
}

/// Decodes every command of `seq`, recursing into try-each and run-sequence.
pub fn decode(seq: &CommandSequence<'_>) -> Result<Vec<CommandView>, DecodeError> {
    let base = seq.offset();
    seq.iter()
        .map(|item| {
            let (at, cmd) = item?;
            view(base + at, &cmd)
        })
        .collect()
}

fn view(offset: usize, cmd: &Command<'_>) -> Result<CommandView, DecodeError> {
    let code = cmd.code();
    let arg = match cmd {
        Command::Condition(_, p) | Command::Directive(_, p) => Arg::Policy(p.0),
        Command::SetComponentIndex(IndexArg::All) => Arg::Index("all".into(), json!(true)),
        Command::SetComponentIndex(IndexArg::One(i)) => Arg::Index(i.to_string(), json!(i)),
        Command::SetComponentIndex(IndexArg::List(list)) => {
            let v: Vec<u32> = list.iter().collect();
            Arg::Index(format!("{v:?}"), json!(v))
        }
        Command::SetParameters(p) | Command::OverrideParameters(p) => Arg::Params(params(p)),
        Command::TryEach(t) => Arg::TryEach {
            branches: t
                .branches()
                .map(|b| decode(&b?))
                .collect::<Result<_, _>>()?,
            empty_fallback: t.has_empty_fallback,
        },
        Command::RunSequence(s) => Arg::Sequence(decode(s)?),
        Command::OverrideMultiple(m) => Arg::Multi(
            m.parameters()
                .map(|r| r.map(|(i, p)| (i, params(&p))))
                .collect::<Result<_, _>>()?,
        ),
        Command::CopyParams(m) => Arg::CopyParams(
            m.code_lists()
                .map(|r| r.map(|(i, codes)| (i, codes.iter().collect())))
                .collect::<Result<_, _>>()?,
        ),
        Command::Custom(_, a) => {
            let (text, json) = match a {
                CustomArg::Bytes(b) => (format!("h'{}'", hex::encode(b)), json!(hex::encode(b))),
                CustomArg::Text(t) => (format!("{t:?}"), json!(t)),
                CustomArg::Int(i) => (i.to_string(), json!(i)),
                CustomArg::Nil => ("null".into(), Value::Null),
            };
            Arg::Other(text, json)
        }
        // `Command` is non-exhaustive: a later variant still shows its code.
        _ => Arg::Other(String::new(), Value::Null),
    };
    Ok(CommandView {
        offset,
        code,
        name: names::command(code),
        arg,
    })
}

fn params(p: &Parameters<'_>) -> Vec<ParamView> {
    p.iter().map(|p| param(&p)).collect()
}

/// Bytes as hex, shortened past 64 bytes (a `content` parameter can hold an image).
fn bytes_text(b: &[u8]) -> String {
    const SHOWN: usize = 64;
    match b.get(..SHOWN) {
        Some(head) if b.len() > SHOWN => format!("h'{}…' ({} bytes)", hex::encode(head), b.len()),
        _ => format!("h'{}'", hex::encode(b)),
    }
}

fn param(p: &Parameter<'_>) -> ParamView {
    let (text, json) = match p {
        Parameter::VendorId(VendorId::Uuid(u)) => (names::uuid(u), json!(names::uuid(u))),
        Parameter::VendorId(VendorId::Pen(b)) => (
            format!("pen h'{}'", hex::encode(b)),
            json!({ "pen": hex::encode(b) }),
        ),
        Parameter::ClassId(u) | Parameter::DeviceId(u) => (names::uuid(u), json!(names::uuid(u))),
        Parameter::ImageDigest(d) => (
            names::digest(d),
            json!({ "alg": names::digest_algorithm(d.algorithm), "hex": hex::encode(d.bytes) }),
        ),
        Parameter::UseBefore(n)
        | Parameter::ComponentSlot(n)
        | Parameter::ImageSize(n)
        | Parameter::MinimumBattery(n) => (n.to_string(), json!(n)),
        Parameter::SourceComponent(n) => (n.to_string(), json!(n)),
        Parameter::UpdatePriority(n) => (n.to_string(), json!(n)),
        Parameter::StrictOrder(b) | Parameter::SoftFailure(b) => (b.to_string(), json!(b)),
        Parameter::Content(b) | Parameter::InvokeArgs(b) | Parameter::FetchArguments(b) => {
            (bytes_text(b), json!(hex::encode(b)))
        }
        Parameter::Uri(u) => (diag_text(u), json!(u)),
        Parameter::EncryptionInfo(b)
        | Parameter::Version(b)
        | Parameter::WaitInfo(b)
        | Parameter::ComponentMetadata(b) => {
            let d = diag::embedded(b);
            (d.clone(), json!(d))
        }
        Parameter::Custom(_, v) => match v {
            CustomValue::Int(i) => (i.to_string(), json!(i)),
            CustomValue::Bool(b) => (b.to_string(), json!(b)),
            CustomValue::Text(t) => (diag_text(t), json!(t)),
            CustomValue::Bytes(b) => (bytes_text(b), json!(hex::encode(b))),
        },
        // `Parameter` is non-exhaustive.
        _ => ("?".into(), Value::Null),
    };
    ParamView {
        name: names::parameter(p.code()),
        text,
        json,
    }
}

/// A text string in diagnostic notation.
fn diag_text(t: &str) -> String {
    diag::one_line(&ciborium::Value::Text(t.to_string()))
}

fn params_text(ps: &[ParamView]) -> String {
    let inner: Vec<String> = ps
        .iter()
        .map(|p| format!("{}: {}", p.name, p.text))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn params_json(ps: &[ParamView]) -> Value {
    Value::Object(
        ps.iter()
            .map(|p| (p.name.clone(), p.json.clone()))
            .collect(),
    )
}

impl CommandView {
    /// Appends this command as indented lines (`depth` levels of two spaces).
    pub fn text(&self, depth: usize, out: &mut Vec<String>) {
        let pad = "  ".repeat(depth);
        let name = &self.name;
        match &self.arg {
            Arg::Policy(p) => out.push(format!("{pad}{name} (policy {p})")),
            Arg::Index(i, _) => out.push(format!("{pad}{name} {i}")),
            Arg::Params(ps) => out.push(format!("{pad}{name} {}", params_text(ps))),
            Arg::TryEach {
                branches,
                empty_fallback,
            } => {
                out.push(format!("{pad}{name}"));
                let n = branches.len();
                for (i, b) in branches.iter().enumerate() {
                    out.push(format!("{pad}  branch {} of {n}:", i + 1));
                    for c in b {
                        c.text(depth + 2, out);
                    }
                }
                if *empty_fallback {
                    out.push(format!("{pad}  else: carry on (empty fallback)"));
                }
            }
            Arg::Sequence(cmds) => {
                out.push(format!("{pad}{name}"));
                for c in cmds {
                    c.text(depth + 1, out);
                }
            }
            Arg::Multi(per) => {
                out.push(format!("{pad}{name}"));
                for (i, ps) in per {
                    out.push(format!("{pad}  component {i}: {}", params_text(ps)));
                }
            }
            Arg::CopyParams(per) => {
                let parts: Vec<String> = per
                    .iter()
                    .map(|(i, codes)| {
                        let ns: Vec<String> = codes.iter().map(|c| names::parameter(*c)).collect();
                        format!("from {i}: [{}]", ns.join(", "))
                    })
                    .collect();
                out.push(format!("{pad}{name} {{{}}}", parts.join(", ")));
            }
            Arg::Other(t, _) if t.is_empty() => out.push(format!("{pad}{name}")),
            Arg::Other(t, _) => out.push(format!("{pad}{name} {t}")),
        }
    }

    /// The command as a JSON object: `offset`, `code`, `name` and its argument.
    pub fn json(&self) -> Value {
        let mut o = json!({ "offset": self.offset, "code": self.code, "name": self.name });
        let extra = match &self.arg {
            Arg::Policy(p) => json!({ "policy": p }),
            Arg::Index(_, v) => json!({ "index": v }),
            Arg::Params(ps) => json!({ "parameters": params_json(ps) }),
            Arg::TryEach {
                branches,
                empty_fallback,
            } => json!({
                "branches": branches.iter().map(|b| list_json(b)).collect::<Vec<_>>(),
                "empty_fallback": empty_fallback,
            }),
            Arg::Sequence(cmds) => json!({ "commands": list_json(cmds) }),
            Arg::Multi(per) => json!({
                "components": per
                    .iter()
                    .map(|(i, ps)| (i.to_string(), params_json(ps)))
                    .collect::<serde_json::Map<_, _>>(),
            }),
            Arg::CopyParams(per) => json!({
                "copy": per
                    .iter()
                    .map(|(i, codes)| {
                        let ns: Vec<String> = codes.iter().map(|c| names::parameter(*c)).collect();
                        (i.to_string(), json!(ns))
                    })
                    .collect::<serde_json::Map<_, _>>(),
            }),
            Arg::Other(_, v) => json!({ "argument": v }),
        };
        if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
            o.extend(extra);
        }
        o
    }
}

/// A list of commands as a JSON array.
pub fn list_json(cmds: &[CommandView]) -> Value {
    Value::Array(cmds.iter().map(CommandView::json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[20, {14: 5, 21: "u"}, 12, 1, 3, 15, 15, [bstr[5, 5], bstr[14, 0], nil]]`.
    fn sample() -> Vec<u8> {
        use ciborium::Value as V;
        let enc = |v: &V| {
            let mut out = Vec::new();
            ciborium::into_writer(v, &mut out).unwrap();
            out
        };
        let int = |i: i64| V::Integer(i.into());
        let seq = V::Array(vec![
            int(20),
            V::Map(vec![(int(14), int(5)), (int(21), V::Text("u".into()))]),
            int(12),
            int(1),
            int(3),
            int(15),
            int(15),
            V::Array(vec![
                V::Bytes(enc(&V::Array(vec![int(5), int(5)]))),
                V::Bytes(enc(&V::Array(vec![int(14), int(0)]))),
                V::Null,
            ]),
        ]);
        enc(&seq)
    }

    #[test]
    fn renders_text_and_json() {
        let bytes = sample();
        let seq = CommandSequence::decode(&bytes).unwrap();
        let cmds = decode(&seq).unwrap();
        let mut lines = Vec::new();
        for c in &cmds {
            c.text(0, &mut lines);
        }
        assert_eq!(
            lines,
            [
                r#"override-parameters {image-size: 5, uri: "u"}"#,
                "set-component-index 1",
                "condition-image-match (policy 15)",
                "try-each",
                "  branch 1 of 2:",
                "    condition-component-slot (policy 5)",
                "  branch 2 of 2:",
                "    condition-abort (policy 0)",
                "  else: carry on (empty fallback)",
            ]
        );
        let j = list_json(&cmds);
        assert_eq!(j[0]["parameters"]["image-size"], 5);
        assert_eq!(j[1]["index"], 1);
        assert_eq!(j[2]["policy"], 15);
        assert_eq!(j[3]["branches"][1][0]["name"], "condition-abort");
        assert_eq!(j[3]["empty_fallback"], true);
        assert_eq!(
            j[0]["offset"], 1,
            "offset of the first command in the array"
        );
    }
}
