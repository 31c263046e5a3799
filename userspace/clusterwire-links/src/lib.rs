//! Kernel link management and capability probes (Geneve, WireGuard).
#![forbid(unsafe_code)]
