//! The human-written manifest description (TOML) and its resolution into a [`Plan`]:
//! names become UUIDs, image files become digests and sizes, component references become
//! indices, and every rule a device would trip over later is checked now, with the
//! offending field named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Description {
    /// Manifest-wide settings.
    #[serde(default)]
    pub manifest: ManifestDesc,
    /// Manifest-level text (key 23).
    pub text: Option<TextDesc>,
    /// The components, in manifest order (index 0 first).
    #[serde(default, rename = "component")]
    pub components: Vec<ComponentDesc>,
    /// Dependency manifests (trust domains), appended after the components.
    #[serde(default, rename = "dependency")]
    pub dependencies: Vec<DependencyDesc>,
}

/// `[manifest]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestDesc {
    /// Anti-rollback sequence number; default: now, as Unix time.
    pub sequence_number: Option<u64>,
    /// Key 4.
    pub reference_uri: Option<String>,
    /// Vendor ID = UUIDv5(DNS namespace, this domain).
    pub vendor_domain: Option<String>,
    /// Vendor ID given as a UUID.
    pub vendor_id: Option<String>,
    /// Class ID = UUIDv5(vendor ID, this name).
    pub class: Option<String>,
    /// Class ID given as a UUID.
    pub class_id: Option<String>,
    /// Members carried beside the manifest (digest inside): "install", "text",
    /// "payload-fetch", "dependency-resolution".
    #[serde(default)]
    pub sever: Vec<String>,
}

/// `[text]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TextDesc {
    /// Language tag of the text map; default "en-US".
    pub language: Option<String>,
    /// Text key 1.
    pub manifest_description: Option<String>,
    /// Text key 2.
    pub update_description: Option<String>,
    /// Text key 3.
    pub manifest_json_source: Option<String>,
    /// Text key 4.
    pub manifest_yaml_source: Option<String>,
}

/// `[component.text]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentTextDesc {
    /// 1
    pub vendor_name: Option<String>,
    /// 2
    pub model_name: Option<String>,
    /// 3
    pub vendor_domain: Option<String>,
    /// 4
    pub model_info: Option<String>,
    /// 5
    pub description: Option<String>,
    /// 6
    pub version: Option<String>,
}

/// `[[component]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ComponentDesc {
    /// SUIT_Component_Identifier segments: `"0x…"` is hex, anything else UTF-8 text.
    pub id: Vec<String>,
    /// The name other fields refer to; default: the id's segments joined with "/".
    pub name: Option<String>,
    /// The image file; its SHA-256 and length become image-digest and image-size.
    pub image: Option<PathBuf>,
    /// SHA-256 in hex, when there is no file (e.g. the spec's placeholder digests).
    pub digest: Option<String>,
    /// Image size in bytes, with `digest`.
    pub size: Option<u64>,
    /// Where the device fetches the image during install.
    pub uri: Option<String>,
    /// Carry the image in the envelope (key "#NAME"); the URI defaults to "#NAME".
    #[serde(default)]
    pub integrated: bool,
    /// Capacity of the component's slot: a larger image fails the build.
    pub max_size: Option<u64>,
    /// The invoke sequence boots this component.
    #[serde(default)]
    pub invoke: bool,
    /// Check image-match in the validate sequence (default: every image that is not a
    /// staging area or a load target).
    pub validate: Option<bool>,
    /// Download into this component during payload-fetch, then copy it here in install.
    pub fetch_into: Option<String>,
    /// Load: copy from this component in the load sequence, then image-match.
    pub load_from: Option<String>,
    /// This component's own vendor (else: component 0 carries the manifest's identity).
    pub vendor_domain: Option<String>,
    /// This component's own vendor UUID.
    pub vendor_id: Option<String>,
    /// This component's own class name.
    pub class: Option<String>,
    /// This component's own class UUID.
    pub class_id: Option<String>,
    /// A/B: one entry per slot.
    #[serde(default, rename = "slot")]
    pub slots: Vec<SlotDesc>,
    /// Per-component text.
    pub text: Option<ComponentTextDesc>,
    /// Carry the image in the manifest as the content parameter (18), installed with
    /// write (18).
    #[serde(default)]
    pub in_manifest: bool,
    /// Encrypt the image for the device (draft-ietf-suit-firmware-encryption).
    pub encrypt: Option<EncryptDesc>,
}

