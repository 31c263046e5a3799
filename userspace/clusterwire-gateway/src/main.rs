//! clusterwire-gateway (in progress).
#![forbid(unsafe_code)]

fn main() {}
