//! `suitcase demo`: a guided end-to-end run of the device code in three parts.
//!
//! Part 1, steps (a)–(h): the SUIT processor on an in-memory device with the published
//! vectors of the manifest spec. Part 2, steps (i)–(q) ([`story`]): the device story with
//! the real bootloader over the NOR flash simulator in a temporary directory — keys,
//! three releases, v1 in the factory, the update to v2 with a power cut in the middle of
//! the swap and the recovery, trial boot and confirm, a bad v3 reverted, a downgrade
//! refused. Part 3, steps (r)–(v) ([`fleet`]): the fleet on loopback — the update server
//! in this process, 50 simulated devices, a phased rollout with a power cut, a bad
//! release halting its campaign by itself — then a device table and the dashboard's
//! address.
//!
//! Each step is a small function that returns the fact it measured (or why it failed);
//! `run` prints one ✔/✘ line per step, a summary, and a closing
//! `demo: N steps passed, M failed`. On a terminal a progress bar (on stderr) shows the
//! step being run (and a bar per fleet round); when stdout is not a terminal (CI, pipes)
//! there is no bar, only the lines. The steps use the processor exactly as a device does:
//! `authenticate`, then `update` or `invoke` over a `Platform` lent by
//! `suitcase_testkit::device::MemDevice`.
//!
//! Two deliberate liberties, both said in the output: the spec examples carry
//! placeholder image digests, so the update steps re-sign them with the digests of real
//! (generated) images using the published private key; and example 3 has no invoke
//! sequence, so the demo's copy of it adds `invoke (policy 2)` to show a boot.

mod fleet;
mod story;

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use suitcase_testkit::image;
use suitcase_testkit::vectors::{PLACEHOLDER_0 as P0, PLACEHOLDER_1 as P1};

use anyhow::{Context as _, anyhow, bail, ensure};
use ciborium::Value;
use suitcase_cose::{
    Algorithm, CoseMessage, OwnedVerifyingKey, SigningKey, signing_key_from_pem,
    verifying_key_from_pem,
};
use suitcase_processor::platform::{Rule, StaticKeys, TrustAnchor};
use suitcase_processor::{AuthError, Error, authenticate};
use suitcase_suit::Envelope;
use suitcase_testkit::build;
use suitcase_testkit::device::MemDevice;
use suitcase_testkit::resign::{Rewrite, Signer};
use suitcase_testkit::vectors::SPEC;

use crate::Rejected;

/// Arguments of `demo` (the vectors come from `SUITCASE_VECTORS` or the checkout).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// After the last line, keep the fleet server (and its dashboard) running until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
}

/// Component identifiers of the examples.
const C0: &[&[u8]] = &[&[0x00]];
const C1: &[&[u8]] = &[&[0x01]];
const C2: &[&[u8]] = &[&[0x02]];

/// The 7 signed envelopes of the manifest spec (example 2 also in its severed form).
const SIGNED: [&str; 7] = [
    "example0.suit",
    "example1.suit",
    "example2.suit",
    "example2-severed.suit",
    "example3.suit",
    "example4.suit",
    "example5.suit",
];

/// The demo's operator key (Ed25519, a fixed seed so every run prints the same).
const OPERATOR_SEED: [u8; 32] = [0x0d; 32];

type Step = fn(&mut Ctx) -> anyhow::Result<String>;

/// Steps of part 1 (the processor on the published vectors).
const PART1: usize = 8;

/// Wraps a [`story`] step as a [`Step`].
macro_rules! story_step {
    ($name:ident) => {{
        fn step(ctx: &mut Ctx) -> anyhow::Result<String> {
            story::$name(ctx.story.as_mut().ok_or_else(|| anyhow!("no story"))?)
        }
        step
    }};
}

/// Wraps a [`fleet`] step as a [`Step`].
macro_rules! fleet_step {
    ($name:ident) => {{
        fn step(ctx: &mut Ctx) -> anyhow::Result<String> {
            fleet::$name(ctx.fleet.as_mut().ok_or_else(|| anyhow!("no fleet"))?)
        }
        step
    }};
}

