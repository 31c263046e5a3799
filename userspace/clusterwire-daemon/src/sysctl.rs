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

/// Writes `value` to the sysctl `key` (dotted form), unless it already has that value: in a
/// container `/proc/sys` is read-only, and the sysctls are set beforehand (an init container),
/// so a write is attempted only when something is left to change.
pub fn set(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
    if std::fs::read_to_string(&path).is_ok_and(|current| current.trim() == value) {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_value_succeeds_and_a_missing_key_is_a_typed_error() {
        // The current value again: accepted (without a write, see `set`).
        let current = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read");
        set("net.ipv4.ip_forward", current.trim()).expect("unchanged value: no write needed");
        let err = set("net.ipv4.conf.no-such-device.rp_filter", "0").expect_err("no such key");
        assert_eq!(err.key, "net.ipv4.conf.no-such-device.rp_filter");
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }
}
