//! An in-memory device: RAM components, a URI → bytes transport, logs of invocations and
//! report records. It lends the processor a [`Platform`] built from the very trait
//! implementations a microcontroller uses (`MemoryStorage`, `StaticIdentity`, ...).

use std::collections::HashMap;

use ciborium::Value;
use suitcase_processor::platform::{
    Clock, Fetch, FetchError, Invoke, InvokeError, KeyStore, MemoryRollback, NamedKey,
    StaticDecryptionKeys, StaticIdentity, Target,
};
use suitcase_processor::report::{Record, Reporter};
use suitcase_processor::storage::{MemoryComponent, MemoryStorage};
use suitcase_processor::{DependencySupport, Platform};

/// Vendor UUID of every manifest-spec example (fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe).
pub const SPEC_VENDOR: [u8; 16] = [
    0xfa, 0x6b, 0x4a, 0x53, 0xd5, 0xad, 0x5f, 0xdf, 0xbe, 0x9d, 0xe6, 0x63, 0xe4, 0xd4, 0x1f, 0xfe,
];
/// Class UUID of every manifest-spec example (1492af14-2569-5e48-bf42-9b2d51f2ab45).
pub const SPEC_CLASS: [u8; 16] = [
    0x14, 0x92, 0xaf, 0x14, 0x25, 0x69, 0x5e, 0x48, 0xbf, 0x42, 0x9b, 0x2d, 0x51, 0xf2, 0xab, 0x45,
];

/// The encoded SUIT_Component_Identifier for these segments.
pub fn component_id(segments: &[&[u8]]) -> Vec<u8> {
    let v = Value::Array(segments.iter().map(|s| Value::Bytes(s.to_vec())).collect());
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).expect("writing to a Vec cannot fail");
    out
}

/// One RAM component.
#[derive(Clone, Debug)]
pub struct Component {
    /// Encoded identifier.
    pub id: Vec<u8>,
    /// Slot, for A/B.
    pub slot: Option<u64>,
    /// Buffer (its length is the capacity).
    pub data: Vec<u8>,
    /// Bytes held.
    pub len: usize,
}

/// The in-memory device.
#[derive(Clone, Debug)]
pub struct MemDevice {
    /// Components.
    pub components: Vec<Component>,
    /// What the transport serves, by URI.
    pub payloads: HashMap<String, Vec<u8>>,
    /// Largest read the transport returns at once (to exercise chunk boundaries).
    pub transport_chunk: usize,
    /// Identity and running slot.
    pub identity: StaticIdentity,
    /// Anti-rollback counter.
    pub rollback: MemoryRollback,
    /// Clock (POSIX seconds), if the device has one.
    pub now: Option<u64>,
    /// URIs fetched, in order.
    pub fetched: Vec<String>,
    /// Invocations: component index and invoke-args.
    pub invoked: Vec<(usize, Option<Vec<u8>>)>,
    /// Report records.
    pub records: Vec<Record>,
    /// The failing command and why, when the last procedure stopped in one
    /// (`Reporter::failed`).
    pub failure: Option<(Record, suitcase_processor::Error)>,
    /// AES key-wrap KEKs (firmware encryption), with the kid each answers to.
    pub keks: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    /// P-256 private scalars for ECDH-ES (firmware encryption), with their kid.
    pub device_keys: Vec<(Option<Vec<u8>>, Vec<u8>)>,
    /// Update-management answers (all `None` by default: such conditions abort).
    pub policy: suitcase_processor::platform::StaticPolicy,
    /// Bytes of RAM lent for dependency envelopes ([`MemDevice::with_dependencies`]).
    pub dependency_buffer: usize,
}

impl MemDevice {
    /// A device answering to the spec examples' vendor and class, running slot 0.
    pub fn spec() -> Self {
        MemDevice {
            components: Vec::new(),
            payloads: HashMap::new(),
            transport_chunk: 300,
            identity: StaticIdentity {
                vendor: SPEC_VENDOR,
                class: SPEC_CLASS,
                device: None,
                running_slot: 0,
            },
            rollback: MemoryRollback(0),
            now: None,
            fetched: Vec::new(),
            invoked: Vec::new(),
            records: Vec::new(),
            failure: None,
            keks: Vec::new(),
            device_keys: Vec::new(),
            policy: Default::default(),
            dependency_buffer: 1024,
        }
    }

    /// Adds an AES key-wrap KEK (16 or 32 bytes) answering to `kid` (`None`: to any).
    pub fn with_kek(mut self, kid: Option<&[u8]>, kek: &[u8]) -> Self {
        self.keks.push((kid.map(<[u8]>::to_vec), kek.to_vec()));
        self
    }

    /// Adds a P-256 private key (the 32-byte scalar) for ECDH-ES recipients naming `kid`.
    pub fn with_device_key(mut self, kid: Option<&[u8]>, scalar: &[u8]) -> Self {
        self.device_keys
            .push((kid.map(<[u8]>::to_vec), scalar.to_vec()));
        self
    }

    /// Adds a component of `capacity` bytes.
    pub fn with_component(
        mut self,
        segments: &[&[u8]],
        slot: Option<u64>,
        capacity: usize,
    ) -> Self {
        self.components.push(Component {
            id: component_id(segments),
            slot,
            data: vec![0; capacity],
            len: 0,
        });
        self
    }