/// Steps of parts 1 and 2 (part 3, the fleet, follows).
const PART2: usize = 17;

/// The steps, in order: letter, title, function.
const STEPS: [(&str, &str, Step); 22] = [
    ("a", "authenticate", authenticate_signed),
    ("b", "refuse unsigned", refuse_unsigned),
    ("c", "A/B update", ab_update),
    ("d", "reboot", reboot),
    ("e", "replay", replay),
    ("f", "tamper", tamper),
    ("g", "author + operator", two_signers),
    ("h", "load chain", load_chain),
    ("i", "keys", story_step!(keys_step)),
    ("j", "three releases", story_step!(release_step)),
    ("k", "factory", story_step!(factory_step)),
    ("l", "update to v2", story_step!(update_step)),
    ("m", "power cut mid-swap", story_step!(power_cut_step)),
    ("n", "recovery, trial boot", story_step!(recovery_step)),
    ("o", "self-test, confirm", story_step!(confirm_step)),
    ("p", "bad v3 reverted", story_step!(bad_update_step)),
    ("q", "downgrade refused", story_step!(downgrade_step)),
    ("r", "fleet server", fleet_step!(server_step)),
    ("s", "50 devices enrol", fleet_step!(enrol_step)),
    ("t", "phased rollout of v2", fleet_step!(rollout_step)),
    ("u", "power cut, recovered", fleet_step!(recovered_step)),
    ("v", "bad v3 halts itself", fleet_step!(halt_step)),
];

/// What the steps share: the vectors, the published key pair, and the A/B device that
/// steps (c) to (f) act on in turn.
struct Ctx {
    dir: PathBuf,
    public: OwnedVerifyingKey,
    private: SigningKey,
    ab: Option<AbDevice>,
    story: Option<story::Story>,
    fleet: Option<fleet::Fleet>,
}

/// The device of steps (c)–(f) and the envelope installed on it.
struct AbDevice {
    device: MemDevice,
    envelope: Vec<u8>,
}

impl Ctx {
    fn read(&self, name: &str) -> anyhow::Result<Vec<u8>> {
        let p = self.dir.join(SPEC).join(name);
        std::fs::read(&p).with_context(|| p.display().to_string())
    }

    /// Runs `f` with the published key as the only trust anchor, any-one policy.
    fn with_spec_key<R>(&self, f: impl FnOnce(&StaticKeys<'_>) -> R) -> R {
        let anchors = [TrustAnchor {
            key: self.public.as_verifying_key(),
            kid: None,
        }];
        f(&StaticKeys {
            anchors: &anchors,
            rules: &[],
        })
    }

    /// `example{n}` re-signed with the published key, its placeholder digests replaced
    /// by those of `images` (`(placeholder hex, image)`).
    fn resigned(
        &self,
        envelope: &[u8],
        images: &[([u8; 32], &[u8])],
        signers: Vec<Signer>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut map = HashMap::new();
        for (placeholder, image) in images {
            map.insert(placeholder.to_vec(), image.to_vec());
        }
        Rewrite {
            images: map,
            sequence_number: None,
            signers,
        }
        .apply(envelope)
        .map_err(|e| anyhow!(e))
    }

    fn author(&self) -> Signer {
        Signer::Sign(self.private.clone(), Algorithm::Es256)
    }
}

/// The vectors folder: `$SUITCASE_VECTORS`, else `../shared/vectors` from the current
/// directory, else beside the workspace this binary was built from.
fn find_vectors() -> anyhow::Result<PathBuf> {
    let candidates = match std::env::var_os("SUITCASE_VECTORS") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![
            PathBuf::from("../shared/vectors"),
            suitcase_testkit::vectors::dir(),
        ],
    };
    for c in &candidates {
        if c.join(SPEC).join("public_key.pem").is_file() {
            return Ok(std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()));
        }
    }
    let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    bail!(
        "published vectors not found (looked in {}); set SUITCASE_VECTORS to the shared/vectors folder",
        tried.join(", ")
    )
}

