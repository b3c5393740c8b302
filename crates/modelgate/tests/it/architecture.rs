//! The invariants of ARCHITECTURE.md that a machine can check: the pure crates import no I/O layer (no
//! database, HTTP, async runtime or object store), the core not even serde; the clock is read in one place
//! (enforced by clippy's `disallowed-methods` in `clippy.toml`, which this test makes sure stays in force).

use std::path::Path;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
}

/// The names of a crate's normal dependencies.
fn dependencies(krate: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(workspace().join("crates").join(krate).join("Cargo.toml")).unwrap();
    let parsed: toml::Table = manifest.parse().unwrap();
    parsed
        .get("dependencies")
        .and_then(|dependencies| dependencies.as_table())
        .map(|table| table.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_pure_crates_do_no_io() {
    let io_layers = [
        "sqlx",
        "axum",
        "tokio",
        "tower",
        "tower-http",
        "hyper",
        "reqwest",
        "object_store",
        "ort",
        "modelgate-store",
        "modelgate-server",
        "modelgate-onnx",
        "modelgate-client",
    ];
    for krate in [
        "modelgate-core",
        "modelgate-policy",
        "modelgate-card",
        "modelgate-eval",
        "modelgate-audit",
    ] {
        let found: Vec<String> = dependencies(krate)
            .into_iter()
            .filter(|dependency| io_layers.contains(&dependency.as_str()))
            .collect();
        assert!(found.is_empty(), "{krate} depends on {found:?}");
    }
    let core = dependencies("modelgate-core");
    assert!(
        !core
            .iter()
            .any(|dependency| dependency.starts_with("serde")),
        "modelgate-core must not derive wire formats: {core:?}"
    );
}

#[test]
fn clippy_keeps_the_one_clock() {
    let config = std::fs::read_to_string(workspace().join("clippy.toml")).unwrap();
    let parsed: toml::Table = config.parse().unwrap();
    let disallowed: Vec<&str> = parsed["disallowed-methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry.get("path").and_then(|path| path.as_str()))
        .collect();
    assert!(
        disallowed.contains(&"std::time::SystemTime::now"),
        "{disallowed:?}"
    );
    // The exemptions are the clock itself and the object store's wall-clock sweep, nothing else.
    let mut exempt = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let source = krate.unwrap().path().join("src");
        for file in walk(&source) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("allow(clippy::disallowed_methods)") {
                exempt.push(
                    file.strip_prefix(workspace())
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    exempt.sort();
    assert_eq!(
        exempt,
        [
            "crates/modelgate-server/src/lib.rs",
            "crates/modelgate-store/src/artifacts.rs"
        ]
    );
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files
}
