//! WireGuard keys: the gateway's private key, loaded from its Secret mount, and peer public keys.
//!
//! The private key never leaves this module in printable form: its `Debug` is redacted, it has
//! no `Display`, and its bytes are zeroed when it is dropped. It is handed to wireguard-control
//! only to configure a device.
use std::{
    fmt,
    fs::File,
    io::{self, Read as _},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use wireguard_control::Key;
use zeroize::Zeroize as _;

/// Length of a WireGuard (Curve25519) key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a key in base64 text (with one `=` of padding).
const BASE64_LEN: usize = 44;
/// Larger files are refused before reading them: no key file is this big.
const MAX_FILE_LEN: u64 = 128;
/// Permission bits that must be clear: any access by group or others.
const GROUP_OTHER_BITS: u32 = 0o077;

/// A key file or key text that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be opened, inspected or read.
    #[error("reading the private key file {path:?} failed")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The key file can be accessed by group or others.
    #[error(
        "the private key file {path:?} has mode {mode:04o}: it must be readable by its owner only \
         (0400 or 0600; on a Kubernetes Secret volume set defaultMode: 0400)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a regular file.
    #[error("the private key file {path:?} is not a regular file")]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The key file holds neither 32 raw bytes nor a base64 key (its content is not shown).
    #[error(
        "the private key file {path:?} holds {len} bytes: expected 32 raw bytes or 44 \
         characters of base64"
    )]
    Format {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// Key text is not the base64 of 32 bytes.
    #[error("a WireGuard key must be the base64 of 32 bytes (44 characters), got {len} characters")]
    Base64 {
        /// The text's length in characters.
        len: usize,
    },
}

/// The private key of a WireGuard device.
///
/// `Debug` prints `PrivateKey(<redacted>)` and the bytes are zeroed on drop; only
/// [`PrivateKey::public_key`] is meant to be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// Generates a new random private key (tests and key-generating tools).
    pub fn generate() -> Self {
        let mut key = Key::generate_private();
        let private = Self(key.0);
        key.0.zeroize();
        private
    }

    /// Loads the key from a file: 32 raw bytes (as the reference stores it in the gateway's
    /// Secret) or base64 text (as `wg genkey` writes it, surrounding whitespace allowed).
    ///
    /// The file must be accessible by its owner only: group or other permission bits are refused
    /// before anything is read. Symbolic links (Kubernetes Secret volumes use them) are followed
    /// and the target is checked. The file is opened once, so the checked file is the read file.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let read = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read)?;
        let metadata = file.metadata().map_err(read)?;
        if !metadata.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & GROUP_OTHER_BITS != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let format = || KeyError::Format {
            path: path.to_owned(),
            len: metadata.len(),
        };
        if metadata.len() > MAX_FILE_LEN {
            return Err(format());
        }
        let mut content = Vec::with_capacity(usize::try_from(MAX_FILE_LEN).unwrap_or(128));
        let result = file
            .take(MAX_FILE_LEN + 1)
            .read_to_end(&mut content)
            .map_err(read)
            .and_then(|_| Self::from_file_content(&content).ok_or_else(format));
        content.zeroize();
        result
    }

    /// Parses the content of a key file: exactly 32 bytes are the raw key; anything else must be
    /// base64 text of 32 bytes, with optional surrounding whitespace.
    fn from_file_content(content: &[u8]) -> Option<Self> {
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(content) {
            return Some(Self(raw));
        }
        let text = std::str::from_utf8(content).ok()?.trim();
        decode_base64(text).ok().map(Self)
    }

    /// Parses base64 key text (a private key given inline, e.g. in tests).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_base64(text.trim()).map(Self)
    }

    /// The public key that goes with this private key.
    pub fn public_key(&self) -> PublicKey {
        let mut key = self.to_control_key();
        let public = PublicKey(key.get_public().0);
        key.0.zeroize();
        public
    }

    /// The key as wireguard-control takes it. The caller should zero it when done.
    pub(crate) fn to_control_key(&self) -> Key {
        Key(self.0)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A peer's public key (not secret: `Debug` and `Display` print its base64).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Parses the base64 form (`spec.publicKey` of a `PublicKey` resource, `wg pubkey` output).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        decode_base64(text.trim()).map(Self)
    }

    /// The key from its 32 raw bytes (the reference's Secret key `publicKey`).
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The base64 form, as `wg show` prints it.
    pub fn to_base64(&self) -> String {
        Key(self.0).to_base64()
    }

    pub(crate) fn to_control_key(self) -> Key {
        Key(self.0)
    }

    pub(crate) fn from_control_key(key: &Key) -> Self {
        Self(key.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_base64(text)
    }
}

