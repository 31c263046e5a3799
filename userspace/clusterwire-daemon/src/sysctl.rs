//! Sysctls of the current network namespace (`/proc/sys/net` follows the calling thread's
//! namespace).
use std::path::PathBuf;

/// A sysctl that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("setting {key}={value} failed")]
pub struct SysctlError {
    /// The key (`net.ipv4.ip_forward`).
    pub key: String,
    /// The value.
    pub value: String,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Writes `value` to the sysctl `key` (dotted form).
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|source| SysctlError {
        key: key.to_owned(),
        value: value.to_owned(),
        source,
    })
}

/// A router's sysctls, as both daemons need them: forwarding on, and reverse-path filtering off
/// (decapsulated and remapped sources arrive on devices the kernel would not route them back
/// through).
pub fn router() -> Result<(), SysctlError> {
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
        ("net.ipv4.conf.default.rp_filter", "0"),
    ] {
        set(key, value)?;
    }
    Ok(())
}

/// Turns reverse-path filtering off on `device`.
pub fn no_rp_filter(device: &str) -> Result<(), SysctlError> {
    set(&format!("net.ipv4.conf.{device}.rp_filter"), "0")
}
