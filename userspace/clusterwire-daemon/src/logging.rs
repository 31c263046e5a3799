//! Logging: human-readable lines on stderr, filtered by `RUST_LOG`-style directives given on the
//! command line (libraries never read the environment).

/// Directive added unless the filter names the target itself: the embedded WireGuard (gotatun)
/// logs `Failed to write API response: Broken pipe` at ERROR on every configuration, because
/// wireguard-control closes the UAPI socket after reading the `errno=` line. The outcome of a
/// configuration reaches the daemon as a `Result` (errno other than 0 is an error), so nothing
/// is lost by silencing that target.
const QUIET: &str = "gotatun::device::uapi=off";

/// The effective filter for `filter`.
fn directives(filter: &str) -> String {
    if filter.contains("gotatun::device::uapi") {
        filter.to_owned()
    } else {
        format!("{filter},{QUIET}")
    }
}

/// Installs the global subscriber; `filter` is e.g. `info` or `clusterwire=debug`.
pub fn init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(directives(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives("info")));
    let _already = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn the_uapi_noise_is_silenced_unless_the_filter_names_it() {
        assert_eq!(directives("info"), "info,gotatun::device::uapi=off");
        assert_eq!(
            directives("debug,gotatun::device::uapi=trace"),
            "debug,gotatun::device::uapi=trace"
        );
    }
}
