//! Loading the key ring from configuration text and from a mounted directory (plain, and laid
//! out as Kubernetes mounts a Secret), and the error message for each kind of bad material.

use std::path::{Path, PathBuf};

use idbridge_crypto::{KeyLoadError, KeyRing, RowBinding};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{TEST_KEK_1, TEST_KEK_2, ring};

/// 31 bytes, base64.
const TEST_KEY_TOO_SHORT: &str = "VEVTVC1LRUstMS1ub3QtYS1yZWFsLXNlY3JldC0wMA==";
/// Not base64 (`*`).
const TEST_KEY_NOT_BASE64: &str = "VEVTVC1LRUstMS1ub3Qt*S1yZWFsLXNlY3JldC0wMDE=";

fn from_config(keys: &str, active: &str) -> Result<KeyRing, KeyLoadError> {
    KeyRing::from_config(&SecretString::from(keys), active)
}

/// Error text must never contain key material.
fn assert_no_key_material(message: &str) {
    for key in [
        TEST_KEK_1,
        TEST_KEK_2,
        TEST_KEY_TOO_SHORT,
        TEST_KEY_NOT_BASE64,
    ] {
        assert!(!message.contains(key), "error leaks a key: {message}");
        assert!(
            !message.contains(&key[..12]),
            "error leaks part of a key: {message}"
        );
    }
}

fn config_error(keys: &str, active: &str) -> String {
    let message = from_config(keys, active).unwrap_err().to_string();
    assert_no_key_material(&message);
    message
}

#[test]
fn loads_from_configuration_text() {
    let ring = ring(
        &format!(" k2026a:{TEST_KEK_2} , k2025b:{TEST_KEK_1},"),
        "k2026a",
    );
    assert_eq!(ring.active_key_id(), "k2026a");
    let binding = RowBinding::new(Uuid::now_v7(), "0000-0002-1825-0097");
    let sealed = ring.seal(&SecretString::from("x"), &binding).unwrap();
    assert_eq!(sealed.key_id(), "k2026a");
}

