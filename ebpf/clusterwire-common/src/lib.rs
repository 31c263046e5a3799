//! Types shared by clusterwire's eBPF programs and userspace.
//!
//! Every type here is `#[repr(C)]`, `Copy`, has explicit padding fields and a compile-time size
//! assertion, so the eBPF object's BTF, the kernel map layout and the userspace view agree byte
//! for byte. Multi-byte fields that hold packet data are in network byte order and say so in
//! their name (`addr_be`). With the `user` feature, each type implements `aya::Pod`.
#![no_std]

pub mod config;
pub mod csum;
pub mod drop;
pub mod geneve;
pub mod meta;
pub mod nat;
pub mod probe;
pub mod stats;

/// Implements `aya::Pod` for plain-old-data map types when building for userspace.
macro_rules! impl_pod {
    ($($t:ty),+ $(,)?) => {
        $(
            #[cfg(feature = "user")]
            // SAFETY: the type is `#[repr(C)]`, `Copy`, and has no implicit padding (checked by
            // a size assertion next to its definition), so every bit pattern is a valid value.
            unsafe impl aya::Pod for $t {}
        )+
    };
}
pub(crate) use impl_pod;

/// Declares a `#[repr(u32)]` enum whose discriminants are slots of a per-CPU counter array,
/// with `COUNT`, `ALL` (slot order), `from_index` and `kind()` (stable `snake_case` label)
/// generated from one list: a new slot is one line, and the count cannot drift from the list.
macro_rules! counter_slots {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $index:literal => $kind:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $index, )+
        }

        impl $name {
            /// Number of slots in the counter array.
            pub const COUNT: u32 = 0 $( + crate::counter_slots!(@one $variant) )+;

            /// Every value, in slot order.
            pub const ALL: [Self; Self::COUNT as usize] = [$( Self::$variant ),+];

            /// The value for a slot index.
            pub const fn from_index(index: u32) -> Option<Self> {
                if index < Self::COUNT {
                    Some(Self::ALL[index as usize])
                } else {
                    None
                }
            }

            /// Stable `snake_case` name, for metric labels and logs.
            pub const fn kind(self) -> &'static str {
                match self {
                    $( Self::$variant => $kind, )+
                }
            }
        }
    };
    (@one $variant:ident) => {
        1
    };
}
pub(crate) use counter_slots;
