//! Update management (draft-ietf-suit-update-management): the conditions and the wait
//! directive the platform answers through [`UpdatePolicy`], and set-version.
//!
//! | answer from the platform | condition outcome |
//! |---|---|
//! | parameter unset | fails (soft-able), as every condition with an unset parameter |
//! | `None` (cannot tell) | abort: `Error::CannotAnswer` |
//! | `Some(..)` | holds or fails per the comparison |

use core::cmp::Ordering;

use minicbor::Decoder;
use suitcase_suit::{Condition, Manifest};

use crate::error::Error;
use crate::params::Params;
use crate::platform::{MAX_VERSION_PARTS, Platform, Target, UpdatePolicy, Version};

/// Decodes `[+int]` (set-version; the second member of a version parameter).
fn version_list(d: &mut Decoder<'_>) -> Option<Version> {
    let n = usize::try_from(d.array().ok()??).ok()?;
    if n == 0 || n > MAX_VERSION_PARTS {
        return None;
    }
    let mut parts = [0i64; MAX_VERSION_PARTS];
    for slot in parts.iter_mut().take(n) {
        *slot = d.i64().ok()?;
    }
    Version::new(parts.get(..n)?)
}

/// Decodes the version parameter `[cmp-type, [+int]]`; `None` for anything else
/// (an unknown comparison type included).
pub(crate) fn version_param(bytes: &[u8]) -> Option<(u8, Version)> {
    let mut d = Decoder::new(bytes);
    if d.array().ok()? != Some(2) {
        return None;
    }
    let cmp = d.u8().ok()?;
    if !(1..=5).contains(&cmp) {
        return None;
    }
    let v = version_list(&mut d)?;
    (d.position() == bytes.len()).then_some((cmp, v))
}

/// Whether `installed` satisfies comparison `cmp` (1 greater, 2 greater-equal, 3 equal,
/// 4 lesser-equal, 5 lesser) against `wanted`: "the installed version is greater than
/// the parameter's", and so on.
pub(crate) fn satisfies(installed: &Version, cmp: u8, wanted: &Version) -> bool {
    let o = installed.compare(wanted);
    match cmp {
        1 => o == Ordering::Greater,
        2 => o != Ordering::Less,
        3 => o == Ordering::Equal,
        4 => o != Ordering::Greater,
        _ => o == Ordering::Less,
    }
}

pub(crate) fn condition(
    policy: &dyn UpdatePolicy,
    c: Condition,
    i: u32,
    t: &Target<'_>,
    p: &Params<'_>,
) -> Result<bool, Error> {
    let cannot = |command: i64| Error::CannotAnswer {
        command,
        component: i,
    };
    match c {
        Condition::MinimumBattery => {
            let Some(min) = p.minimum_battery else {
                return Ok(false);
            };
            let level = policy.battery_level().ok_or(cannot(26))?;
            Ok(level >= min)
        }
        Condition::UpdateAuthorized => policy
            .update_authorized(t, p.update_priority)
            .ok_or(cannot(27)),
        _ => {
            let Some(bytes) = p.version else {
                return Ok(false);
            };
            let (cmp, wanted) = version_param(bytes).ok_or(cannot(28))?;
            let installed = policy.installed_version(t).ok_or(cannot(28))?;
            Ok(satisfies(&installed, cmp, &wanted))
        }
    }
}

pub(crate) fn wait(
    policy: &mut dyn UpdatePolicy,
    i: u32,
    t: &Target<'_>,
    p: &Params<'_>,
) -> Result<(), Error> {
    let info = p.wait_info.ok_or(Error::MissingParameter {
        parameter: 29,
        component: i,
    })?;
    match policy.wait(t, info) {
        Some(true) => Ok(()),
        Some(false) => Err(Error::WaitFailed { component: i }),
        None => Err(Error::CannotAnswer {
            command: 29,
            component: i,
        }),
    }
}

/// The manifest's set-version (manifest key 6), decoded before anything runs so a
/// malformed or too long one refuses the update up front (`CannotAnswer { command: 6 }`).
pub(crate) fn set_version(m: &Manifest<'_>) -> Result<Option<Version>, Error> {
    match m.set_version {
        None => Ok(None),
        Some(bytes) => {
            let mut d = Decoder::new(bytes);
            match version_list(&mut d) {
                Some(v) if d.position() == bytes.len() => Ok(Some(v)),
                _ => Err(Error::CannotAnswer {
                    command: 6,
                    component: 0,
                }),
            }
        }
    }
}

/// Hands set-version to the platform after a fully successful update.
pub(crate) fn record_set_version(v: Option<Version>, platform: &mut Platform<'_>) {
    if let Some(v) = v {
        platform.policy.set_version(&v);
    }
}
