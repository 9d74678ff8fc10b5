//! `suitcase device`: a simulated device, the real processor and bootloader over the NOR
//! flash simulator, its state in a directory.
//!
//! | file in `--dir` | holds |
//! |---|---|
//! | `device.json` | the configuration: geometry, trial boots, identity, component |
//! | `trust.pub.pem` | the trust anchor (a copy of `init --key`) |
//! | `flash.bin` | the flash simulator's whole state (contents, programmed units, wear) |
//! | `running.json` | what the last boot handed over (absent while the device is off) |
//!
//! The flash holds, in this order, the swap journal (2 sectors), the rollback counter
//! (2), the primary slot (N) and the secondary slot (N + 1): `docs/boot.md` §1.

use std::fs;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args as ClapArgs, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use suitcase_boot::update::{Agent, InstallError, Updater};
use suitcase_boot::{BootError, Config, Handover, Layout, Mode, Region, SectorRun, State};
use suitcase_flash_sim::{Fault, Geometry, Options, SimFlash};
use suitcase_processor::platform::{
    Fetch, FetchError, NoClock, NoDecryptionKeys, StaticIdentity, StaticKeys, TrustAnchor,
};
use suitcase_processor::report::{NoReport, Reporter};
use suitcase_processor::{Error as ProcessorError, authenticate};
use uuid::Uuid;

use crate::Rejected;
use crate::keys::{self, PublicKey};
use crate::output::{self, Mode as FileMode};

pub mod coap;
pub mod fleet;
pub mod sync;

/// The simulated flash: 8-byte write units, sectors in multiples of 1 KiB.
pub type Flash = SimFlash<8, 1024>;

/// The simulated firmware's self-test fails on an image that carries these bytes (how a
/// fleet demonstrates a release that installs and boots but does not work).
pub const SELF_TEST_FAILS: &[u8] = b"suitcase:self-test-fails";

/// The encoded component identifier the slots hold by default, `[h'00']`.
const DEFAULT_COMPONENT: &str = "814100";
/// The bootloader's buffer: the stored envelope and the swap's copy buffer.
const BOOT_BUF: usize = 4096;
const CONFIG: &str = "device.json";
const TRUST: &str = "trust.pub.pem";
const FLASH: &str = "flash.bin";
const RUNNING: &str = "running.json";

/// `suitcase device`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// The device's subcommands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Create a device: an erased flash and its configuration in DIR.
    Init(InitArgs),
    /// Factory install: write ENVELOPE and IMAGE into the primary slot, set the counter.
    Provision(ProvisionArgs),
    /// The update agent: authenticate ENVELOPE, install into the staging slot, request a test boot.
    Apply(ApplyArgs),
    /// Run the bootloader (optionally cutting the power part-way).
    Reboot(RebootArgs),
    /// The running image checks itself; on success it confirms a trial.
    SelfTest(SelfTestArgs),
    /// Confirm the running trial image (make it permanent).
    Confirm(DirArgs),
    /// Print the device's state: journal, slots, counter, wear.
    State(DirArgs),
    /// One round with a fleet server: enrol, check in, download, apply, reboot, self-test,
    /// send the signed report.
    Sync(sync::SyncArgs),
}

/// The device directory and output format.
#[derive(Debug, ClapArgs)]
pub struct DirArgs {
    /// The device's directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `device init`.
#[derive(Debug, ClapArgs)]
pub struct InitArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// The trust anchor: a public key (P-256, Ed25519 or HSS-LMS).
    #[arg(long, value_name = "PUB.pem")]
    pub key: PathBuf,
    /// Sector size × sectors per primary slot (the secondary gets one more).
    #[arg(long, value_name = "SIZExCOUNT", default_value = "4096x16")]
    pub geometry: String,
    /// Boots a test image gets to confirm itself before it is reverted.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub trial_boots: u8,
    /// Bytes before the image in a slot (slot header and envelope).
    #[arg(long, value_name = "BYTES", default_value_t = 2048)]
    pub header_size: u32,
    /// Vendor ID = UUIDv5(DNS namespace, this domain), as `build` derives it.
    #[arg(long, value_name = "DOMAIN", default_value = "example.com")]
    pub vendor_domain: String,
    /// Class ID = UUIDv5(vendor ID, this name).
    #[arg(long, value_name = "NAME", default_value = "thermostat-v2")]
    pub class: String,
    /// The encoded SUIT component identifier the slots hold, hex.
    #[arg(long, value_name = "HEX", default_value = DEFAULT_COMPONENT)]
    pub component: String,
    /// Replace an existing device in DIR.
    #[arg(long)]
    pub force: bool,
}

/// `device provision`.
#[derive(Debug, ClapArgs)]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// The signed envelope of the factory image.
    pub envelope: PathBuf,
    /// The image.
    pub image: PathBuf,
}

/// `device apply`.
#[derive(Debug, ClapArgs)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// The signed envelope of the update.
    pub envelope: PathBuf,
    /// Where payload URIs are looked up first (then the envelope's folder). A URI with a
    /// scheme other than file:// resolves to its last path segment.
    #[arg(long, value_name = "DIR")]
    pub payload_dir: Option<PathBuf>,
}