/// Decodes the base64 of a 32-byte key; the error names only the text's length, never the text.
fn decode_base64(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let error = || KeyError::Base64 {
        len: text.chars().count(),
    };
    if text.len() != BASE64_LEN {
        return Err(error());
    }
    let mut key = Key::from_base64(text).map_err(|_| error())?;
    let bytes = key.0;
    key.0.zeroize();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        os::unix::fs::{PermissionsExt as _, symlink},
        path::PathBuf,
    };

    use super::{KeyError, PrivateKey, PublicKey};

    /// A private temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "cw-links-key-{}-{tag}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create the temporary directory");
            Self(dir)
        }

        fn file(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, content).expect("write the key file");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// RFC 7748 section 6.1: Alice's private key and its public key.
    const ALICE_PRIVATE: [u8; 32] = [
        0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66,
        0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9,
        0x2c, 0x2a,
    ];
    const ALICE_PUBLIC: [u8; 32] = [
        0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7,
        0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b,
        0x4e, 0x6a,
    ];
    const ALICE_PRIVATE_B64: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";

    #[test]
    fn raw_and_base64_files_give_the_same_key() {
        let dir = TempDir::new("formats");
        let raw = dir.file("raw", &ALICE_PRIVATE, 0o400);
        let text = dir.file("b64", format!("{ALICE_PRIVATE_B64}\n").as_bytes(), 0o600);
        let spaced = dir.file(
            "spaced",
            format!("  {ALICE_PRIVATE_B64} \r\n").as_bytes(),
            0o600,
        );
        let expected = PrivateKey(ALICE_PRIVATE);
        for path in [raw, text, spaced] {
            let key = PrivateKey::from_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert!(key == expected, "{path:?} gave another key");
            assert_eq!(key.public_key(), PublicKey::from_bytes(ALICE_PUBLIC));
        }
    }

    #[test]
    fn raw_key_bytes_that_look_like_whitespace_are_kept() {
        // 32 bytes are always the raw key, even when they start or end with whitespace bytes.
        let mut bytes = ALICE_PRIVATE;
        bytes[0] = b'\n';
        bytes[31] = b' ';
        let dir = TempDir::new("raw-ws");
        let path = dir.file("raw", &bytes, 0o400);
        let key = PrivateKey::from_file(&path).expect("load");
        assert!(key == PrivateKey(bytes));
    }

    #[test]
    fn group_or_other_access_is_refused_before_reading() {
        let dir = TempDir::new("perms");
        for mode in [
            0o440,
            0o404,
            0o640,
            0o644,
            0o604,
            0o660,
            0o700 | 0o001,
            0o410,
        ] {
            let path = dir.file(&format!("key-{mode:o}"), &ALICE_PRIVATE, mode);
            match PrivateKey::from_file(&path) {
                Err(KeyError::Permissions { mode: found, .. }) => assert_eq!(found, mode),
                other => panic!("mode {mode:04o}: expected a permissions error, got {other:?}"),
            }
        }
        for mode in [0o400, 0o600, 0o700] {
            let path = dir.file(&format!("ok-{mode:o}"), &ALICE_PRIVATE, mode);
            PrivateKey::from_file(&path).unwrap_or_else(|e| panic!("mode {mode:04o}: {e}"));
        }
    }

    #[test]
    fn the_permission_error_says_what_to_do() {
        let dir = TempDir::new("msg");
        let path = dir.file("key", &ALICE_PRIVATE, 0o644);
        let message = PrivateKey::from_file(&path).expect_err("0644").to_string();
        assert!(message.contains("0644"), "{message}");
        assert!(message.contains("owner only"), "{message}");
        assert!(message.contains("defaultMode"), "{message}");
    }

    #[test]
    fn a_symlinked_secret_mount_is_checked_at_its_target() {
        // Kubernetes Secret volumes: privateKey -> ..data/privateKey.
        let dir = TempDir::new("symlink");
        let target = dir.file("target", &ALICE_PRIVATE, 0o400);
        let link = dir.0.join("privateKey");
        symlink(&target, &link).expect("symlink");
        assert!(PrivateKey::from_file(&link).expect("load") == PrivateKey(ALICE_PRIVATE));
        fs::set_permissions(&target, fs::Permissions::from_mode(0o444)).expect("chmod");
        assert!(matches!(
            PrivateKey::from_file(&link),
            Err(KeyError::Permissions { mode: 0o444, .. })
        ));
    }

    #[test]
    fn bad_contents_are_errors_that_do_not_show_them() {
        let dir = TempDir::new("bad");
        let cases: [(&str, &[u8]); 7] = [
            ("empty", b""),
            ("short", &ALICE_PRIVATE[..31]),
            ("long", &[7u8; 33]),
            (
                "b64-short",
                b"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC=\n",
            ),
            ("not-b64", b"!!!tCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"),
            ("not-utf8", &[0xff; 45]),
            ("huge", &[b'A'; 4096]),
        ];
        for (name, content) in cases {
            let path = dir.file(name, content, 0o400);
            let error = PrivateKey::from_file(&path).expect_err(name);
            assert!(
                matches!(error, KeyError::Format { .. }),
                "{name}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                !message.contains("dwdt"),
                "{name}: the message shows key text"
            );
        }
    }

    #[test]
    fn missing_files_and_directories_are_errors() {
        let dir = TempDir::new("missing");
        let missing = dir.0.join("nope");
        assert!(matches!(
            PrivateKey::from_file(&missing),
            Err(KeyError::Read { .. })
        ));
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o700)).expect("chmod");
        assert!(matches!(
            PrivateKey::from_file(&dir.0),
            Err(KeyError::NotAFile { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let key = PrivateKey(ALICE_PRIVATE);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("dwdt"), "{shown}");
        assert!(!shown.contains("119"), "{shown}"); // 0x77, as a decimal byte
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn public_keys_round_trip_through_base64() {
        let public = PrivateKey::from_base64(ALICE_PRIVATE_B64)
            .expect("base64")
            .public_key();
        assert_eq!(public.as_bytes(), &ALICE_PUBLIC);
        let text = public.to_base64();
        assert_eq!(text.parse::<PublicKey>().expect("parse"), public);
        assert_eq!(format!("{public}"), text);
        assert!(matches!(
            PublicKey::from_base64("abc"),
            Err(KeyError::Base64 { len: 3 })
        ));
    }
}
