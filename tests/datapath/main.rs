//! datapath tier.
