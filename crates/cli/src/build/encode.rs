//! A [`Plan`] → the SUIT envelope, following the manifest spec's templates (§7) in the
//! shapes of its Appendix B examples, so that those examples come out byte for byte:
//!
//! | sequence | per component, in index order (`set-component-index i` first when there are several) |
//! |---|---|
//! | shared (4) | override {vendor, class, digest, size}; A/B: try-each over the slots (override slot, condition-component-slot, override digest and size); condition vendor, class |
//! | dependency-resolution (15) | dependencies: override {uri}, fetch, image-match (the digest, set in the shared sequence, is the dependency's manifest digest) |
//! | payload-fetch (16) | images with `fetch-into`: on the staging component, override {digest, uri}, fetch, image-match |
//! | install (20) | dependencies: dependency-integrity, process-dependency; images: override {uri} (A/B: try-each by slot), fetch, image-match; staged: override {source}, copy, image-match; in-manifest: override {content}, write, image-match; encrypted images add encryption-info to the override |
//! | validate (7) | dependencies: dependency-integrity, process-dependency; images: image-match |
//! | load (8) | `load-from`: override {digest, size, source}, copy, image-match |
//! | invoke (9) | the `invoke` component: invoke |
//!
//! Reporting policies are the spec's: 15 for vendor, class and image-match, 5 for
//! component-slot, 2 for fetch, copy and invoke.

use sha2::{Digest as _, Sha256};

use super::description::{Comp, Plan};
use crate::cbor::{DuplicateKey, Item};

// Command codes (suit-codes.md §4).
const COND_VENDOR: i64 = 1;
const COND_CLASS: i64 = 2;
const COND_IMAGE_MATCH: i64 = 3;
const COND_SLOT: i64 = 5;
const COND_DEPENDENCY_INTEGRITY: i64 = 7;
const DIR_PROCESS_DEPENDENCY: i64 = 11;
const DIR_WRITE: i64 = 18;
const DIR_SET_INDEX: i64 = 12;
const DIR_TRY_EACH: i64 = 15;
const DIR_OVERRIDE: i64 = 20;
const DIR_FETCH: i64 = 21;
const DIR_COPY: i64 = 22;
const DIR_INVOKE: i64 = 23;

// Parameter codes (§6).
const P_VENDOR: i64 = 1;
const P_CLASS: i64 = 2;
const P_DIGEST: i64 = 3;
const P_SLOT: i64 = 5;
const P_SIZE: i64 = 14;
const P_CONTENT: i64 = 18;
const P_ENCRYPTION_INFO: i64 = 19;
const P_URI: i64 = 21;
const P_SOURCE: i64 = 22;

// Reporting policies of the spec's examples.
const REPORT_ALL: i64 = 15;
const REPORT_SLOT: i64 = 5;
const REPORT_FAILURE: i64 = 2;

/// SHA-256, COSE algorithm -16.
const SHA256: i64 = -16;

/// The encoded parts of an envelope.
pub struct Built {
    /// The whole envelope (unsigned: the auth wrapper holds the digest only).
    pub envelope: Vec<u8>,
    /// The manifest bstr, header included (what the auth digest covers).
    pub manifest: Vec<u8>,
    /// SHA-256 of `manifest`.
    pub digest: [u8; 32],
}

/// A command sequence under construction.
#[derive(Default)]
struct Seq(Vec<Item>);