/// `device reboot`.
#[derive(Debug, ClapArgs)]
pub struct RebootArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// Cut the power during flash operation N of this boot (0 = the first): a torn write
    /// or erase.
    #[arg(long, value_name = "N", conflicts_with = "cut_after_ops")]
    pub cut_at: Option<u64>,
    /// Cut the power after N flash operations of this boot have completed.
    #[arg(long, value_name = "N")]
    pub cut_after_ops: Option<u64>,
}

/// `device self-test`.
#[derive(Debug, ClapArgs)]
pub struct SelfTestArgs {
    #[command(flatten)]
    pub common: DirArgs,
    /// Make the self-test fail: a trial image then stays unconfirmed and is reverted at
    /// the next reboot.
    #[arg(long)]
    pub fail: bool,
}

/// The persistent configuration (`device.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Sector size in bytes (a multiple of 1024).
    pub sector_size: u32,
    /// Sectors in the primary slot (the secondary has one more).
    pub slot_sectors: u32,
    /// Bytes before the image in a slot.
    pub header_size: u32,
    /// Boots a trial image gets.
    pub trial_boots: u8,
    /// Vendor UUID.
    pub vendor_id: String,
    /// Class UUID.
    pub class_id: String,
    /// The component identifier, hex.
    pub component: String,
}

/// What the last boot handed over (`running.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Running {
    /// The manifest's sequence number.
    pub sequence: u64,
    /// A trial boot: the image must confirm itself.
    pub trial: bool,
    /// Image length.
    pub image_len: u32,
    /// SHA-256 of the image, hex.
    pub image_sha256: String,
    /// The self-test's verdict, once it ran.
    pub self_test: Option<bool>,
}

impl DeviceConfig {
    fn regions(&self) -> [u32; 4] {
        let s = self.sector_size;
        [0, 2 * s, 4 * s, (4 + self.slot_sectors) * s]
    }

    fn geometry(&self) -> Geometry {
        Geometry::uniform(self.sector_size, 4 + 2 * self.slot_sectors + 1)
    }

    fn uuid(s: &str) -> anyhow::Result<[u8; 16]> {
        Ok(*Uuid::parse_str(s)
            .with_context(|| format!("{CONFIG}: bad UUID {s:?}"))?
            .as_bytes())
    }

    fn identity(&self) -> anyhow::Result<StaticIdentity> {
        Ok(StaticIdentity {
            vendor: Self::uuid(&self.vendor_id)?,
            class: Self::uuid(&self.class_id)?,
            device: None,
            running_slot: 0,
        })
    }
}

/// The sector runs of the four regions (borrowed by [`Layout`]).
struct Runs {
    two: [SectorRun; 1],
    slot: [SectorRun; 1],
    staging: [SectorRun; 1],
}

impl Runs {
    fn new(c: &DeviceConfig) -> Runs {
        let run = |count| {
            [SectorRun {
                size: c.sector_size,
                count,
            }]
        };
        Runs {
            two: run(2),
            slot: run(c.slot_sectors),
            staging: run(c.slot_sectors + 1),
        }
    }

    fn layout(&self, c: &DeviceConfig) -> Layout<'_> {
        let [state, counter, primary, secondary] = c.regions();
        Layout {
            state: Region {
                offset: state,
                sectors: &self.two,
            },
            counter: Region {
                offset: counter,
                sectors: &self.two,
            },
            primary: Region {
                offset: primary,
                sectors: &self.slot,
            },
            secondary: Region {
                offset: secondary,
                sectors: &self.staging,
            },
            header_size: c.header_size,
            erased: 0xFF,
            trial_boots: c.trial_boots,
        }
    }
}

/// `SIZExCOUNT`, e.g. `4096x16`.
fn parse_geometry(s: &str) -> anyhow::Result<(u32, u32)> {
    let (size, count) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| anyhow!("--geometry {s:?}: want SIZExCOUNT, e.g. 4096x16"))?;
    let size: u32 = size
        .trim()
        .parse()
        .with_context(|| format!("--geometry {s:?}: sector size"))?;
    let count: u32 = count
        .trim()
        .parse()
        .with_context(|| format!("--geometry {s:?}: sector count"))?;
    if size == 0 || !size.is_multiple_of(1024) || size > 1 << 20 {
        bail!("--geometry {s:?}: the sector size must be a multiple of 1024, at most 1 MiB");
    }
    if count == 0 || count > 4096 {
        bail!("--geometry {s:?}: 1 to 4096 sectors per slot");
    }
    Ok((size, count))
}

fn boot_error(e: BootError) -> anyhow::Error {
    match e {
        BootError::Layout(l) => anyhow!("the layout does not work: {l:?}"),
        e => anyhow!("{e:?}"),
    }
}

/// A simulated device opened from its directory.
pub struct Device {
    dir: PathBuf,
    config: DeviceConfig,
    key: PublicKey,
    /// The flash, written through to `flash.bin`.
    pub flash: Flash,
}

