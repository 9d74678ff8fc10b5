//! The parameter table: one set per component. Values borrow from the authenticated
//! envelope, so "storing" a parameter is storing a slice.

use suitcase_suit::{Digest, Parameter, VendorId};

/// One component's parameters. Soft-failure and strict-order are processor-wide and
/// live in the interpreter, as the spec makes them the only global parameters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Params<'a> {
    pub vendor: Option<VendorId<'a>>,
    pub class: Option<&'a [u8]>,
    pub digest: Option<Digest<'a>>,
    pub use_before: Option<u64>,
    pub slot: Option<u64>,
    pub size: Option<u64>,
    pub content: Option<&'a [u8]>,
    pub encryption_info: Option<&'a [u8]>,
    pub uri: Option<&'a str>,
    pub source: Option<u32>,
    pub invoke_args: Option<&'a [u8]>,
    pub device: Option<&'a [u8]>,
    pub fetch_args: Option<&'a [u8]>,
    pub minimum_battery: Option<u64>,
    pub update_priority: Option<i64>,
    pub version: Option<&'a [u8]>,
    pub wait_info: Option<&'a [u8]>,
    pub metadata: Option<&'a [u8]>,
}

/// Sets `slot` to `v`, or only when unset if `only_if_unset` (set-parameters, trust
/// domains: a dependent never overwrites what its dependency fixed).
fn put<T>(slot: &mut Option<T>, v: T, only_if_unset: bool) {
    if !(only_if_unset && slot.is_some()) {
        *slot = Some(v);
    }
}

impl<'a> Params<'a> {
    /// Applies one parameter. Global parameters (strict-order, soft-failure) and custom
    /// ones are the caller's business; this returns `false` for them.
    pub fn apply(&mut self, p: Parameter<'a>, only_if_unset: bool) -> bool {
        let k = only_if_unset;
        match p {
            Parameter::VendorId(v) => put(&mut self.vendor, v, k),
            Parameter::ClassId(v) => put(&mut self.class, v, k),
            Parameter::ImageDigest(v) => put(&mut self.digest, v, k),
            Parameter::UseBefore(v) => put(&mut self.use_before, v, k),
            Parameter::ComponentSlot(v) => put(&mut self.slot, v, k),
            Parameter::ImageSize(v) => put(&mut self.size, v, k),
            Parameter::Content(v) => put(&mut self.content, v, k),
            Parameter::EncryptionInfo(v) => put(&mut self.encryption_info, v, k),
            Parameter::Uri(v) => put(&mut self.uri, v, k),
            Parameter::SourceComponent(v) => put(&mut self.source, v, k),
            Parameter::InvokeArgs(v) => put(&mut self.invoke_args, v, k),
            Parameter::DeviceId(v) => put(&mut self.device, v, k),
            Parameter::FetchArguments(v) => put(&mut self.fetch_args, v, k),
            Parameter::MinimumBattery(v) => put(&mut self.minimum_battery, v, k),
            Parameter::UpdatePriority(v) => put(&mut self.update_priority, v, k),
            Parameter::Version(v) => put(&mut self.version, v, k),
            Parameter::WaitInfo(v) => put(&mut self.wait_info, v, k),
            Parameter::ComponentMetadata(v) => put(&mut self.metadata, v, k),
            _ => return false,
        }
        true
    }

    /// Copies parameter `code` from `src` (copy-params, update management). Returns
    /// `false` for a code that is not per-component.
    pub fn copy_from(&mut self, src: &Params<'a>, code: i64) -> bool {
        match code {
            1 => self.vendor = src.vendor,
            2 => self.class = src.class,
            3 => self.digest = src.digest,
            4 => self.use_before = src.use_before,
            5 => self.slot = src.slot,
            14 => self.size = src.size,
            18 => self.content = src.content,
            19 => self.encryption_info = src.encryption_info,
            21 => self.uri = src.uri,
            22 => self.source = src.source,
            23 => self.invoke_args = src.invoke_args,
            24 => self.device = src.device,
            25 => self.fetch_args = src.fetch_args,
            26 => self.minimum_battery = src.minimum_battery,
            27 => self.update_priority = src.update_priority,
            28 => self.version = src.version,
            29 => self.wait_info = src.wait_info,
            30 => self.metadata = src.metadata,
            _ => return false,
        }
        true
    }
}