    /// Serves `bytes` at `uri`.
    pub fn serve(mut self, uri: &str, bytes: Vec<u8>) -> Self {
        self.payloads.insert(uri.to_string(), bytes);
        self
    }

    /// Puts `bytes` into a component, as if installed earlier.
    pub fn preload(&mut self, segments: &[&[u8]], slot: Option<u64>, bytes: &[u8]) {
        let id = component_id(segments);
        let c = self
            .components
            .iter_mut()
            .find(|c| c.id == id && c.slot == slot)
            .expect("preload: no such component");
        c.data[..bytes.len()].copy_from_slice(bytes);
        c.len = bytes.len();
    }

    /// The bytes a component holds.
    pub fn content(&self, segments: &[&[u8]], slot: Option<u64>) -> &[u8] {
        let id = component_id(segments);
        let c = self
            .components
            .iter()
            .find(|c| c.id == id && c.slot == slot)
            .expect("content: no such component");
        &c.data[..c.len]
    }

    /// Runs `f` with a [`Platform`] over this device (no dependency support).
    pub fn with_platform<R>(&mut self, f: impl FnOnce(&mut Platform<'_>) -> R) -> R {
        self.platform_with(None, f)
    }

    /// Runs `f` with a [`Platform`] that processes dependency manifests (trust domains):
    /// they are authenticated with `keys`, and envelopes that are not integrated are read
    /// into a buffer of [`MemDevice::dependency_buffer`] bytes.
    pub fn with_dependencies<R>(
        &mut self,
        keys: &dyn KeyStore,
        f: impl FnOnce(&mut Platform<'_>) -> R,
    ) -> R {
        self.platform_with(Some(keys), f)
    }

    fn platform_with<R>(
        &mut self,
        keys: Option<&dyn KeyStore>,
        f: impl FnOnce(&mut Platform<'_>) -> R,
    ) -> R {
        let mut buffer = vec![0u8; self.dependency_buffer];
        let mut comps: Vec<MemoryComponent<'_>> = self
            .components
            .iter_mut()
            .map(|c| MemoryComponent {
                id: &c.id,
                slot: c.slot,
                data: &mut c.data,
                len: c.len,
            })
            .collect();
        let mut storage = MemoryStorage {
            components: &mut comps,
        };
        let mut fetch = MapFetch {
            payloads: &self.payloads,
            chunk: self.transport_chunk.max(1),
            current: None,
            log: &mut self.fetched,
        };
        let clock = FixedClock(self.now);
        let mut invoker = LogInvoker(&mut self.invoked);
        let mut reporter = LogReporter(&mut self.records, &mut self.failure);
        let (keks, ecdh) = (named(&self.keks), named(&self.device_keys));
        let decryption = StaticDecryptionKeys {
            keks: &keks,
            ecdh: &ecdh,
        };
        let mut platform = Platform {
            storage: &mut storage,
            fetch: &mut fetch,
            identity: &self.identity,
            rollback: &mut self.rollback,
            clock: &clock,
            invoker: &mut invoker,
            reporter: &mut reporter,
            decryption: &decryption,
            policy: &mut self.policy,
            dependencies: keys.map(|keys| DependencySupport {
                keys,
                buffer: &mut buffer,
            }),
        };
        let r = f(&mut platform);
        let lens: Vec<usize> = comps.iter().map(|c| c.len).collect();
        for (c, len) in self.components.iter_mut().zip(lens) {
            c.len = len;
        }
        r
    }
}

fn named(keys: &[(Option<Vec<u8>>, Vec<u8>)]) -> Vec<NamedKey<'_>> {
    keys.iter()
        .map(|(kid, key)| NamedKey {
            kid: kid.as_deref(),
            key,
        })
        .collect()
}

struct MapFetch<'m> {
    payloads: &'m HashMap<String, Vec<u8>>,
    chunk: usize,
    current: Option<(&'m [u8], usize)>,
    log: &'m mut Vec<String>,
}

impl Fetch for MapFetch<'_> {
    fn open(&mut self, uri: &str, _args: Option<&[u8]>) -> Result<(), FetchError> {
        self.log.push(uri.to_string());
        let bytes = self.payloads.get(uri).ok_or(FetchError::NotFound)?;
        self.current = Some((bytes, 0));
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let (bytes, pos) = self.current.as_mut().ok_or(FetchError::Transport)?;
        let n = (bytes.len() - *pos).min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&bytes[*pos..*pos + n]);
        *pos += n;
        Ok(n)
    }
}

struct FixedClock(Option<u64>);
impl Clock for FixedClock {
    fn now(&self) -> Option<u64> {
        self.0
    }
}

struct LogInvoker<'l>(&'l mut Vec<(usize, Option<Vec<u8>>)>);
impl Invoke for LogInvoker<'_> {
    fn invoke(&mut self, target: &Target<'_>, args: Option<&[u8]>) -> Result<(), InvokeError> {
        self.0.push((target.index, args.map(<[u8]>::to_vec)));
        Ok(())
    }
}

struct LogReporter<'l>(
    &'l mut Vec<Record>,
    &'l mut Option<(Record, suitcase_processor::Error)>,
);
impl Reporter for LogReporter<'_> {
    fn record(&mut self, record: &Record) {
        self.0.push(*record);
    }
    fn failed(&mut self, record: &Record, error: &suitcase_processor::Error) {
        *self.1 = Some((*record, *error));
    }
}