/// How a reboot went.
#[derive(Debug, Clone)]
pub struct BootReport {
    /// The journal before.
    pub before: State,
    /// The journal after (or at the cut).
    pub after: State,
    /// What was handed over; `None` after a power cut or when nothing verified.
    pub handover: Option<Handover>,
    /// Whether the power was cut.
    pub power_cut: bool,
    /// Why nothing was handed over (no power cut).
    pub refusal: Option<String>,
    /// Flash operations of this boot.
    pub ops: u64,
}

impl Device {
    /// Creates a device in `dir`.
    ///
    /// # Errors
    /// Bad geometry or layout, unreadable key, I/O.
    pub fn init(dir: &Path, args: &InitArgs) -> anyhow::Result<Device> {
        let (sector_size, slot_sectors) = parse_geometry(&args.geometry)?;
        let key_text = fs::read(&args.key).with_context(|| args.key.display().to_string())?;
        let key = keys::load_public(&args.key)?;
        let component = hex::decode(&args.component)
            .map_err(|e| anyhow!("--component {:?}: {e}", args.component))?;
        suitcase_suit::ComponentId::decode(&component).map_err(|e| {
            anyhow!(
                "--component {:?}: not a component identifier: {e}",
                args.component
            )
        })?;
        let vendor = Uuid::new_v5(&Uuid::NAMESPACE_DNS, args.vendor_domain.as_bytes());
        let class = Uuid::new_v5(&vendor, args.class.as_bytes());
        let config = DeviceConfig {
            sector_size,
            slot_sectors,
            header_size: args.header_size,
            trial_boots: args.trial_boots,
            vendor_id: vendor.to_string(),
            class_id: class.to_string(),
            component: hex::encode(&component),
        };
        let runs = Runs::new(&config);
        runs.layout(&config).plan::<Flash>().map_err(|e| {
            anyhow!(
                "--geometry {}: the layout does not work: {e:?}",
                args.geometry
            )
        })?;
        if dir.join(CONFIG).exists() && !args.force {
            bail!(
                "{}: a device exists here (--force replaces it)",
                dir.display()
            );
        }
        fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let _ = fs::remove_file(dir.join(RUNNING));
        output::write_atomic(&dir.join(TRUST), &key_text, FileMode::Public)?;
        let flash = Flash::create(
            &dir.join(FLASH),
            config.geometry(),
            Options {
                erased: 0xFF,
                log: false,
            },
        )
        .map_err(|e| anyhow!("{}: {e}", dir.join(FLASH).display()))?;
        output::write_atomic(
            &dir.join(CONFIG),
            serde_json::to_string_pretty(&config)?.as_bytes(),
            FileMode::Public,
        )?;
        Ok(Device {
            dir: dir.to_owned(),
            config,
            key,
            flash,
        })
    }