/// `encrypt = { kek = "…" | recipient = "…", kid = "…", content = "aes-gcm", key-size = 128 }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EncryptDesc {
    /// A pre-shared key-encryption key file (16 or 32 raw bytes): A128KW / A256KW.
    pub kek: Option<PathBuf>,
    /// The device's P-256 public key (PEM): ECDH-ES+A128KW.
    pub recipient: Option<PathBuf>,
    /// The key id the device finds its key by ("0x…" hex, else UTF-8).
    pub kid: Option<String>,
    /// "aes-gcm" (default) or "aes-ctr".
    pub content: Option<crate::encrypt::ContentMode>,
    /// Content key bits, 128 (default) or 256.
    pub key_size: Option<u16>,
    /// Where the ciphertext of a fetched image goes (relative to the description);
    /// default: the image's file name + ".enc" beside the envelope.
    pub out: Option<PathBuf>,
}

/// `[[component.slot]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SlotDesc {
    /// The component-slot value.
    pub slot: u64,
    /// Image file for this slot.
    pub image: Option<PathBuf>,
    /// SHA-256 in hex.
    pub digest: Option<String>,
    /// Size, with `digest`.
    pub size: Option<u64>,
    /// Where this slot's image is fetched from.
    pub uri: Option<String>,
}

/// `[[dependency]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DependencyDesc {
    /// The name (and, by default, the component ID and integrated key "#NAME").
    pub name: String,
    /// The dependency's signed envelope.
    pub envelope: PathBuf,
    /// Fetch it from here; default: carry it in the envelope (integrated dependency).
    pub uri: Option<String>,
    /// The component ID the dependency manifest is stored under; default `[NAME]`.
    pub id: Option<Vec<String>>,
    /// Another name for `id`: the dependency-prefix, which names the dependency's
    /// component.
    pub prefix: Option<Vec<String>>,
}

/// SHA-256 digest and size of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// SHA-256.
    pub digest: [u8; 32],
    /// Bytes.
    pub size: u64,
}

/// One A/B slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// component-slot value.
    pub slot: u64,
    /// Its image.
    pub image: Image,
    /// Its URI.
    pub uri: Option<String>,
}

/// Vendor and optional class, as UUID bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Vendor ID.
    pub vendor: [u8; 16],
    /// Class ID.
    pub class: Option<[u8; 16]>,
}

/// A resolved component.
#[derive(Clone, Debug, Default)]
pub struct Comp {
    /// Identifier segments.
    pub id: Vec<Vec<u8>>,
    /// Name.
    pub name: String,
    /// Identity this component is checked against in the shared sequence.
    pub identity: Option<Identity>,
    /// Image (single slot).
    pub image: Option<Image>,
    /// Install URI.
    pub uri: Option<String>,
    /// A/B slots.
    pub slots: Vec<Slot>,
    /// Index of the staging component the image is fetched into.
    pub fetch_into: Option<usize>,
    /// Index of the component it is loaded from.
    pub load_from: Option<usize>,
    /// Some other component is fetched into this one.
    pub staging: bool,
    /// Boot this one.
    pub invoke: bool,
    /// image-match in validate.
    pub validate: bool,
    /// This component holds a dependency manifest.
    pub dependency: Option<Dependency>,
    /// Per-component text, by text key.
    pub text: Vec<(i64, String)>,
    /// Installed with write from this content parameter (the ciphertext if encrypted).
    pub content: Option<Vec<u8>>,
    /// The encryption-info parameter (SUIT_Encryption_Info) of an encrypted image.
    pub encryption_info: Option<Vec<u8>>,
}