impl Seq {
    fn cmd(&mut self, code: i64, arg: Item) {
        self.0.push(Item::int(code));
        self.0.push(arg);
    }
    fn policy(&mut self, code: i64, policy: i64) {
        self.cmd(code, Item::int(policy));
    }
    fn params(&mut self, p: Vec<(i64, Item)>) {
        if !p.is_empty() {
            self.cmd(DIR_OVERRIDE, Item::int_map(p));
        }
    }
    fn select(&mut self, multi: bool, i: usize) {
        if multi {
            self.cmd(DIR_SET_INDEX, Item::int(i as i64));
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn item(self) -> Item {
        Item::Array(self.0)
    }
    fn wrapped(self) -> Item {
        Item::wrap(self.item())
    }
}

fn suit_digest(d: &[u8; 32]) -> Item {
    Item::Array(vec![Item::int(SHA256), Item::Bytes(d.to_vec())])
}

fn digest_param(d: &[u8; 32]) -> Item {
    Item::wrap(suit_digest(d))
}

fn uuid(u: &[u8; 16]) -> Item {
    Item::Bytes(u.to_vec())
}

fn component_id(c: &Comp) -> Item {
    Item::Array(c.id.iter().map(|s| Item::Bytes(s.clone())).collect())
}

/// try-each with one branch per slot: override slot, condition-component-slot, then `then`.
fn slot_try_each(c: &Comp, then: impl Fn(&super::description::Slot) -> Vec<(i64, Item)>) -> Item {
    Item::Array(
        c.slots
            .iter()
            .map(|s| {
                let mut b = Seq::default();
                b.params(vec![(P_SLOT, Item::int(s.slot))]);
                b.policy(COND_SLOT, REPORT_SLOT);
                b.params(then(s));
                b.wrapped()
            })
            .collect(),
    )
}

fn shared(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for (i, c) in plan.components.iter().enumerate() {
        let mut p = Vec::new();
        if let Some(id) = &c.identity {
            p.push((P_VENDOR, uuid(&id.vendor)));
            if let Some(class) = &id.class {
                p.push((P_CLASS, uuid(class)));
            }
        }
        // A load target's digest is set where it is loaded. A dependency's is here, so
        // that every procedure's dependency-integrity (install, and validate at boot)
        // finds it.
        if c.load_from.is_none()
            && let Some(img) = &c.image
        {
            p.push((P_DIGEST, digest_param(&img.digest)));
            p.push((P_SIZE, Item::int(img.size)));
        }
        if p.is_empty() && c.slots.is_empty() {
            continue;
        }
        s.select(multi, i);
        s.params(p);
        if !c.slots.is_empty() {
            s.cmd(
                DIR_TRY_EACH,
                slot_try_each(c, |slot| {
                    vec![
                        (P_DIGEST, digest_param(&slot.image.digest)),
                        (P_SIZE, Item::int(slot.image.size)),
                    ]
                }),
            );
        }
        if let Some(id) = &c.identity {
            s.policy(COND_VENDOR, REPORT_ALL);
            if id.class.is_some() {
                s.policy(COND_CLASS, REPORT_ALL);
            }
        }
    }
    s
}

fn dependency_resolution(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for (i, c) in plan.components.iter().enumerate() {
        if let (Some(_), Some(uri)) = (&c.dependency, &c.uri) {
            s.select(multi, i);
            s.params(vec![(P_URI, Item::Text(uri.clone()))]);
            s.policy(DIR_FETCH, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        }
    }
    s
}

fn payload_fetch(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for c in &plan.components {
        if let (Some(staging), Some(img), Some(uri)) = (c.fetch_into, &c.image, &c.uri) {
            s.select(multi, staging);
            s.params(vec![
                (P_DIGEST, digest_param(&img.digest)),
                (P_URI, Item::Text(uri.clone())),
            ]);
            s.policy(DIR_FETCH, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        }
    }
    s
}

fn install(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    // Dependencies first: what this manifest installs may rely on them.
    for (i, c) in plan.components.iter().enumerate() {
        if c.dependency.is_some() {
            s.select(multi, i);
            s.policy(COND_DEPENDENCY_INTEGRITY, REPORT_ALL);
            s.policy(DIR_PROCESS_DEPENDENCY, REPORT_FAILURE);
        }
    }
    for (i, c) in plan.components.iter().enumerate() {
        if c.dependency.is_some() {
            continue;
        }
        if let Some(staging) = c.fetch_into {
            s.select(multi, i);
            s.params(vec![(P_SOURCE, Item::int(staging as i64))]);
            s.policy(DIR_COPY, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        } else if !c.slots.is_empty() && c.slots.iter().all(|s| s.uri.is_some()) {
            s.select(multi, i);
            s.cmd(
                DIR_TRY_EACH,
                slot_try_each(c, |slot| {
                    vec![(P_URI, Item::Text(slot.uri.clone().unwrap_or_default()))]
                }),
            );
            s.policy(DIR_FETCH, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        } else if let Some(content) = &c.content {
            s.select(multi, i);
            let mut p = vec![(P_CONTENT, Item::Bytes(content.clone()))];
            p.extend(encryption_info(c));
            s.params(p);
            s.policy(DIR_WRITE, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        } else if let Some(uri) = &c.uri {
            s.select(multi, i);
            let mut p = vec![(P_URI, Item::Text(uri.clone()))];
            p.extend(encryption_info(c));
            s.params(p);
            s.policy(DIR_FETCH, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        }
    }
    s
}

/// The encryption-info parameter (`bstr .cbor SUIT_Encryption_Info`) of an encrypted image.
fn encryption_info(c: &Comp) -> Option<(i64, Item)> {
    c.encryption_info
        .as_ref()
        .map(|info| (P_ENCRYPTION_INFO, Item::Bytes(info.clone())))
}

fn validate(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for (i, c) in plan.components.iter().enumerate() {
        if c.dependency.is_some() {
            s.select(multi, i);
            s.policy(COND_DEPENDENCY_INTEGRITY, REPORT_ALL);
            s.policy(DIR_PROCESS_DEPENDENCY, REPORT_FAILURE);
        } else if c.validate {
            s.select(multi, i);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        }
    }
    s
}

fn load(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for (i, c) in plan.components.iter().enumerate() {
        if let (Some(from), Some(img)) = (c.load_from, &c.image) {
            s.select(multi, i);
            s.params(vec![
                (P_DIGEST, digest_param(&img.digest)),
                (P_SIZE, Item::int(img.size)),
                (P_SOURCE, Item::int(from as i64)),
            ]);
            s.policy(DIR_COPY, REPORT_FAILURE);
            s.policy(COND_IMAGE_MATCH, REPORT_ALL);
        }
    }
    s
}

fn invoke(plan: &Plan, multi: bool) -> Seq {
    let mut s = Seq::default();
    for (i, c) in plan.components.iter().enumerate() {
        if c.invoke {
            s.select(multi, i);
            s.policy(DIR_INVOKE, REPORT_FAILURE);
        }
    }
    s
}

fn text(plan: &Plan) -> Option<Item> {
    let mut entries: Vec<(Item, Item)> = plan
        .text
        .iter()
        .map(|(k, v)| (Item::int(*k), Item::Text(v.clone())))
        .collect();
    for c in &plan.components {
        if !c.text.is_empty() {
            entries.push((
                component_id(c),
                Item::int_map(c.text.iter().map(|(k, v)| (*k, Item::Text(v.clone())))),
            ));
        }
    }
    (!entries.is_empty()).then(|| {
        Item::Map(vec![(
            Item::Text(plan.language.clone()),
            Item::Map(entries),
        )])
    })
}

/// Encodes the envelope: tag 107 { 2: auth wrapper (digest only), 3: manifest, severed
/// members, integrated payloads }.
pub fn envelope(plan: &Plan) -> Result<Built, DuplicateKey> {
    let multi = plan.components.len() > 1;

    let mut common = vec![];
    let deps: Vec<(i64, Item)> = plan
        .components
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            // The dependency-prefix names the dependency's component; its index follows
            // the listed components (they come first in the plan).
            c.dependency
                .map(|_| (i as i64, Item::int_map([(1, component_id(c))])))
        })
        .collect();
    if !deps.is_empty() {
        common.push((1, Item::int_map(deps)));
    }
    common.push((
        2,
        Item::Array(
            plan.components
                .iter()
                .filter(|c| c.dependency.is_none())
                .map(component_id)
                .collect(),
        ),
    ));
    let shared = shared(plan, multi);
    if !shared.is_empty() {
        common.push((4, shared.wrapped()));
    }

    let mut manifest = vec![
        (1, Item::int(1)),
        (2, Item::int(plan.sequence_number)),
        (3, Item::wrap(Item::int_map(common))),
    ];
    if let Some(uri) = &plan.reference_uri {
        manifest.push((4, Item::Text(uri.clone())));
    }
    let mut severed: Vec<(i64, Item)> = Vec::new();
    let mut member = |key: i64, value: Item, sever: bool, manifest: &mut Vec<(i64, Item)>| {
        let value = Item::wrap(value);
        if sever {
            let bytes = value.encode()?;
            let d: [u8; 32] = Sha256::digest(&bytes).into();
            manifest.push((key, suit_digest(&d)));
            severed.push((key, Item::Raw(bytes)));
        } else {
            manifest.push((key, value));
        }
        Ok::<(), DuplicateKey>(())
    };
    for (key, seq) in [
        (7, validate(plan, multi)),
        (8, load(plan, multi)),
        (9, invoke(plan, multi)),
    ] {
        if !seq.is_empty() {
            manifest.push((key, seq.wrapped()));
        }
    }
    for (key, seq, sever) in [
        (
            15,
            dependency_resolution(plan, multi),
            plan.sever.dependency_resolution,
        ),
        (16, payload_fetch(plan, multi), plan.sever.payload_fetch),
        (20, install(plan, multi), plan.sever.install),
    ] {
        if !seq.is_empty() {
            member(key, seq.item(), sever, &mut manifest)?;
        }
    }
    if let Some(t) = text(plan) {
        member(23, t, plan.sever.text, &mut manifest)?;
    }

    let manifest_bstr = Item::wrap(Item::int_map(manifest)).encode()?;
    let digest: [u8; 32] = Sha256::digest(&manifest_bstr).into();
    let auth = Item::wrap(Item::Array(vec![Item::wrap(suit_digest(&digest))]));

    // The auth wrapper must precede the manifest whatever the map order (key 2 < 3
    // anyway); severed members (14…23) and text keys sort after both.
    let mut env = vec![
        (Item::int(2), auth),
        (Item::int(3), Item::Raw(manifest_bstr.clone())),
    ];
    for (k, v) in severed {
        env.push((Item::int(k), v));
    }
    for (k, bytes) in &plan.payloads {
        env.push((Item::Text(k.clone()), Item::Bytes(bytes.clone())));
    }
    let envelope = Item::Tag(107, Box::new(Item::Map(env))).encode()?;
    Ok(Built {
        envelope,
        manifest: manifest_bstr,
        digest,
    })
}
