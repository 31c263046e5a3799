//! The command line of `cwctl` as a user types it (no root needed). Besides checking the
//! surface, this integration test makes `cargo test` build `target/<profile>/cwctl`, which the
//! netns tier's lab tests run.

use std::process::Command;

fn cwctl(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cwctl"))
        .args(args)
        .output()
        .expect("run cwctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn lab_offers_its_commands() {
    let (ok, help) = cwctl(&["lab", "--help"]);
    assert!(ok, "{help}");
    for command in ["up", "test", "status", "exec", "down"] {
        assert!(help.contains(command), "no `{command}` in:\n{help}");
    }
    let (ok, help) = cwctl(&["lab", "up", "--help"]);
    assert!(ok, "{help}");
    for flag in [
        "--clusters",
        "--wireguard",
        "--geneve",
        "--bin-dir",
        "--no-daemons",
    ] {
        assert!(help.contains(flag), "no `{flag}` in:\n{help}");
    }
}

#[test]
fn lab_up_accepts_two_or_three_clusters_only() {
    let (ok, text) = cwctl(&["lab", "up", "--clusters", "4"]);
    assert!(!ok);
    assert!(text.contains("--clusters"), "{text}");
    let (ok, text) = cwctl(&["lab", "up", "--wireguard", "magic"]);
    assert!(!ok);
    assert!(
        text.contains("kernel") && text.contains("userspace"),
        "{text}"
    );
}

#[test]
fn exec_needs_a_command() {
    let (ok, text) = cwctl(&["lab", "exec", "cl01/n1-a"]);
    assert!(!ok);
    assert!(
        text.contains("COMMAND") || text.contains("required"),
        "{text}"
    );
}

#[test]
fn completion_scripts_name_every_verb() {
    for (shell, marker) in [
        ("bash", "_cwctl()"),
        ("zsh", "#compdef cwctl"),
        ("fish", "complete -c cwctl"),
    ] {
        let (ok, script) = cwctl(&["completion", shell]);
        assert!(ok, "{shell}: {script}");
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in the script"
        );
        for verb in [
            "inspect",
            "dataplane",
            "generate",
            "create",
            "lab",
            "completion",
        ] {
            assert!(script.contains(verb), "{shell}: no {verb} in the script");
        }
    }
    let (ok, text) = cwctl(&["completion", "tcsh"]);
    assert!(!ok && text.contains("bash"), "{text}");
}

#[test]
fn bash_completion_is_valid_bash() {
    let (ok, script) = cwctl(&["completion", "bash"]);
    assert!(ok, "{script}");
    let Ok(out) = Command::new("bash").args(["-n", "-c", &script]).output() else {
        eprintln!("bash_completion_is_valid_bash: SKIPPED: no bash");
        return;
    };
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
