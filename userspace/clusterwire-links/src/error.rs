//! Errors of link management.
use std::io;

/// A link operation that should have worked failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Opening the rtnetlink socket failed.
    #[error("opening a rtnetlink socket failed")]
    Socket(#[source] io::Error),
    /// The kernel refused an rtnetlink request.
    #[error("rtnetlink {op} of link {link:?} failed")]
    Netlink {
        /// What was asked (`create`, `get`, `delete`).
        op: &'static str,
        /// The link's name.
        link: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A WireGuard configuration request failed.
    #[error("WireGuard {op} of device {link:?} failed")]
    WireGuard {
        /// What was asked (`create`, `get`, `delete`).
        op: &'static str,
        /// The device's name.
        link: String,
        /// The error from the kernel.
        #[source]
        source: io::Error,
    },
    /// A link name the kernel cannot take (empty, longer than 15 bytes, or with `/`, NUL or
    /// whitespace).
    #[error("invalid link name {0:?}: 1 to 15 bytes, no '/', NUL or whitespace")]
    InvalidName(String),
    /// A link that was just created is not there, or not as configured.
    #[error("link {link:?} read back as {found}, expected {expected}")]
    Mismatch {
        /// The link's name.
        link: String,
        /// What was configured.
        expected: String,
        /// What the kernel reports.
        found: String,
    },
}

impl LinkError {
    /// Whether the kernel refused because it has no driver for the link kind (`EOPNOTSUPP`).
    pub fn is_unsupported(&self) -> bool {
        match self {
            Self::Netlink {
                source: rtnetlink::Error::NetlinkError(e),
                ..
            } => e.raw_code() == -EOPNOTSUPP,
            _ => false,
        }
    }
}

/// `EOPNOTSUPP`: the kernel has no driver for the requested link kind.
pub(crate) const EOPNOTSUPP: i32 = 95;

/// Checks a Linux interface name (IFNAMSIZ is 16 including the NUL).
pub(crate) fn check_name(name: &str) -> Result<(), LinkError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(LinkError::InvalidName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn link_names_follow_the_kernel_rules() {
        for good in ["a", "cw-gnv0", "liqo-tunnel", "fifteen-chars15"] {
            assert!(check_name(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in ["", "sixteen-chars-16", "a/b", "a b", "a\0b"] {
            assert!(check_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
