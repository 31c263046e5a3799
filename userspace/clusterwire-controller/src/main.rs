//! `clusterwire-controller`: wiring only (see the library).
fn main() {}
