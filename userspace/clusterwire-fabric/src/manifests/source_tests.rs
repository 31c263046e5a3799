//! The incremental [`Source`] against a full reload of the directory at every step.

use std::{fs, sync::OnceLock};

use clusterwire_api::validation::ManifestValidator;

use super::{Loaded, Source, keep_last_good, load_dir};
use crate::snapshot::{Key, Kind};

fn validator() -> &'static ManifestValidator {
    static VALIDATOR: OnceLock<ManifestValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| ManifestValidator::for_api().expect("the API's CRDs compile"))
}

/// A manifests directory under the system temp dir, removed on drop, with a source on it and
/// the full reload the source must equal.
struct Bench {
    dir: std::path::PathBuf,
    source: Source,
    reference: Loaded,
}

impl Bench {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "clusterwire-fabric-incremental-{test}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let source = Source::new(&dir, ManifestValidator::for_api().unwrap());
        Self {
            dir,
            source,
            reference: Loaded::default(),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.path(name), text).unwrap();
    }

    /// Writes a hidden temporary file and renames it over `name`, as a `ConfigMap` mount or
    /// an atomic writer does (a new inode).
    fn rename_over(&self, name: &str, text: &str) {
        let target = self.path(name);
        let file_name = target.file_name().unwrap().to_string_lossy();
        let temp = target.with_file_name(format!(".{file_name}.tmp"));
        fs::write(&temp, text).unwrap();
        fs::rename(&temp, &target).unwrap();
    }

    fn remove(&self, name: &str) {
        fs::remove_file(self.path(name)).unwrap();
    }

    /// Polls; asserts whether it saw a change and that its state is the full reload's (the
    /// reload is only taken when the source saw a change, as the source did before).
    fn poll(&mut self, expect_change: bool, step: &str) -> &Loaded {
        let changed = self.source.poll().unwrap().is_some();
        assert_eq!(changed, expect_change, "{step}: change seen");
        let full = load_dir(&self.dir, validator()).unwrap();
        if changed {
            self.reference = keep_last_good(&self.reference, full);
        }
        assert_same(self.source.current(), &self.reference, step);
        self.source.current()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn assert_same(got: &Loaded, want: &Loaded, step: &str) {
    let text = |l: &Loaded| {
        l.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(got.snapshot.keys(), want.snapshot.keys(), "{step}: objects");
    assert!(got.snapshot == want.snapshot, "{step}: object contents");
    assert_eq!(got.origins, want.origins, "{step}: origins");
    assert_eq!(got.kept, want.kept, "{step}: kept");
    assert_eq!(text(got), text(want), "{step}: problems");
    assert_eq!(got.ignored, want.ignored, "{step}: ignored");
}

fn ip(name: &str, addr: &str) -> String {
    format!(
        "apiVersion: ipam.liqo.io/v1alpha1\nkind: IP\nmetadata: {{name: {name}, namespace: liqo}}\n\
         spec: {{ip: {addr}}}\n"
    )
}

fn node(name: &str, cidr: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {{podCIDR: {cidr}}}\n")
}

fn docs(parts: &[String]) -> String {
    parts.join("---\n")
}

fn ip_of(loaded: &Loaded, name: &str) -> Option<String> {
    loaded
        .snapshot
        .ips
        .get(&Key::new("liqo", name))
        .map(|i| i.spec.ip.to_string())
}

#[test]
fn modify_add_remove_and_rename_over() {
    let mut b = Bench::new("basic");
    b.write(
        "nodes.yaml",
        &docs(&[node("n1", "10.0.1.0/24"), node("n2", "10.0.2.0/24")]),
    );
    b.write("ips.yaml", &ip("a", "10.0.0.1"));
    assert_eq!(b.poll(true, "first").snapshot.len(), 3);
    b.poll(false, "idle");

    b.write(
        "nodes.yaml",
        &docs(&[node("n1", "10.0.1.0/24"), node("n2", "10.0.9.0/24")]),
    );
    b.poll(true, "one file modified");
    fs::create_dir_all(b.path("more")).unwrap();
    b.write(
        "more/ips.yml",
        &docs(&[ip("b", "10.0.0.2"), ip("c", "10.0.0.3")]),
    );
    assert_eq!(b.poll(true, "file added").snapshot.ips.len(), 3);
    b.remove("ips.yaml");
    let loaded = b.poll(true, "file removed");
    assert_eq!(ip_of(loaded, "a"), None);
    b.rename_over("more/ips.yml", &ip("b", "10.0.0.4"));
    let loaded = b.poll(true, "renamed over");
    assert_eq!(
        (ip_of(loaded, "b").as_deref(), ip_of(loaded, "c")),
        (Some("10.0.0.4"), None)
    );
    // Renamed over with the same contents: a new inode, nothing to report.
    b.rename_over("more/ips.yml", &ip("b", "10.0.0.4"));
    b.poll(false, "renamed over, same contents");
    b.write("notes.txt", "not a manifest");
    b.write(".hidden.yaml", &ip("h", "10.0.0.9"));
    b.poll(false, "other files");
}

#[test]
fn same_size_rewrites_are_seen() {
    let mut b = Bench::new("same-size");
    b.write("ips.yaml", &ip("a", "10.0.0.1"));
    b.poll(true, "first");
    let path = b.path("ips.yaml");
    let before = fs::metadata(&path).unwrap();
    // Same size, and the modification time put back: only the contents (and ctime) differ.
    b.write("ips.yaml", &ip("a", "10.0.0.2"));
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    assert_eq!(fs::metadata(&path).unwrap().len(), before.len());
    let loaded = b.poll(true, "same-size rewrite");
    assert_eq!(ip_of(loaded, "a").as_deref(), Some("10.0.0.2"));
    // Rewritten identically (a touch): no change to report.
    b.write("ips.yaml", &ip("a", "10.0.0.2"));
    b.poll(false, "same contents");
}

#[test]
fn invalid_rewrites_keep_the_last_good_version() {
    let mut b = Bench::new("last-good");
    b.write(
        "ips.yaml",
        &docs(&[ip("a", "10.0.0.1"), ip("b", "10.0.0.2")]),
    );
    b.write("nodes.yaml", &node("n1", "10.0.1.0/24"));
    b.poll(true, "first");

    b.write(
        "ips.yaml",
        &docs(&[ip("a", "not-an-ip"), ip("b", "10.0.0.3")]),
    );
    let loaded = b.poll(true, "one object invalid");
    assert_eq!(ip_of(loaded, "a").as_deref(), Some("10.0.0.1"));
    assert_eq!(loaded.kept, [(Kind::Ip, Key::new("liqo", "a"))]);
    b.write("nodes.yaml", "kind: [\n");
    let loaded = b.poll(true, "file no longer YAML");
    assert!(loaded.snapshot.nodes.contains_key(&Key::cluster("n1")));
    assert_eq!(loaded.kept.len(), 2);
    b.write("ips.yaml", &ip("b", "10.0.0.3"));
    let loaded = b.poll(true, "invalid object deleted");
    assert_eq!(ip_of(loaded, "a"), None);
    b.write("other.yaml", &node("n1", "10.0.7.0/24"));
    b.poll(true, "defined again elsewhere while its file is broken");
    b.remove("other.yaml");
    let loaded = b.poll(true, "gone again: not kept (its origin was other.yaml)");
    assert!(!loaded.snapshot.nodes.contains_key(&Key::cluster("n1")));
    b.write("nodes.yaml", &node("n1", "10.0.1.0/24"));
    b.poll(true, "fixed");
    b.write("nodes.yaml", "kind: [\n");
    b.poll(true, "broken again");
    b.remove("nodes.yaml");
    let loaded = b.poll(true, "broken file removed");
    assert!(loaded.snapshot.nodes.is_empty() && loaded.kept.is_empty());
}

#[test]
fn duplicates_across_and_within_files() {
    let mut b = Bench::new("duplicates");
    b.write("b.yaml", &ip("x", "10.0.0.2"));
    b.write("c.yaml", &docs(&[ip("x", "10.0.0.3"), ip("y", "10.0.0.4")]));
    assert_eq!(
        ip_of(b.poll(true, "first"), "x").as_deref(),
        Some("10.0.0.2")
    );
    b.write("a.yaml", &ip("x", "10.0.0.1"));
    assert_eq!(
        ip_of(b.poll(true, "an earlier file takes it"), "x").as_deref(),
        Some("10.0.0.1")
    );
    b.remove("a.yaml");
    assert_eq!(
        ip_of(b.poll(true, "back to b"), "x").as_deref(),
        Some("10.0.0.2")
    );
    b.remove("b.yaml");
    assert_eq!(
        ip_of(b.poll(true, "the spare in c takes over"), "x").as_deref(),
        Some("10.0.0.3")
    );
    b.write(
        "c.yaml",
        &docs(&[
            ip("y", "10.0.0.4"),
            ip("y", "10.0.0.5"),
            ip("x", "10.0.0.3"),
        ]),
    );
    b.poll(true, "twice in one file");
    b.write("b.yaml", &docs(&[ip("y", "10.0.0.6"), ip("y", "10.0.0.7")]));
    b.poll(true, "twice in an earlier file");
    b.write("b.yaml", &ip("y", "bad"));
    b.poll(true, "the earlier definition invalid");
    b.remove("c.yaml");
    b.poll(true, "only the invalid one left");
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }
}

#[test]
fn random_edits_match_a_full_reload() {
    let mut b = Bench::new("random");
    let names = ["a.yaml", "b.yaml", "sub/c.yaml", "d.yml"];
    fs::create_dir_all(b.path("sub")).unwrap();
    let fragments = [
        ip("x", "10.0.0.1"),
        ip("x", "10.0.0.2"),
        ip("y", "10.0.0.3"),
        ip("y", "nope"),
        node("n1", "10.0.1.0/24"),
        node("n1", "10.0.2.0/24"),
        node("n2", "not-a-cidr"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n".to_owned(),
        "just: a mapping\n".to_owned(),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut contents: [Option<String>; 4] = Default::default();
    b.poll(true, "first (empty)");
    for step in 0..300 {
        // One to three files edited between two polls.
        let before = contents.clone();
        let mut edited = Vec::new();
        for _ in 0..=rng.below(3) {
            let i = rng.below(names.len());
            let next = match rng.below(6) {
                0 => None,
                1 => Some("kind: [\n".to_owned()),
                _ => {
                    let count = 1 + rng.below(3);
                    let parts: Vec<String> = (0..count)
                        .map(|_| fragments[rng.below(fragments.len())].clone())
                        .collect();
                    Some(docs(&parts))
                }
            };
            match &next {
                None if contents[i].is_some() => b.remove(names[i]),
                None => {}
                Some(text) if rng.below(2) == 0 => b.rename_over(names[i], text),
                Some(text) => b.write(names[i], text),
            }
            contents[i] = next;
            edited.push(names[i]);
        }
        b.poll(contents != before, &format!("step {step}: {edited:?}"));
    }
}

#[test]
fn many_large_files_are_read_in_order() {
    let mut b = Bench::new("many");
    // 2.6 MB in 40 files; a duplicate across far-apart files.
    let filler = format!("# {}\n", "x".repeat(64 * 1024));
    for f in 0..40 {
        let name = format!("f{f:02}.yaml");
        let mut text = filler.clone();
        text.push_str(&node(&format!("n{f}"), &format!("10.0.{f}.0/24")));
        if f == 3 || f == 37 {
            text.push_str("---\n");
            text.push_str(&ip("dup", &format!("10.0.0.{f}")));
        }
        b.write(&name, &text);
    }
    let loaded = b.poll(true, "first");
    assert_eq!(loaded.snapshot.nodes.len(), 40);
    assert_eq!(ip_of(loaded, "dup").as_deref(), Some("10.0.0.3"));
    assert_eq!(
        loaded.problems.len(),
        1,
        "the later definition is a duplicate"
    );
}

#[test]
fn only_keeps_the_kinds_asked_and_skips_the_others_unchecked() {
    let dir = std::env::temp_dir().join(format!(
        "clusterwire-fabric-only-kinds-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("all.yaml"),
        docs(&[
            node("n1", "10.0.1.0/24"),
            ip("bad", "not-an-ip"),
            ip("good", "10.0.0.3"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n".to_owned(),
        ]),
    )
    .unwrap();

    let mut all = Source::new(&dir, ManifestValidator::for_api().unwrap());
    let loaded = all.poll().unwrap().expect("a first poll loads");
    assert_eq!(loaded.snapshot.len(), 2, "the node and the good IP");
    assert_eq!(loaded.problems.len(), 1, "the bad IP");
    assert_eq!(loaded.ignored.len(), 1, "the ConfigMap");

    let mut nodes = Source::new(&dir, ManifestValidator::for_api().unwrap())
        .only(super::Filter::default().kinds(&[Kind::Node]));
    let loaded = nodes.poll().unwrap().expect("a first poll loads");
    assert_eq!(loaded.snapshot.keys(), [(Kind::Node, Key::cluster("n1"))]);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(
        loaded.ignored.len(),
        1,
        "other API kinds are still reported"
    );
    let _ = fs::remove_dir_all(&dir);
}
