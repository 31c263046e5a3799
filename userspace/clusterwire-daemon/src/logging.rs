//! Logging: human-readable lines on stderr, filtered by `RUST_LOG`-style directives given on the
//! command line (libraries never read the environment).

/// Installs the global subscriber; `filter` is e.g. `info` or `clusterwire=debug`.
pub fn init(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _already = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