fn load_ctx(dir: PathBuf) -> anyhow::Result<Ctx> {
    let read = |name: &str| {
        let p = dir.join(SPEC).join(name);
        std::fs::read_to_string(&p).with_context(|| p.display().to_string())
    };
    let public = verifying_key_from_pem(&read("public_key.pem")?)
        .map_err(|e| anyhow!("public_key.pem: {e}"))?;
    let private = signing_key_from_pem(&read("private_key.pem")?)
        .map_err(|e| anyhow!("private_key.pem: {e}"))?;
    Ok(Ctx {
        dir,
        public,
        private,
        ab: None,
        story: None,
        fleet: None,
    })
}

/// Runs `demo`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut ctx = load_ctx(find_vectors()?)?;
    ctx.story = Some(story::Story::new()?);
    let mut fleet = fleet::Fleet::new()?;
    // Bars only for a person watching: CI and pipes get the plain lines alone.
    let bars = (std::io::stdout().is_terminal() && std::io::stderr().is_terminal())
        .then(indicatif::MultiProgress::new);
    let bar = match &bars {
        Some(m) => {
            let bar = m.add(indicatif::ProgressBar::new(STEPS.len() as u64));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .map_err(|e| anyhow!("progress bar: {e}"))?,
            );
            Some(bar)
        }
        None => None,
    };
    fleet.bars = bars.clone();
    ctx.fleet = Some(fleet);
    let say = |out: &mut dyn Write, line: String| -> anyhow::Result<()> {
        match &bars {
            Some(b) => b.suspend(|| writeln!(out, "{line}"))?,
            None => writeln!(out, "{line}")?,
        }
        Ok(())
    };
    say(
        out,
        format!(
            "suitcase demo, part 1: the SUIT processor on an in-memory device, with the published vectors in {}",
            ctx.dir.display()
        ),
    )?;
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failed_part = [0usize; 3];
    for (i, (letter, title, step)) in STEPS.into_iter().enumerate() {
        if i == PART1 {
            let dir = ctx
                .story
                .as_ref()
                .map(|s| story::dir(s).display().to_string())
                .unwrap_or_default();
            say(
                out,
                format!(
                    "suitcase demo, part 2: a device with the real bootloader on a NOR flash simulator, in {dir}"
                ),
            )?;
        }
        if i == PART2 {
            say(
                out,
                format!(
                    "suitcase demo, part 3: the fleet on loopback, the update server in this process and {} simulated devices",
                    fleet::DEVICES
                ),
            )?;
        }
        if let Some(b) = &bar {
            b.set_message(format!("({letter}) {title}"));
        }
        let line = match step(&mut ctx) {
            Ok(fact) => {
                passed += 1;
                format!("✔ ({letter}) {title}: {fact}")
            }
            Err(e) => {
                failed += 1;
                failed_part[usize::from(i >= PART1) + usize::from(i >= PART2)] += 1;
                format!(
                    "✘ ({letter}) {title}: {}",
                    crate::one_line(&format!("{e:#}"))
                )
            }
        };
        say(out, line)?;
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let device_now = ctx
        .story
        .as_mut()
        .map_or_else(|| Err(anyhow!("no story")), story::Story::summary);
    let cut = ctx.story.as_ref().and_then(|s| s.cut);
    writeln!(out, "summary:")?;
    writeln!(
        out,
        "  part 1, processor: {} of {PART1} steps passed (authenticate, refuse, A/B update, boot, replay, tamper, k-of-n, load chain)",
        PART1 - failed_part[0]
    )?;
    writeln!(
        out,
        "  part 2, device: {} of {} steps passed: v1 → v2 ({}), confirmed; v3 failed its self-test and was reverted; the downgrade to v1 was refused",
        PART2 - PART1 - failed_part[1],
        PART2 - PART1,
        cut.map_or_else(
            || "no power cut".to_string(),
            |(at, total)| format!("power cut at flash operation {at} of {total}, recovered")
        )
    )?;
    match device_now {
        Ok(s) => writeln!(out, "  device now: {s}")?,
        Err(e) => writeln!(
            out,
            "  device now: unknown ({})",
            crate::one_line(&format!("{e:#}"))
        )?,
    }
    let fleet = ctx.fleet.as_ref();
    writeln!(
        out,
        "  part 3, fleet: {} of {} steps passed: v2 rolled out 10 % → 50 % → 100 % ({}); the bad v3 failed its self-test on the first phase's devices, was reverted, and its campaign halted itself",
        STEPS.len() - PART2 - failed_part[2],
        STEPS.len() - PART2,
        fleet.and_then(|f| f.cut.as_ref()).map_or_else(
            || "no power cut".to_string(),
            |(id, at, of)| format!("{id} lost power at flash operation {at} of {of}, recovered")
        )
    )?;
    if let Some(f) = fleet {
        match f.table() {
            Ok(lines) => {
                writeln!(out, "fleet devices:")?;
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
            Err(e) => writeln!(
                out,
                "fleet devices: unknown ({})",
                crate::one_line(&format!("{e:#}"))
            )?,
        }
        writeln!(
            out,
            "dashboard (viewer token in the fragment; served while the demo runs, or until Ctrl-C with `demo --serve`): {}",
            f.dashboard()
        )?;
    }
    writeln!(out, "demo: {passed} steps passed, {failed} failed")?;
    if failed > 0 {
        return Err(Rejected(format!("{failed} of {} steps failed", STEPS.len())).into());
    }
    if args.serve
        && let Some(f) = &ctx.fleet
    {
        out.flush()?;
        eprintln!("demo: the fleet server keeps running for the dashboard; Ctrl-C stops it");
        f.serve_until_ctrl_c()?;
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// (a) Every signed spec example authenticates with the published key.
fn authenticate_signed(ctx: &mut Ctx) -> anyhow::Result<String> {
    let t = Instant::now();
    let mut seqs = Vec::new();
    let mut bad = Vec::new();
    for name in SIGNED {
        let bytes = ctx.read(name)?;
        match ctx.with_spec_key(|k| authenticate(&bytes, k).map(|a| a.manifest().sequence_number)) {
            Ok(n) => seqs.push(n.to_string()),
            Err(e) => bad.push(format!("{name}: {e}")),
        }
    }
    ensure!(
        bad.is_empty(),
        "{}/{} authentic; {}",
        seqs.len(),
        SIGNED.len(),
        bad.join("; ")
    );
    Ok(format!(
        "{}/{} signed spec examples authentic under the published P-256 key (ES256), sequence numbers {} ({})",
        seqs.len(),
        SIGNED.len(),
        seqs.join(", "),
        ms(t.elapsed())
    ))
}

/// (b) Every unsigned spec example is refused before its manifest is even decoded.
fn refuse_unsigned(ctx: &mut Ctx) -> anyhow::Result<String> {
    let t = Instant::now();
    let mut reason = String::new();
    for n in 0..=5 {
        let name = format!("example{n}-unsigned.suit");
        let bytes = ctx.read(&name)?;
        match ctx.with_spec_key(|k| authenticate(&bytes, k).map(|_| ())) {
            Err(e @ Error::Auth(AuthError::NoSignature)) => reason = e.to_string(),
            Err(e) => bail!("{name}: refused for the wrong reason: {e}"),
            Ok(()) => bail!("{name}: accepted without a signature"),
        }
    }
    Ok(format!(
        "6/6 unsigned spec examples refused: \"{reason}\" ({})",
        ms(t.elapsed())
    ))
}

/// Example 3 with `invoke = [invoke, policy 2]` added (it has no invoke sequence).
fn with_invoke_sequence(envelope: &[u8]) -> anyhow::Result<Vec<u8>> {
    let enc = |v: &Value| -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out)?;
        Ok(out)
    };
    let is_key =
        |v: &Value, k: i64| matches!(v, Value::Integer(i) if i128::from(*i) == i128::from(k));
    let Value::Tag(107, inner) = ciborium::from_reader::<Value, _>(envelope)? else {
        bail!("example 3 is not a tagged envelope");
    };
    let Value::Map(mut entries) = *inner else {
        bail!("example 3 is not a map");
    };
    let Some((_, Value::Bytes(manifest))) = entries.iter_mut().find(|(k, _)| is_key(k, 3)) else {
        bail!("example 3 has no manifest");
    };
    let Value::Map(mut m) = ciborium::from_reader::<Value, _>(manifest.as_slice())? else {
        bail!("example 3's manifest is not a map");
    };
    if !m.iter().any(|(k, _)| is_key(k, 9)) {
        m.push((build::int(9), build::seq(&[(23, build::int(2))])));
    }
    *manifest = enc(&Value::Map(m))?;
    enc(&Value::Tag(107, Box::new(Value::Map(entries))))
}

const U0: &str = "http://example.com/file1.bin";
const U1: &str = "http://example.com/file2.bin";

/// (c) A/B update: example 3 installs into the slot that is not running.
fn ab_update(ctx: &mut Ctx) -> anyhow::Result<String> {
    let old = image(0xA0, 30_000);
    let (img0, img1) = (image(0xB0, 34_768), image(0xB1, 76_834));
    let base = with_invoke_sequence(&ctx.read("example3.suit")?)?;
    let envelope = ctx.resigned(&base, &[(P0, &img0), (P1, &img1)], vec![ctx.author()])?;
    let mut device = MemDevice::spec()
        .with_component(C0, Some(0), 80_000)
        .with_component(C0, Some(1), 80_000)
        .serve(U0, img0)
        .serve(U1, img1.clone());
    device.preload(C0, Some(0), &old);
    let t = Instant::now();
    let summary = ctx.with_spec_key(|k| {
        let a = authenticate(&envelope, k)?;
        device.with_platform(|p| a.update(p))
    })?;
    let took = t.elapsed();
    ensure!(
        device.fetched == [U1],
        "fetched {:?}, expected only {U1}",
        device.fetched
    );
    ensure!(
        device.content(C0, Some(1)) == img1.as_slice(),
        "slot 1 does not hold the new image"
    );
    ensure!(
        device.content(C0, Some(0)) == old.as_slice(),
        "the running slot 0 was modified"
    );
    ensure!(
        device.rollback.0 == 3,
        "rollback counter is {}, expected 3",
        device.rollback.0
    );
    let fact = format!(
        "example 3 (re-signed with real image digests, + invoke) wrote {} bytes into slot 1 \
         in {} (fetched {U1}); running slot 0 untouched; rollback counter 0 → {}",
        summary.bytes_written,
        ms(took),
        device.rollback.0
    );
    ctx.ab = Some(AbDevice { device, envelope });
    Ok(fact)
}

/// (d) Reboot: the invoke procedure validates the image in the running slot, then
/// invokes it.
fn reboot(ctx: &mut Ctx) -> anyhow::Result<String> {
    let mut ab = ctx.ab.take().ok_or_else(|| anyhow!("needs step (c)"))?;
    let r = reboot_on(ctx, &mut ab);
    ctx.ab = Some(ab);
    r
}

fn reboot_on(ctx: &Ctx, ab: &mut AbDevice) -> anyhow::Result<String> {
    let dev = &mut ab.device;
    let envelope = &ab.envelope;
    // Without the swap to slot 1, slot 0's old image must not pass validation.
    dev.identity.running_slot = 0;
    let stale = ctx.with_spec_key(|k| {
        let a = authenticate(envelope, k)?;
        dev.with_platform(|p| a.invoke(p))
    });
    ensure!(stale.is_err(), "the old image in slot 0 passed validation");
    ensure!(dev.invoked.is_empty(), "the old image was invoked");
    dev.identity.running_slot = 1;
    let t = Instant::now();
    ctx.with_spec_key(|k| {
        let a = authenticate(envelope, k)?;
        dev.with_platform(|p| a.invoke(p))
    })?;
    let took = t.elapsed();
    ensure!(
        dev.invoked == [(0, None)],
        "invoked {:?}, expected component 0",
        dev.invoked
    );
    let refused = stale.err().map(|e| e.to_string()).unwrap_or_default();
    Ok(format!(
        "booted from slot 1: validate matched the new image, component 0 invoked in {}; \
         slot 0's old image is refused (\"{refused}\")",
        ms(took)
    ))
}

/// (e) The same manifest again is a replay: refused as rollback, nothing fetched.
fn replay(ctx: &mut Ctx) -> anyhow::Result<String> {
    let mut ab = ctx.ab.take().ok_or_else(|| anyhow!("needs step (c)"))?;
    let fetched = ab.device.fetched.len();
    let envelope = &ab.envelope;
    let dev = &mut ab.device;
    let r = ctx.with_spec_key(|k| {
        let a = authenticate(envelope, k)?;
        dev.with_platform(|p| a.update(p))
    });
    let grew = dev.fetched.len() != fetched;
    ctx.ab = Some(ab);
    match r {
        Err(e @ Error::Rollback { .. }) => {
            ensure!(!grew, "refused, but only after fetching");
            Ok(format!(
                "the installed manifest offered again is refused: \"{e}\"; nothing fetched"
            ))
        }
        Err(e) => bail!("refused for the wrong reason: {e}"),
        Ok(_) => bail!("the replayed manifest was installed again"),
    }
}

/// (f) One bit flipped in the signature: refused.
fn tamper(ctx: &mut Ctx) -> anyhow::Result<String> {
    let ab = ctx.ab.as_ref().ok_or_else(|| anyhow!("needs step (c)"))?;
    let mut bytes = ab.envelope.clone();
    let signature = {
        let env = Envelope::decode(&ab.envelope)?;
        let block = env
            .auth
            .blocks()
            .next()
            .ok_or_else(|| anyhow!("no COSE block"))?;
        CoseMessage::decode(block)
            .map_err(|e| anyhow!("COSE: {e}"))?
            .tag
            .to_vec()
    };
    let at = bytes
        .windows(signature.len())
        .position(|w| w == signature.as_slice())
        .ok_or_else(|| anyhow!("signature not found in the envelope"))?;
    let last = at + signature.len() - 1;
    if let Some(b) = bytes.get_mut(last) {
        *b ^= 0x01;
    }
    match ctx.with_spec_key(|k| authenticate(&bytes, k).map(|_| ())) {
        Err(e @ Error::Auth(AuthError::PolicyNotSatisfied)) => Ok(format!(
            "a copy with bit 0 of byte {last} (the signature's last) flipped is refused: \"{e}\""
        )),
        Err(e) => bail!("refused for the wrong reason: {e}"),
        Ok(()) => bail!("the tampered envelope was accepted"),
    }
}

/// (g) Author AND operator: both signatures required; the author's alone is refused.
fn two_signers(ctx: &mut Ctx) -> anyhow::Result<String> {
    let img = image(0xC1, 34_768);
    let example1 = ctx.read("example1.suit")?;
    let operator = SigningKey::Ed25519(suitcase_cose::ed25519_dalek::SigningKey::from_bytes(
        &OPERATOR_SEED,
    ));
    let operator_pub = operator.verifying_key();
    let both = ctx.resigned(
        &example1,
        &[(P0, &img)],
        vec![ctx.author(), Signer::Sign(operator, Algorithm::Ed25519)],
    )?;
    let author_only = ctx.resigned(&example1, &[(P0, &img)], vec![ctx.author()])?;
    let anchors = [
        TrustAnchor {
            key: ctx.public.as_verifying_key(),
            kid: None,
        },
        TrustAnchor {
            key: operator_pub.as_verifying_key(),
            kid: None,
        },
    ];
    let keys = StaticKeys {
        anchors: &anchors,
        rules: &[Rule::required(0), Rule::required(1)],
    };
    let signers = authenticate(&both, &keys)?.signers();
    ensure!(signers == 0b11, "signer set {signers:#b}, expected both");
    match authenticate(&author_only, &keys) {
        Err(e @ Error::Auth(AuthError::PolicyNotSatisfied)) => Ok(format!(
            "example 1 signed by author (P-256, ES256) and operator (Ed25519) is accepted with both \
             keys required; the author-only copy is refused: \"{e}\""
        )),
        Err(e) => bail!("author-only refused for the wrong reason: {e}"),
        Ok(_) => bail!("author-only envelope accepted under an author+operator policy"),
    }
}

/// (h) Example 4: fetch into staging, install by copy, load into RAM by copy, invoke.
fn load_chain(ctx: &mut Ctx) -> anyhow::Result<String> {
    let img = image(0xD4, 34_768);
    let uri = "http://example.com/file.bin";
    // The load step checks the copy against its own digest: give it the same image's.
    let envelope = ctx.resigned(
        &ctx.read("example4.suit")?,
        &[(P0, &img), (P1, &img)],
        vec![ctx.author()],
    )?;
    let mut dev = MemDevice::spec()
        .with_component(C0, None, 40_000)
        .with_component(C1, None, 40_000)
        .with_component(C2, None, 40_000)
        .serve(uri, img.clone());
    let t = Instant::now();
    ctx.with_spec_key(|k| {
        let a = authenticate(&envelope, k)?;
        dev.with_platform(|p| a.update(p))
    })?;
    let update = t.elapsed();
    ensure!(
        dev.content(C2, None) == img.as_slice(),
        "[02] (staging) does not hold the fetched image"
    );
    ensure!(
        dev.content(C0, None) == img.as_slice(),
        "[00] does not hold the installed image"
    );
    ensure!(
        dev.content(C1, None).is_empty(),
        "[01] was written before load"
    );
    let t = Instant::now();
    ctx.with_spec_key(|k| {
        let a = authenticate(&envelope, k)?;
        dev.with_platform(|p| a.invoke(p))
    })?;
    let boot = t.elapsed();
    ensure!(
        dev.content(C1, None) == img.as_slice(),
        "[01] does not hold the loaded image"
    );
    ensure!(
        dev.invoked == [(2, None)],
        "invoked {:?}, expected component 2",
        dev.invoked
    );
    Ok(format!(
        "update fetched {} bytes into [02] and install copied them to [00] ({}); boot validated [00], \
         load copied it to [01] and invoked component 2 = [01] ({})",
        img.len(),
        ms(update),
        ms(boot)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn takes_only_serve() {
        let cli = Cli::try_parse_from(["suitcase", "demo"]).unwrap();
        assert!(matches!(cli.command, Command::Demo(Args { serve: false })));
        let cli = Cli::try_parse_from(["suitcase", "demo", "--serve"]).unwrap();
        assert!(matches!(cli.command, Command::Demo(Args { serve: true })));
        assert!(Cli::try_parse_from(["suitcase", "demo", "--json"]).is_err());
    }

    #[test]
    fn images_are_deterministic() {
        assert_eq!(image(1, 64), image(1, 64));
        assert_ne!(image(1, 64), image(2, 64));
    }

    #[test]
    fn invoke_is_added_once() {
        let dir = suitcase_testkit::vectors::dir().join(SPEC);
        let ex3 = std::fs::read(dir.join("example3.suit")).unwrap();
        let with = with_invoke_sequence(&ex3).unwrap();
        let m = Envelope::decode(&with).unwrap().manifest().unwrap();
        assert!(m.invoke.is_some());
        assert_eq!(with_invoke_sequence(&with).unwrap(), with);
    }
}