#[test]
fn configuration_errors_name_the_key_and_the_fix() {
    assert_eq!(
        config_error(&format!("k1:{TEST_KEY_TOO_SHORT}"), "k1"),
        "key 'k1' in key ring configuration decodes to 31 bytes but must be exactly 32; generate one with `openssl rand -base64 32`"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEY_NOT_BASE64}"), "k1"),
        "key 'k1' in key ring configuration is not valid base64 (standard alphabet, with padding); store the 32 key bytes as `openssl rand -base64 32` prints them"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1}"), "k2026a"),
        "key ring configuration: active key id 'k2026a' is not among the loaded keys (k1); add that key or set the active id to one of them"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1}"), " "),
        "key ring configuration: no active key id; name one of the loaded key ids as active"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1}"), TEST_KEK_1),
        "key ring configuration (active key id): key id is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (and not the reserved name 'active')"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1},{TEST_KEK_2}"), "k1"),
        "key ring configuration: entry 2 is not `key_id:BASE64`; write the list as `k2026a:BASE64KEY,k2025b:BASE64KEY`"
    );
    assert_eq!(
        config_error(&format!("k 1:{TEST_KEK_1}"), "k1"),
        "key ring configuration, entry 1: key id is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (and not the reserved name 'active')"
    );
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1},k1:{TEST_KEK_2}"), "k1"),
        "key ring configuration: key id 'k1' appears more than once; keep one key per id"
    );
    let long_id = "k".repeat(33);
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1}"), &long_id),
        "key ring configuration: active key id (longer than 32 characters, not shown) is not among the loaded keys (k1); add that key or set the active id to one of them"
    );
    let err = from_config(&format!("k1:{TEST_KEK_1}"), &long_id).unwrap_err();
    assert!(!format!("{err:?}").contains(&long_id), "{err:?}");
    assert_eq!(
        config_error(&format!("k1:{TEST_KEK_1}"), &"k".repeat(32)),
        format!(
            "key ring configuration: active key id '{}' is not among the loaded keys (k1); add that key or set the active id to one of them",
            "k".repeat(32)
        )
    );
    assert_eq!(
        config_error(" , ", "k1"),
        "key ring configuration: no keys found; add at least one key (generate one with `openssl rand -base64 32`)"
    );
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("idbridge-crypto-test-{}", Uuid::new_v4()));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, contents: &str) -> &Self {
        std::fs::write(self.0.join(name), contents).unwrap();
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir_error(dir: &TempDir) -> String {
    let message = KeyRing::from_dir(dir.path()).unwrap_err().to_string();
    assert_no_key_material(&message);
    message
}

/// Lays `dir` out as the kubelet mounts a Secret: the files in `..<version>/`, a link
/// `..data → ..<version>`, and one link per file `name → ..data/name`.
fn mount_secret(dir: &TempDir, version: &str, files: &[(&str, &str)]) {
    let versioned = format!("..{version}");
    std::fs::create_dir(dir.path().join(&versioned)).unwrap();
    for (name, contents) in files {
        dir.write(&format!("{versioned}/{name}"), contents);
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    std::os::unix::fs::symlink(&versioned, dir.path().join("..data")).unwrap();
}

/// What the kubelet does on an update: writes `..<version>/`, swaps `..data` to it (a rename
/// over the old link, atomic), and only then fixes the per-file links and deletes the old
/// version. Returns before that last part, the moment a reload can race.
fn swap_secret_version(dir: &TempDir, version: &str, files: &[(&str, &str)]) {
    let versioned = format!("..{version}");
    std::fs::create_dir(dir.path().join(&versioned)).unwrap();
    for (name, contents) in files {
        dir.write(&format!("{versioned}/{name}"), contents);
    }
    let tmp = dir.path().join("..data_tmp");
    std::os::unix::fs::symlink(&versioned, &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("..data")).unwrap();
}

fn opens_a_row_sealed_under(ring: &KeyRing, key_id: &str, key: &str) {
    let binding = RowBinding::new(Uuid::now_v7(), "0000-0002-1825-0097");
    let sealed = crate::ring(&format!("{key_id}:{key}"), key_id)
        .seal(&SecretString::from("x"), &binding)
        .unwrap();
    assert_eq!(ring.open(&sealed, &binding).unwrap().expose_secret(), "x");
}

#[test]
fn loads_from_a_plain_directory() {
    let dir = TempDir::new();
    dir.write("k2026a", &format!("{TEST_KEK_2}\n"))
        .write("k2025b", TEST_KEK_1)
        .write("active", "k2026a\n")
        .write(
            ".editor-swap",
            "ignored: names starting with '.' are skipped",
        );

    let ring = KeyRing::from_dir(dir.path()).unwrap();
    assert_eq!(ring.active_key_id(), "k2026a");
    // k2025b is loaded too: a row sealed under it alone opens.
    opens_a_row_sealed_under(&ring, "k2025b", TEST_KEK_1);
}

#[test]
fn loads_from_a_kubernetes_secret_mount() {
    let dir = TempDir::new();
    let (k2026a, k2025b) = (format!("{TEST_KEK_2}\n"), TEST_KEK_1.to_owned());
    mount_secret(
        &dir,
        "2026_01_01_00_00_00.000000001",
        &[
            ("k2026a", &k2026a),
            ("k2025b", &k2025b),
            ("active", "k2026a\n"),
        ],
    );
    let ring = KeyRing::from_dir(dir.path()).unwrap();
    assert_eq!(ring.active_key_id(), "k2026a");
    opens_a_row_sealed_under(&ring, "k2025b", TEST_KEK_1);
    opens_a_row_sealed_under(&ring, "k2026a", TEST_KEK_2);
}

#[test]
fn a_reload_during_the_kubelets_swap_reads_only_the_new_version() {
    // Old version: k1 active. New version: k1 removed, k2 added and active (the last step
    // of a rotation). Right after the `..data` swap, the visible `k1` link dangles and there
    // is no `k2` link yet: reading the visible names would fail or mix versions.
    let dir = TempDir::new();
    mount_secret(
        &dir,
        "2026_01_01_00_00_00.000000001",
        &[("k1", TEST_KEK_1), ("active", "k1")],
    );
    assert_eq!(KeyRing::from_dir(dir.path()).unwrap().active_key_id(), "k1");

    swap_secret_version(
        &dir,
        "2026_02_01_00_00_00.000000002",
        &[("k2", TEST_KEK_2), ("active", "k2")],
    );
    assert!(dir.path().join("k1").symlink_metadata().is_ok());
    assert!(!dir.path().join("k2").exists());

    let ring = KeyRing::from_dir(dir.path()).unwrap();
    assert_eq!(ring.active_key_id(), "k2");
    assert!(!ring.contains(&idbridge_crypto::KeyId::parse("k1").unwrap()));
    opens_a_row_sealed_under(&ring, "k2", TEST_KEK_2);
}

#[test]
fn a_mount_reads_nothing_outside_its_current_version() {
    // A stray file next to the links (not in `..data`) is not read, even if it is not a key.
    let dir = TempDir::new();
    mount_secret(
        &dir,
        "2026_01_01_00_00_00.000000001",
        &[("k1", TEST_KEK_1), ("active", "k1")],
    );
    dir.write("stray", "not a key");
    let ring = KeyRing::from_dir(dir.path()).unwrap();
    assert_eq!(ring.active_key_id(), "k1");

    // In a plain directory the same stray file is an error: it must hold only keys.
    let plain = TempDir::new();
    plain
        .write("k1", TEST_KEK_1)
        .write("active", "k1")
        .write("stray", "not a key");
    assert!(dir_error(&plain).starts_with("key 'stray' (file "));
}

#[test]
fn directory_errors_name_the_file_and_the_fix() {
    let dir = TempDir::new();
    dir.write("k1", TEST_KEY_TOO_SHORT).write("active", "k1");
    let file = dir.path().join("k1");
    assert_eq!(
        dir_error(&dir),
        format!(
            "key 'k1' (file {}) decodes to 31 bytes but must be exactly 32; generate one with `openssl rand -base64 32`",
            file.display()
        )
    );

    dir.write("k1", TEST_KEY_NOT_BASE64);
    assert_eq!(
        dir_error(&dir),
        format!(
            "key 'k1' (file {}) is not valid base64 (standard alphabet, with padding); store the 32 key bytes as `openssl rand -base64 32` prints them",
            file.display()
        )
    );

    dir.write("k1", TEST_KEK_1).write("active", "k2");
    assert_eq!(
        dir_error(&dir),
        format!(
            "{}: active key id 'k2' is not among the loaded keys (k1); add that key or set the active id to one of them",
            dir.path().join("active").display()
        )
    );

    std::fs::remove_file(dir.path().join("active")).unwrap();
    assert_eq!(
        dir_error(&dir),
        format!(
            "{}: no active key id; write the active key id into a file named `active` in the key directory",
            dir.path().join("active").display()
        )
    );

    dir.write("active", "k1").write("key 1.b64", TEST_KEK_2);
    assert_eq!(
        dir_error(&dir),
        format!(
            "key file {}: key id is invalid; use 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-' (and not the reserved name 'active')",
            dir.path().join("key 1.b64").display()
        )
    );
}

#[test]
fn empty_or_missing_directory_is_an_error() {
    let dir = TempDir::new();
    dir.write("active", "k1");
    assert_eq!(
        dir_error(&dir),
        format!(
            "{}: no keys found; add at least one key (generate one with `openssl rand -base64 32`)",
            dir.path().display()
        )
    );

    let missing = dir.path().join("nowhere");
    let err = KeyRing::from_dir(&missing).unwrap_err();
    assert!(matches!(err, KeyLoadError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())),
        "{err}"
    );
}