    /// Opens the device in `dir`; the power is on (a cut ended the last process).
    ///
    /// # Errors
    /// No device there, I/O.
    pub fn open(dir: &Path) -> anyhow::Result<Device> {
        let cfg_path = dir.join(CONFIG);
        let text = fs::read_to_string(&cfg_path).with_context(|| {
            format!(
                "{}: no device here (run `suitcase device init`)",
                dir.display()
            )
        })?;
        let config: DeviceConfig =
            serde_json::from_str(&text).with_context(|| cfg_path.display().to_string())?;
        let key = keys::load_public(&dir.join(TRUST))?;
        let mut flash = Flash::open(
            &dir.join(FLASH),
            Options {
                erased: 0xFF,
                log: false,
            },
        )
        .map_err(|e| anyhow!("{}: {e}", dir.join(FLASH).display()))?;
        flash.restore_power();
        flash.clear_faults();
        Ok(Device {
            dir: dir.to_owned(),
            config,
            key,
            flash,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    fn component(&self) -> anyhow::Result<Vec<u8>> {
        hex::decode(&self.config.component).context("device.json: component")
    }

    fn with_keys<R>(&self, f: impl FnOnce(&StaticKeys<'_>) -> R) -> R {
        let anchors = [TrustAnchor {
            key: self.key.as_verifying_key(),
            kid: None,
        }];
        f(&StaticKeys {
            anchors: &anchors,
            rules: &[],
        })
    }

    /// The journal's state.
    ///
    /// # Errors
    /// Flash errors.
    pub fn journal(&mut self) -> anyhow::Result<State> {
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        Updater::new(&mut self.flash, &layout)
            .and_then(|mut u| u.state())
            .map_err(boot_error)
    }

    /// The rollback counter.
    ///
    /// # Errors
    /// Flash errors.
    pub fn counter(&mut self) -> anyhow::Result<u64> {
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        Updater::new(&mut self.flash, &layout)
            .and_then(|mut u| u.floor())
            .map_err(boot_error)
    }

    /// What the last boot handed over.
    pub fn running(&self) -> Option<Running> {
        let text = fs::read_to_string(self.dir.join(RUNNING)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn set_running(&self, running: Option<&Running>) -> anyhow::Result<()> {
        let path = self.dir.join(RUNNING);
        match running {
            Some(r) => output::write_atomic(
                &path,
                serde_json::to_string_pretty(r)?.as_bytes(),
                FileMode::Public,
            ),
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(anyhow!("{}: {e}", path.display()))
                }
                _ => Ok(()),
            },
        }
    }

    /// Factory install: the slot content (header, envelope, image) into the primary slot,
    /// the counter to the manifest's sequence number. Returns the sequence number.
    ///
    /// # Errors
    /// [`Rejected`] when the envelope does not authenticate or does not fit, or the
    /// bootloader would not boot the result; flash errors.
    pub fn provision(&mut self, envelope: &[u8], image: &[u8]) -> anyhow::Result<u64> {
        let seq = self
            .with_keys(|k| authenticate(envelope, k).map(|a| a.manifest().sequence_number))
            .map_err(|e| anyhow::Error::new(Rejected(format!("envelope: {e}"))))?;
        let state = self.journal()?;
        if !matches!(state, State::Idle(_)) {
            bail!("the journal is not idle ({state:?}): provision a fresh device");
        }
        let c = &self.config;
        let header = c.header_size as usize;
        if 32 + envelope.len() > header {
            return Err(Rejected(format!(
                "envelope of {} B does not fit the {header}-byte slot header area",
                envelope.len()
            ))
            .into());
        }
        let slot_bytes = (c.slot_sectors * c.sector_size) as usize;
        if header + image.len() > slot_bytes {
            return Err(Rejected(format!(
                "image of {} B does not fit the {slot_bytes}-byte primary slot",
                image.len()
            ))
            .into());
        }
        let content = slot_content(envelope, image, c.header_size);
        let primary = c.regions()[2];
        let end = (content.len() as u32).div_ceil(c.sector_size) * c.sector_size;
        // Rehearse on a copy: the first boot must accept what the factory writes (the
        // image digest, the counter), or nothing is written at all.
        let mut copy = self.flash.clone();
        self.program(&mut copy, primary, end, &content, seq)?;
        match self.boot_on(&mut copy)? {
            Ok(_) => {}
            Err(BootError::NoBootableImage(r)) => {
                return Err(Rejected(format!(
                    "the bootloader would not boot it: {}",
                    match r {
                        suitcase_boot::Refusal::Processor(e) => refusal(&e),
                        r => format!("{r:?}"),
                    }
                ))
                .into());
            }
            Err(e) => return Err(boot_error(e)),
        }
        let mut flash = std::mem::replace(
            &mut self.flash,
            Flash::new(Geometry::uniform(1024, 1), Options::default()),
        );
        let result = self.program(&mut flash, primary, end, &content, seq);
        self.flash = flash;
        result?;
        self.set_running(None)?;
        Ok(seq)
    }

    /// The factory programmer's writes: erase and write the primary slot, set the counter.
    fn program(
        &self,
        flash: &mut Flash,
        primary: u32,
        end: u32,
        content: &[u8],
        seq: u64,
    ) -> anyhow::Result<()> {
        use embedded_storage::nor_flash::NorFlash as _;
        flash
            .erase(primary, primary + end)
            .map_err(|e| anyhow!("flash: {e}"))?;
        flash
            .write(primary, content)
            .map_err(|e| anyhow!("flash: {e}"))?;
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        Updater::new(flash, &layout)
            .and_then(|mut u| u.counter().advance_to(seq))
            .map_err(boot_error)?;
        Ok(())
    }

    /// The update agent: authenticate, install into the staging slot through the
    /// processor, request a test boot. Returns the sequence number and bytes fetched.
    ///
    /// # Errors
    /// [`Rejected`] when the device refuses (authentication, rollback, a condition, a
    /// swap or trial in progress); I/O errors of the payload files.
    pub fn apply(&mut self, envelope: &[u8], fetch: &mut FileFetch) -> anyhow::Result<u64> {
        self.stage(envelope, fetch, &mut NoReport)?
            .map_err(|e| Rejected(refusal(&e)).into())
    }

    /// [`apply`](Self::apply) with the processor's records going to `reporter`, and the
    /// processor's refusal returned as a value (for a signed report, `device sync`).
    ///
    /// # Errors
    /// [`Rejected`] when the bootloader is busy or the envelope does not fit; I/O errors.
    pub fn stage(
        &mut self,
        envelope: &[u8],
        fetch: &mut FileFetch,
        reporter: &mut dyn Reporter,
    ) -> anyhow::Result<Result<u64, ProcessorError>> {
        let component = self.component()?;
        let identity = self.config.identity()?;
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        let anchors = [TrustAnchor {
            key: self.key.as_verifying_key(),
            kid: None,
        }];
        let keys = StaticKeys {
            anchors: &anchors,
            rules: &[],
        };
        let mut updater = Updater::new(&mut self.flash, &layout).map_err(boot_error)?;
        let result = updater.install(
            envelope,
            &component,
            &mut Agent {
                keys: &keys,
                identity: &identity,
                fetch: &mut *fetch,
                clock: &NoClock,
                reporter,
                decryption: &NoDecryptionKeys,
                policy: &mut suitcase_processor::platform::NoPolicy,
            },
            Mode::Test,
        );
        if let Some(e) = fetch.error.take() {
            return Err(e);
        }
        match result {
            Ok(_) => {}
            Err(InstallError::Processor(e)) => return Ok(Err(e)),
            Err(InstallError::Boot(BootError::Busy(s))) => {
                return Err(Rejected(format!(
                    "busy: {} (confirm, or reboot to finish it, first)",
                    describe(&s)
                ))
                .into());
            }
            Err(InstallError::Boot(BootError::EnvelopeTooLarge)) => {
                return Err(
                    Rejected("the envelope does not fit the slot header area".into()).into(),
                );
            }
            Err(InstallError::Boot(e)) => return Err(boot_error(e)),
            Err(e) => bail!("{e:?}"),
        }
        let seq = self
            .with_keys(|k| authenticate(envelope, k).map(|a| a.manifest().sequence_number))
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Ok(seq))
    }

    /// Runs the bootloader on `flash` (the device's, or a copy).
    fn boot_on(&self, flash: &mut Flash) -> anyhow::Result<Result<Handover, BootError>> {
        let component = self.component()?;
        let identity = self.config.identity()?;
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        let mut buf = vec![0u8; BOOT_BUF];
        Ok(self.with_keys(|keys| {
            let cfg = Config {
                layout,
                keys,
                identity: &identity,
                component: &component,
            };
            suitcase_boot::boot(flash, &cfg, &mut buf)
        }))
    }

    /// Flash operations the next boot will take, uninterrupted (run on a copy of the
    /// flash; the device is untouched): where a cut lands mid-way.
    ///
    /// # Errors
    /// Configuration errors.
    pub fn next_boot_ops(&self) -> anyhow::Result<u64> {
        let mut copy = self.flash.clone();
        let start = copy.ops();
        let _ = self.boot_on(&mut copy)?;
        Ok(copy.ops() - start)
    }

    /// Runs the bootloader; with `cut`, the power goes at that flash operation.
    ///
    /// # Errors
    /// Flash errors other than the cut, I/O.
    pub fn reboot(&mut self, cut: Option<(u64, Fault)>) -> anyhow::Result<BootReport> {
        let before = self.journal()?;
        if let Some((n, fault)) = cut {
            self.flash.schedule_in(n, fault);
        }
        let start = self.flash.ops();
        let mut flash = std::mem::replace(
            &mut self.flash,
            Flash::new(Geometry::uniform(1024, 1), Options::default()),
        );
        let result = self.boot_on(&mut flash);
        self.flash = flash;
        let result = result?;
        let ops = self.flash.ops() - start;
        let power_cut = !self.flash.is_powered();
        self.flash.clear_faults();
        self.flash.restore_power();
        let after = self.journal()?;
        let mut report = BootReport {
            before,
            after,
            handover: None,
            power_cut,
            refusal: None,
            ops,
        };
        match result {
            Ok(h) => {
                let image = self.image(&h)?;
                self.set_running(Some(&Running {
                    sequence: h.sequence,
                    trial: h.trial,
                    image_len: h.len,
                    image_sha256: hex::encode(Sha256::digest(&image)),
                    self_test: None,
                }))?;
                report.handover = Some(h);
            }
            Err(_) if power_cut => self.set_running(None)?,
            Err(BootError::NoBootableImage(r)) => {
                self.set_running(None)?;
                report.refusal = Some(match r {
                    suitcase_boot::Refusal::Processor(e) => refusal(&e),
                    r => format!("{r:?}"),
                });
            }
            Err(e) => return Err(boot_error(e)),
        }
        Ok(report)
    }

    /// The image a boot handed over.
    ///
    /// # Errors
    /// An image beyond the flash.
    pub fn image(&self, h: &Handover) -> anyhow::Result<Vec<u8>> {
        let at = h.image as usize;
        self.flash
            .contents()
            .get(at..at + h.len as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| anyhow!("flash: the image at {at} runs past the end"))
    }

    /// The running image's self-test. Passing confirms a trial image; failing leaves it
    /// unconfirmed. Returns whether a trial was confirmed.
    ///
    /// # Errors
    /// [`Rejected`] when it fails or nothing runs.
    pub fn self_test(&mut self, fail: bool) -> anyhow::Result<bool> {
        let Some(mut running) = self.running() else {
            return Err(Rejected("nothing is running (reboot first)".into()).into());
        };
        running.self_test = Some(!fail);
        self.set_running(Some(&running))?;
        if fail {
            let what = if running.trial {
                "the trial image stays unconfirmed and the next reboot reverts it"
            } else {
                "the image is permanent: nothing to revert to"
            };
            return Err(Rejected(format!(
                "self-test of sequence {} failed: {what}",
                running.sequence
            ))
            .into());
        }
        if running.trial {
            self.confirm()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Confirms the running trial image.
    ///
    /// # Errors
    /// [`Rejected`] during a request, swap or revert; flash errors.
    pub fn confirm(&mut self) -> anyhow::Result<()> {
        let runs = Runs::new(&self.config);
        let layout = runs.layout(&self.config);
        let mut updater = Updater::new(&mut self.flash, &layout).map_err(boot_error)?;
        match updater.confirm() {
            Ok(()) => {}
            Err(BootError::Busy(s)) => {
                return Err(Rejected(format!("nothing to confirm: {}", describe(&s))).into());
            }
            Err(e) => return Err(boot_error(e)),
        }
        if let Some(mut r) = self.running()
            && r.trial
        {
            r.trial = false;
            self.set_running(Some(&r))?;
        }
        Ok(())
    }

    /// The slots, the counter, the journal and the wear.
    ///
    /// # Errors
    /// Flash errors.
    pub fn state(&mut self) -> anyhow::Result<serde_json::Value> {
        let journal = self.journal()?;
        let counter = self.counter()?;
        let c = self.config.clone();
        let [state_at, counter_at, primary, secondary] = c.regions();
        let plan = Runs::new(&c)
            .layout(&c)
            .plan::<Flash>()
            .map_err(|e| anyhow!("{e:?}"))?;
        let slots = [
            ("primary", primary),
            ("staged", secondary + plan.unit),
            ("previous", secondary),
        ]
        .map(|(name, at)| {
            let mut v = self.slot_at(at);
            v["slot"] = json!(name);
            v
        });
        let wear = self.flash.wear();
        let s = c.sector_size;
        let region = |from: u32, count: u32| {
            let first = (from / s) as usize;
            let w = wear.get(first..first + count as usize).unwrap_or_default();
            json!({"max": w.iter().max().copied().unwrap_or(0), "total": w.iter().sum::<u32>()})
        };
        Ok(json!({
            "type": "state",
            "journal": describe(&journal),
            "counter": counter,
            "running": self.running(),
            "slots": slots,
            "erases": {
                "journal": region(state_at, 2),
                "counter": region(counter_at, 2),
                "primary": region(primary, c.slot_sectors),
                "secondary": region(secondary, c.slot_sectors + 1),
            },
            "flash": {"sector_size": s, "slot_sectors": c.slot_sectors},
        }))
    }

    /// What a slot content at `at` holds, decoded but not authenticated.
    fn slot_at(&self, at: u32) -> serde_json::Value {
        let mem = self.flash.contents();
        let at = at as usize;
        let header = &mem[at..at + 32];
        if &header[..4] != b"SCs1" {
            return json!({"image": null});
        }
        let env_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let image_len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        let env = mem.get(at + 32..at + 32 + env_len).unwrap_or_default();
        let seq = suitcase_suit::Envelope::decode(env)
            .and_then(|e| e.manifest().map(|m| m.sequence_number))
            .ok();
        json!({"image": {"sequence": seq, "image_len": image_len}})
    }
}

/// The slot content the bootloader expects (`docs/boot.md` §3), padded to 8-byte words.
pub fn slot_content(envelope: &[u8], image: &[u8], header_size: u32) -> Vec<u8> {
    let mut c = vec![0xFF; header_size as usize];
    c[..4].copy_from_slice(b"SCs1");
    c[4..8].copy_from_slice(&(envelope.len() as u32).to_le_bytes());
    c[8..12].copy_from_slice(&(image.len() as u32).to_le_bytes());
    c[12..32].fill(0);
    c[32..32 + envelope.len()].copy_from_slice(envelope);
    c.extend_from_slice(image);
    c.resize(c.len().div_ceil(8) * 8, 0xFF);
    c
}

/// A processor refusal as one line.
fn refusal(e: &ProcessorError) -> String {
    format!("refused: {e}")
}

/// A journal state in words.
pub fn describe(s: &State) -> String {
    match s {
        State::Idle(i) => format!("idle (last update: {:?})", i.last()).to_lowercase(),
        State::Requested(r) => format!("update requested ({:?})", r.mode()).to_lowercase(),
        State::Swapping(w) => {
            let (d, t) = w.progress();
            format!(
                "swapping in sequence {}: {d} of {t} half-steps done",
                w.sequence()
            )
        }
        State::Trial(t) => format!(
            "trial of sequence {} ({} boot(s) used)",
            t.sequence(),
            t.attempts()
        ),
        State::Reverting(r) => {
            let (d, t) = r.progress();
            format!("reverting: {d} of {t} half-steps done")
        }
    }
}

/// Payloads from files: a URI resolves against `--payload-dir`, then the envelope's
/// folder; `file://` URIs are paths; other schemes resolve to their last path segment.
pub struct FileFetch {
    /// Folders to look in, in order.
    pub dirs: Vec<PathBuf>,
    open: Option<fs::File>,
    /// The first I/O error (reported as an operational error, not a refusal).
    pub error: Option<anyhow::Error>,
    /// Bytes read so far.
    pub bytes: u64,
}

impl FileFetch {
    /// Looks in `dirs` in order.
    pub fn new(dirs: Vec<PathBuf>) -> FileFetch {
        FileFetch {
            dirs,
            open: None,
            error: None,
            bytes: 0,
        }
    }

    fn resolve(&self, uri: &str) -> Option<PathBuf> {
        if let Some(path) = uri.strip_prefix("file://") {
            return Some(PathBuf::from(path));
        }
        let rel = match uri.split_once("://") {
            Some((_, rest)) => rest.rsplit('/').next().unwrap_or(rest),
            None => uri,
        };
        if rel.is_empty() || Path::new(rel).is_absolute() {
            return None;
        }
        self.dirs.iter().map(|d| d.join(rel)).find(|p| p.is_file())
    }
}

impl Fetch for FileFetch {
    fn open(&mut self, uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        match self.resolve(uri).map(|p| (fs::File::open(&p), p)) {
            Some((Ok(f), _)) => {
                self.open = Some(f);
                Ok(())
            }
            Some((Err(e), p)) => {
                self.error
                    .get_or_insert_with(|| anyhow!("payload {uri}: {}: {e}", p.display()));
                Err(FetchError::NotFound)
            }
            None => {
                let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
                self.error.get_or_insert_with(|| {
                    anyhow!("payload {uri}: no such file in {}", dirs.join(" or "))
                });
                Err(FetchError::NotFound)
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let f = self.open.as_mut().ok_or(FetchError::Transport)?;
        let n = f.read(buf).map_err(|_| FetchError::Transport)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

fn read_file(p: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(p).with_context(|| p.display().to_string())
}

fn emit(
    out: &mut dyn Write,
    json: bool,
    value: &serde_json::Value,
    text: &str,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// Runs `suitcase device …`.
pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        DeviceCommand::Init(a) => {
            let d = Device::init(&a.common.dir, a)?;
            let c = d.config();
            emit(
                out,
                a.common.json,
                &json!({"type": "init", "dir": a.common.dir, "config": c}),
                &format!(
                    "device: {}: {} sectors of {} B per slot, trial boots {}, vendor {}, class {}",
                    a.common.dir.display(),
                    c.slot_sectors,
                    c.sector_size,
                    c.trial_boots,
                    c.vendor_id,
                    c.class_id
                ),
            )
        }
        DeviceCommand::Provision(a) => {
            let mut d = Device::open(&a.common.dir)?;
            let envelope = read_file(&a.envelope)?;
            let image = read_file(&a.image)?;
            let seq = d.provision(&envelope, &image)?;
            emit(
                out,
                a.common.json,
                &json!({"type": "provision", "sequence": seq, "image_len": image.len()}),
                &format!(
                    "provisioned: sequence {seq}, {} B image in the primary slot, counter {seq}",
                    image.len()
                ),
            )
        }
        DeviceCommand::Apply(a) => {
            let mut d = Device::open(&a.common.dir)?;
            let envelope = read_file(&a.envelope)?;
            let mut dirs = Vec::new();
            dirs.extend(a.payload_dir.clone());
            dirs.push(
                a.envelope
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_owned),
            );
            let mut fetch = FileFetch::new(dirs);
            let seq = d
                .apply(&envelope, &mut fetch)
                .with_context(|| a.envelope.display().to_string())?;
            emit(
                out,
                a.common.json,
                &json!({"type": "apply", "sequence": seq, "fetched": fetch.bytes, "requested": "test"}),
                &format!(
                    "staged: sequence {seq} ({} B fetched) in the secondary slot; the next reboot swaps it in for a test boot",
                    fetch.bytes
                ),
            )
        }
        DeviceCommand::Reboot(a) => {
            let mut d = Device::open(&a.common.dir)?;
            let cut = match (a.cut_at, a.cut_after_ops) {
                (Some(n), _) => Some((n, Fault::Tear { seed: n })),
                (None, Some(n)) => Some((n, Fault::Cut)),
                (None, None) => None,
            };
            let r = d.reboot(cut)?;
            let value = json!({
                "type": "reboot",
                "before": describe(&r.before),
                "after": describe(&r.after),
                "power_cut": r.power_cut,
                "ops": r.ops,
                "booted": r.handover.map(|h| json!({"sequence": h.sequence, "trial": h.trial, "image_len": h.len})),
                "refusal": r.refusal,
            });
            let text = match (&r.handover, r.power_cut) {
                (_, true) => format!(
                    "reboot: power cut after {} flash operations; journal: {}",
                    r.ops,
                    describe(&r.after)
                ),
                (Some(h), _) => format!(
                    "reboot: {} → {}; booted sequence {} ({}), {} flash operations",
                    describe(&r.before),
                    describe(&r.after),
                    h.sequence,
                    if h.trial { "trial" } else { "permanent" },
                    r.ops
                ),
                (None, false) => String::new(),
            };
            if r.handover.is_none() && !r.power_cut {
                let why = r.refusal.unwrap_or_default();
                if a.common.json {
                    writeln!(out, "{value}")?;
                }
                return Err(Rejected(format!("no bootable image: {why}")).into());
            }
            emit(out, a.common.json, &value, &text)
        }
        DeviceCommand::SelfTest(a) => {
            let mut d = Device::open(&a.common.dir)?;
            let confirmed = d.self_test(a.fail)?;
            let seq = d.running().map(|r| r.sequence).unwrap_or_default();
            emit(
                out,
                a.common.json,
                &json!({"type": "self-test", "ok": true, "sequence": seq, "confirmed": confirmed}),
                &if confirmed {
                    format!("self-test passed: sequence {seq} confirmed (permanent, counter {seq})")
                } else {
                    format!("self-test passed: sequence {seq}")
                },
            )
        }
        DeviceCommand::Confirm(a) => {
            let mut d = Device::open(&a.dir)?;
            d.confirm()?;
            let counter = d.counter()?;
            emit(
                out,
                a.json,
                &json!({"type": "confirm", "counter": counter}),
                &format!("confirmed: counter {counter}"),
            )
        }
        DeviceCommand::Sync(a) => sync::run(a, out),
        DeviceCommand::State(a) => {
            let mut d = Device::open(&a.dir)?;
            let v = d.state()?;
            if a.json {
                writeln!(out, "{v}")?;
            } else {
                write_state(out, &v)?;
            }
            Ok(())
        }
    }
}

fn write_state(out: &mut dyn Write, v: &serde_json::Value) -> anyhow::Result<()> {
    writeln!(out, "journal:  {}", v["journal"].as_str().unwrap_or("?"))?;
    writeln!(out, "counter:  {}", v["counter"])?;
    match v["running"].as_object() {
        Some(r) => writeln!(
            out,
            "running:  sequence {} ({}), {} B, sha-256 {}",
            r["sequence"],
            if r["trial"].as_bool() == Some(true) {
                "trial"
            } else {
                "permanent"
            },
            r["image_len"],
            r["image_sha256"].as_str().unwrap_or("?")
        )?,
        None => writeln!(out, "running:  nothing (reboot)")?,
    }
    for s in v["slots"].as_array().into_iter().flatten() {
        let what = match s["image"].as_object() {
            Some(i) => format!("sequence {}, {} B image", i["sequence"], i["image_len"]),
            None => "empty".into(),
        };
        writeln!(
            out,
            "{:<9} {what}",
            format!("{}:", s["slot"].as_str().unwrap_or("?"))
        )?;
    }
    let e = &v["erases"];
    writeln!(
        out,
        "erases:   most per sector (total): primary {} ({}), secondary {} ({}), journal {} ({}), counter {} ({})",
        e["primary"]["max"],
        e["primary"]["total"],
        e["secondary"]["max"],
        e["secondary"]["total"],
        e["journal"]["max"],
        e["journal"]["total"],
        e["counter"]["max"],
        e["counter"]["total"]
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::Parser;

    #[test]
    fn geometry_parses_and_checks() {
        assert_eq!(parse_geometry("4096x16").unwrap(), (4096, 16));
        assert_eq!(parse_geometry("1024×8").unwrap(), (1024, 8));
        for bad in ["4096", "1000x4", "0x4", "4096x0", "ax4", "4096x99999"] {
            assert!(parse_geometry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slot_content_is_the_documented_header() {
        let c = slot_content(&[7; 10], &[9; 13], 64);
        assert_eq!(&c[..4], b"SCs1");
        assert_eq!(u32::from_le_bytes(c[4..8].try_into().unwrap()), 10);
        assert_eq!(u32::from_le_bytes(c[8..12].try_into().unwrap()), 13);
        assert!(c[12..32].iter().all(|&b| b == 0));
        assert_eq!(&c[32..42], &[7; 10]);
        assert!(c[42..64].iter().all(|&b| b == 0xFF));
        assert_eq!(&c[64..77], &[9; 13]);
        assert_eq!(c.len() % 8, 0);
    }

    #[test]
    fn uris_resolve_against_the_folders_in_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("app.bin"), b"x").unwrap();
        std::fs::write(a.path().join("only-a.bin"), b"y").unwrap();
        let f = FileFetch::new(vec![a.path().to_owned(), b.path().to_owned()]);
        assert_eq!(f.resolve("app.bin"), Some(b.path().join("app.bin")));
        assert_eq!(
            f.resolve("https://updates.example.com/fw/app.bin"),
            Some(b.path().join("app.bin"))
        );
        assert_eq!(f.resolve("only-a.bin"), Some(a.path().join("only-a.bin")));
        assert_eq!(
            f.resolve("file:///etc/hostname"),
            Some("/etc/hostname".into())
        );
        assert_eq!(f.resolve("missing.bin"), None);
        assert_eq!(f.resolve("/abs/app.bin"), None);
    }

    #[test]
    fn subcommands_parse() {
        let cli = Cli::try_parse_from([
            "suitcase", "device", "reboot", "--dir", "d", "--cut-at", "3",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Device(_)));
        assert!(
            Cli::try_parse_from([
                "suitcase",
                "device",
                "reboot",
                "--dir",
                "d",
                "--cut-at",
                "3",
                "--cut-after-ops",
                "4",
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["suitcase", "device", "state"]).is_err());
    }
}
