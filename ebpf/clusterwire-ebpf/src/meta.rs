//! `CW_META`: the instance identity the loader writes and checks on adoption. No program reads
//! it; it is declared here so that it is created (and pinned) with the object's other maps.
use aya_ebpf::{btf_maps::Array, macros::btf_map};
use clusterwire_common::meta::InstanceMeta;

#[btf_map]
static CW_META: Array<InstanceMeta, 1> = Array::new();
