//! Golden files for the `--help` of `inspect`, `completion`, `network` and `info`
//! (`UPDATE_GOLDEN=1 cargo test -p clusterwire-cli --test help` rewrites them; review the
//! diff). `generate` and `create` keep theirs in `tests/manifests.rs`.

use std::{path::PathBuf, process::Command};

/// Every verb whose `--help` is kept as `tests/golden/help-<verb words>.txt`.
const VERBS: &[&[&str]] = &[
    &["inspect"],
    &["completion"],
    &["network"],
    &["network", "connect"],
    &["network", "disconnect"],
    &["network", "reset"],
    &["info"],
    &["info", "peer"],
];

fn golden(file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p clusterwire-cli --test help",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "output differs from {} (if the change is intended, rerun with UPDATE_GOLDEN=1 and \
         review the diff)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn help_of_every_verb_matches_its_golden_file() {
    for verb in VERBS {
        let out = Command::new(env!("CARGO_BIN_EXE_cwctl"))
            .args(*verb)
            .arg("--help")
            .output()
            .expect("run cwctl");
        assert!(out.status.success(), "{verb:?} --help failed");
        let text = String::from_utf8(out.stdout).expect("UTF-8 help");
        golden(&format!("help-{}.txt", verb.join("-")), &text);
    }
}