/// The ciphertext of an encrypted image the device fetches, to publish at its URI.
#[derive(Clone, Debug)]
pub struct Ciphertext {
    /// The component.
    pub component: String,
    /// `out` from the description (resolved against it), if given.
    pub out: Option<PathBuf>,
    /// The default file name: the image's + ".enc".
    pub default_name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Marks a component that holds a dependency manifest (its `id` is the
/// dependency-prefix; its image is the dependency's manifest digest and envelope size).
#[derive(Clone, Copy, Debug, Default)]
pub struct Dependency;

/// Which members are severed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sever {
    /// 15
    pub dependency_resolution: bool,
    /// 16
    pub payload_fetch: bool,
    /// 20
    pub install: bool,
    /// 23
    pub text: bool,
}

/// Everything the encoder needs, checked.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Key 2.
    pub sequence_number: u64,
    /// Key 4.
    pub reference_uri: Option<String>,
    /// Components and dependencies, in index order.
    pub components: Vec<Comp>,
    /// Severed members.
    pub sever: Sever,
    /// Text language tag, if any text.
    pub language: String,
    /// Manifest-level text by key.
    pub text: Vec<(i64, String)>,
    /// Integrated payloads and dependencies: envelope key → bytes.
    pub payloads: Vec<(String, Vec<u8>)>,
    /// Ciphertexts of encrypted fetched images, to write beside the envelope.
    pub ciphertexts: Vec<Ciphertext>,
}

/// Parses TOML text, naming the line and column of a syntax or schema error.
pub fn parse(text: &str) -> anyhow::Result<Description> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| {
            let before = text.get(..s.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let col = before
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .chars()
                .count()
                + 1;
            format!("line {line}, column {col}: ")
        });
        anyhow!("{}{}", at.unwrap_or_default(), e.message().trim())
    })
}

/// Component-ID segments: "0x…" is hex, anything else UTF-8.
pub fn segments(what: &str, list: &[String]) -> anyhow::Result<Vec<Vec<u8>>> {
    if list.is_empty() {
        bail!("{what}: a component ID needs at least one segment");
    }
    list.iter()
        .map(|s| match s.strip_prefix("0x") {
            Some(h) => hex::decode(h).map_err(|_| anyhow!("{what}: {s:?} is not hex")),
            None => Ok(s.as_bytes().to_vec()),
        })
        .collect()
}

fn uuid_field(what: &str, s: &str) -> anyhow::Result<[u8; 16]> {
    Uuid::parse_str(s)
        .map(|u| *u.as_bytes())
        .map_err(|_| anyhow!("{what}: {s:?} is not a UUID"))
}

/// Vendor and class from the four ways to give them; `None` if none is given.
fn identity(
    what: &str,
    vendor_domain: Option<&str>,
    vendor_id: Option<&str>,
    class: Option<&str>,
    class_id: Option<&str>,
) -> anyhow::Result<Option<Identity>> {
    let vendor = match (vendor_domain, vendor_id) {
        (Some(_), Some(_)) => bail!("{what}: give vendor-domain or vendor-id, not both"),
        (Some(d), None) => Some(*Uuid::new_v5(&Uuid::NAMESPACE_DNS, d.as_bytes()).as_bytes()),
        (None, Some(u)) => Some(uuid_field(&format!("{what}.vendor-id"), u)?),
        (None, None) => None,
    };
    let class = match (class, class_id, vendor) {
        (Some(_), Some(_), _) => bail!("{what}: give class or class-id, not both"),
        (Some(name), None, Some(v)) => {
            Some(*Uuid::new_v5(&Uuid::from_bytes(v), name.as_bytes()).as_bytes())
        }
        (None, Some(u), Some(_)) => Some(uuid_field(&format!("{what}.class-id"), u)?),
        (Some(_), None, None) | (None, Some(_), None) => {
            bail!("{what}: a class needs a vendor (vendor-domain or vendor-id)")
        }
        (None, None, _) => None,
    };
    Ok(vendor.map(|vendor| Identity { vendor, class }))
}

/// An image from a file (relative to the description) or from digest + size.
fn image(
    what: &str,
    base: &Path,
    file: Option<&Path>,
    digest: Option<&str>,
    size: Option<u64>,
    payloads: Option<&mut Vec<u8>>,
) -> anyhow::Result<Option<Image>> {
    match (file, digest, size) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            bail!("{what}: give image, or digest and size, not both")
        }
        (Some(f), None, None) => {
            let path = base.join(f);
            let bytes = std::fs::read(&path)
                .with_context(|| format!("{what}.image: {}", path.display()))?;
            let img = Image {
                digest: Sha256::digest(&bytes).into(),
                size: bytes.len() as u64,
            };
            if let Some(p) = payloads {
                *p = bytes;
            }
            Ok(Some(img))
        }
        (None, Some(d), Some(size)) => {
            let raw = hex::decode(d).map_err(|_| anyhow!("{what}.digest: not hex"))?;
            let digest: [u8; 32] = raw
                .try_into()
                .map_err(|_| anyhow!("{what}.digest: a SHA-256 digest is 32 bytes"))?;
            Ok(Some(Image { digest, size }))
        }
        (None, Some(_), None) => bail!("{what}: digest needs size"),
        (None, None, Some(_)) => bail!("{what}: size needs digest"),
        (None, None, None) => Ok(None),
    }
}

fn check_size(what: &str, img: &Image, max: Option<u64>) -> anyhow::Result<()> {
    match max {
        Some(max) if img.size > max => bail!(
            "{what}: image larger than its slot: {} bytes, max-size {max}",
            img.size
        ),
        _ => Ok(()),
    }
}

fn text_entries(t: &ComponentTextDesc) -> Vec<(i64, String)> {
    [
        (1, &t.vendor_name),
        (2, &t.model_name),
        (3, &t.vendor_domain),
        (4, &t.model_info),
        (5, &t.description),
        (6, &t.version),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// The most components a device accepts (`suitcase_suit::MAX_COMPONENTS`).
const MAX_COMPONENTS: usize = 8;

/// Resolves a description read from a file in `base`; `now` is the default sequence
/// number.
pub fn resolve(d: &Description, base: &Path, now: u64) -> anyhow::Result<Plan> {
    if d.components.is_empty() {
        bail!("no [[component]]: a manifest needs at least one");
    }
    let total = d.components.len() + d.dependencies.len();
    if total > MAX_COMPONENTS {
        bail!("{total} components and dependencies: a device accepts at most {MAX_COMPONENTS}");
    }
    let m = &d.manifest;
    let manifest_identity = identity(
        "[manifest]",
        m.vendor_domain.as_deref(),
        m.vendor_id.as_deref(),
        m.class.as_deref(),
        m.class_id.as_deref(),
    )?;

    let mut plan = Plan {
        sequence_number: m.sequence_number.unwrap_or(now),
        reference_uri: m.reference_uri.clone(),
        ..Plan::default()
    };
    for s in &m.sever {
        match s.as_str() {
            "install" => plan.sever.install = true,
            "text" => plan.sever.text = true,
            "payload-fetch" => plan.sever.payload_fetch = true,
            "dependency-resolution" => plan.sever.dependency_resolution = true,
            other => bail!(
                "[manifest].sever: {other:?} cannot be severed (install, text, payload-fetch, dependency-resolution)"
            ),
        }
    }

    // Names first, so references can point forward.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in d.components.iter().enumerate() {
        let what = format!("component {i}");
        let id = segments(&format!("{what}.id"), &c.id)?;
        let name = c.name.clone().unwrap_or_else(|| c.id.join("/"));
        if names.insert(name.clone(), i).is_some() {
            bail!("{what}: the name {name:?} is used twice");
        }
        plan.components.push(Comp {
            id,
            name,
            ..Comp::default()
        });
    }
    for (j, dep) in d.dependencies.iter().enumerate() {
        let i = d.components.len() + j;
        let what = format!("dependency {:?}", dep.name);
        // The dependency's component is named by its dependency-prefix (as in the
        // trust-domains draft's examples); `prefix` is accepted as another name for `id`.
        let id = match (&dep.id, &dep.prefix) {
            (Some(a), Some(b)) if a != b => {
                bail!("{what}: id and prefix both name the dependency's component; give one")
            }
            (Some(id), _) | (None, Some(id)) => segments(&format!("{what}.id"), id)?,
            (None, None) => vec![dep.name.as_bytes().to_vec()],
        };
        if names.insert(dep.name.clone(), i).is_some() {
            bail!("{what}: the name is used twice");
        }
        plan.components.push(Comp {
            id,
            name: dep.name.clone(),
            ..Comp::default()
        });
    }
    for (i, a) in plan.components.iter().enumerate() {
        if plan.components[..i].iter().any(|b| b.id == a.id) {
            bail!("component {:?}: its ID is used twice", a.name);
        }
    }
    let lookup = |what: &str, name: &str| -> anyhow::Result<usize> {
        names
            .get(name)
            .copied()
            .ok_or_else(|| anyhow!("{what}: no component named {name:?}"))
    };

    for (i, c) in d.components.iter().enumerate() {
        let what = format!("component {:?}", plan.components[i].name);
        let mut bytes = Vec::new();
        let img = image(
            &what,
            base,
            c.image.as_deref(),
            c.digest.as_deref(),
            c.size,
            (c.integrated || c.in_manifest || c.encrypt.is_some()).then_some(&mut bytes),
        )?;
        if c.in_manifest {
            if c.image.is_none() {
                bail!("{what}: in-manifest needs an image file");
            }
            if c.uri.is_some() || c.integrated {
                bail!(
                    "{what}: in-manifest carries the image in the manifest: no uri or integrated"
                );
            }
            if c.fetch_into.is_some() || c.load_from.is_some() || !c.slots.is_empty() {
                bail!("{what}: in-manifest does not go with fetch-into, load-from or slots");
            }
        }
        let mut encryption_info = None;
        if let Some(e) = &c.encrypt {
            let ew = format!("{what}.encrypt");
            if c.image.is_none() {
                bail!("{ew}: needs an image file to encrypt");
            }
            if c.fetch_into.is_some() || c.load_from.is_some() || !c.slots.is_empty() {
                bail!("{ew}: not supported with fetch-into, load-from or slots");
            }
            if c.uri.is_none() && !c.integrated && !c.in_manifest {
                bail!("{ew}: give the component a uri, integrated = true or in-manifest = true");
            }
            let to = match (&e.kek, &e.recipient) {
                (Some(k), None) => crate::encrypt::RecipientKey::kek_file(&base.join(k)),
                (None, Some(r)) => crate::encrypt::RecipientKey::device_file(&base.join(r)),
                _ => bail!("{ew}: give kek or recipient (one)"),
            }
            .with_context(|| ew.clone())?;
            let kid = e
                .kid
                .as_deref()
                .map(crate::encrypt::parse_kid)
                .transpose()
                .with_context(|| format!("{ew}.kid"))?;
            let alg = e
                .content
                .unwrap_or(crate::encrypt::ContentMode::AesGcm)
                .algorithm(e.key_size.unwrap_or(128))
                .with_context(|| format!("{ew}.key-size"))?;
            let enc = crate::encrypt::encrypt(&bytes, alg, &to, kid.as_deref())
                .with_context(|| ew.clone())?;
            bytes = enc.ciphertext;
            encryption_info = Some(enc.info);
            if !c.integrated && !c.in_manifest {
                let default_name = c
                    .image
                    .as_deref()
                    .and_then(Path::file_name)
                    .map(|n| format!("{}.enc", n.to_string_lossy()))
                    .unwrap_or_else(|| "image.enc".into());
                let out = e.out.as_ref().map(|o| base.join(o));
                if let (Some(o), Some(img)) = (&out, &c.image) {
                    let same = |p: &Path| p.canonicalize().ok();
                    if same(o).is_some() && same(o) == same(&base.join(img)) {
                        bail!("{ew}.out: would overwrite the plaintext image");
                    }
                }
                plan.ciphertexts.push(Ciphertext {
                    component: plan.components[i].name.clone(),
                    out,
                    default_name,
                    bytes: std::mem::take(&mut bytes),
                });
            } else if e.out.is_some() {
                bail!(
                    "{ew}.out: only for a fetched image (integrated and in-manifest images travel in the envelope)"
                );
            }
        }
        if let Some(img) = &img {
            check_size(&what, img, c.max_size)?;
        }
        let own = identity(
            &what,
            c.vendor_domain.as_deref(),
            c.vendor_id.as_deref(),
            c.class.as_deref(),
            c.class_id.as_deref(),
        )?;
        let mut slots = Vec::new();
        for s in &c.slots {
            let sw = format!("{what} slot {}", s.slot);
            if slots.iter().any(|x: &Slot| x.slot == s.slot) {
                bail!("{sw}: slot given twice");
            }
            let simg = image(
                &sw,
                base,
                s.image.as_deref(),
                s.digest.as_deref(),
                s.size,
                None,
            )?
            .ok_or_else(|| anyhow!("{sw}: needs image, or digest and size"))?;
            check_size(&sw, &simg, c.max_size)?;
            slots.push(Slot {
                slot: s.slot,
                image: simg,
                uri: s.uri.clone(),
            });
        }
        if !slots.is_empty() {
            if slots.len() < 2 {
                bail!("{what}: A/B needs at least two [[component.slot]] entries");
            }
            if img.is_some() || c.uri.is_some() || c.integrated {
                bail!("{what}: with slots, give image, digest and uri per slot");
            }
            let with_uri = slots.iter().filter(|s| s.uri.is_some()).count();
            if with_uri != 0 && with_uri != slots.len() {
                bail!("{what}: give every slot a uri, or none");
            }
        }
        let mut uri = c.uri.clone();
        if c.integrated {
            if c.image.is_none() {
                bail!("{what}: integrated needs an image file");
            }
            let key = format!("#{}", plan.components[i].name);
            let uri = uri.get_or_insert_with(|| key.clone());
            if !uri.starts_with('#') {
                bail!("{what}: an integrated payload's uri starts with '#', not {uri:?}");
            }
            plan.payloads
                .push((uri.clone(), std::mem::take(&mut bytes)));
        }
        if uri.is_some() && img.is_none() {
            bail!(
                "{what}: a uri needs the image (or its digest and size) to check after the fetch"
            );
        }
        let fetch_into = c
            .fetch_into
            .as_deref()
            .map(|n| lookup(&format!("{what}.fetch-into"), n))
            .transpose()?;
        if fetch_into.is_some() && uri.is_none() {
            bail!("{what}: fetch-into needs a uri to fetch from");
        }
        let load_from = c
            .load_from
            .as_deref()
            .map(|n| lookup(&format!("{what}.load-from"), n))
            .transpose()?;
        if load_from.is_some() && img.is_none() {
            bail!("{what}: load-from needs the loaded image (or its digest and size)");
        }
        for r in [fetch_into, load_from].into_iter().flatten() {
            if r == i {
                bail!("{what}: a component cannot be its own source");
            }
            if r >= d.components.len() {
                bail!("{what}: a dependency is not a component to copy");
            }
        }
        let identity = own.or(if i == 0 { manifest_identity } else { None });
        let comp = &mut plan.components[i];
        comp.identity = identity;
        comp.image = img;
        comp.uri = uri;
        comp.slots = slots;
        comp.fetch_into = fetch_into;
        comp.load_from = load_from;
        comp.invoke = c.invoke;
        comp.text = c.text.as_ref().map(text_entries).unwrap_or_default();
        comp.validate = c.validate.unwrap_or(true);
        comp.encryption_info = encryption_info;
        if c.in_manifest {
            comp.content = Some(std::mem::take(&mut bytes));
        }
        if let Some(s) = fetch_into {
            plan.components[s].staging = true;
        }
    }
    for (i, c) in d.components.iter().enumerate() {
        let comp = &mut plan.components[i];
        let what = format!("component {:?}", comp.name);
        let has_image = comp.image.is_some() || !comp.slots.is_empty();
        if comp.staging && (has_image || comp.uri.is_some()) {
            bail!("{what}: a staging component (fetch-into target) has no image or uri of its own");
        }
        if !has_image && !comp.staging {
            bail!(
                "{what}: needs an image (file, or digest and size), slots, or a role as a fetch-into target"
            );
        }
        // Staging areas and load targets are checked where they are written.
        comp.validate =
            c.validate.unwrap_or(true) && has_image && !comp.staging && comp.load_from.is_none();
        if c.validate == Some(true) && !comp.validate {
            bail!("{what}: validate = true needs an image that is not staged or loaded");
        }
    }
    if plan.components.iter().filter(|c| c.invoke).count() > 1 {
        bail!("only one component can be invoked");
    }

    for (j, dep) in d.dependencies.iter().enumerate() {
        let i = d.components.len() + j;
        let what = format!("dependency {:?}", dep.name);
        let path = base.join(&dep.envelope);
        let bytes =
            std::fs::read(&path).with_context(|| format!("{what}.envelope: {}", path.display()))?;
        let env = suitcase_suit::Envelope::decode(&bytes).map_err(|e| {
            anyhow!(
                "{what}.envelope: {}: not a SUIT envelope: {e}",
                path.display()
            )
        })?;
        // A dependency is named by its manifest digest (the draft: image-match and
        // dependency-integrity compare the bstr-wrapped manifest's digest), not by the
        // digest of the envelope bytes, which change with every added signature.
        let img = Image {
            digest: Sha256::digest(env.manifest_bytes).into(),
            size: bytes.len() as u64,
        };
        let uri = match &dep.uri {
            Some(u) => u.clone(),
            None => {
                let key = format!("#{}", dep.name);
                plan.payloads.push((key.clone(), bytes));
                key
            }
        };
        let comp = &mut plan.components[i];
        comp.image = Some(img);
        comp.uri = Some(uri);
        comp.dependency = Some(Dependency);
    }

    if let Some(t) = &d.text {
        plan.language = t.language.clone().unwrap_or_else(|| "en-US".into());
        plan.text = [
            (1, &t.manifest_description),
            (2, &t.update_description),
            (3, &t.manifest_json_source),
            (4, &t.manifest_yaml_source),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect();
    } else {
        plan.language = "en-US".into();
    }
    let has_text = !plan.text.is_empty() || plan.components.iter().any(|c| !c.text.is_empty());
    if plan.sever.text && !has_text {
        bail!("[manifest].sever: \"text\" is severed but there is no text");
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_from_names_match_the_spec() {
        let id = identity("t", Some("arm.com"), None, None, None)
            .unwrap()
            .unwrap();
        assert_eq!(
            Uuid::from_bytes(id.vendor).to_string(),
            "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"
        );
        // class = UUIDv5(vendor, name), checked against Python's uuid.uuid5.
        let id = identity("t", Some("arm.com"), None, Some("nRF52"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            Uuid::from_bytes(id.class.unwrap()).to_string(),
            "37260cbb-734f-5300-a66e-1de9ae87bdde"
        );
        assert!(identity("t", None, None, Some("x"), None).is_err());
        assert!(identity("t", Some("a"), Some("b"), None, None).is_err());
        assert!(identity("t", None, Some("not-a-uuid"), None, None).is_err());
    }

    #[test]
    fn segments_are_hex_or_text() {
        let s = segments("id", &["0x00".into(), "app".into()]).unwrap();
        assert_eq!(s, [vec![0u8], b"app".to_vec()]);
        assert!(segments("id", &["0xzz".into()]).is_err());
        assert!(segments("id", &[]).is_err());
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let e = parse("[manifest]\nsequence-number = \"x\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("line 2, column 19: "), "{msg}");
        let e = parse("[manifest]\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = parse("[[component]\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1"), "{e}");
    }

    fn plan(toml: &str) -> anyhow::Result<Plan> {
        resolve(&parse(toml)?, Path::new("."), 7)
    }

    #[test]
    fn rules_are_checked() {
        let ok = "[[component]]\nid = [\"0x00\"]\ndigest = \"00000000000000000000000000000000000000000000000000000000000000aa\"\nsize = 10\n";
        let p = plan(ok).unwrap();
        assert_eq!(p.sequence_number, 7, "default: now");
        assert!(p.components[0].validate);
        for (bad, why) in [
            ("", "no [[component]]"),
            (&format!("{ok}max-size = 9\n"), "image larger than its slot"),
            (
                &format!("{ok}uri = \"#x\"\nintegrated = true\n"),
                "integrated needs an image file",
            ),
            (
                &format!("{ok}fetch-into = \"nope\"\nuri = \"http://x\"\n"),
                "no component named",
            ),
            ("[[component]]\nid = [\"0x00\"]\n", "needs an image"),
            (
                &format!("{ok}[manifest]\nsever = [\"validate\"]\n"),
                "cannot be severed",
            ),
            (&format!("{ok}[manifest]\nsever = [\"text\"]\n"), "no text"),
            (
                &format!(
                    "{ok}[[component]]\nid = [\"0x00\"]\nname = \"b\"\ndigest = \"{}\"\nsize = 1\n",
                    "00".repeat(32)
                ),
                "ID is used twice",
            ),
        ] {
            let e = plan(bad).err().unwrap_or_else(|| panic!("accepted: {bad}"));
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
