//! What a newcomer tripped on ("Trust core, second pass", part 3), driven through the real binary: cards
//! that round-trip between `card show` and `card set`, skeletons and copies, and the CLI's papercuts.

use crate::cli::{BINARY, Server, path, stderr, write_file};
use std::process::Command;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn cards_round_trip_from_show_to_set_and_copy_between_versions() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "roundtrip", "--risk-tier", "low"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "roundtrip", path(&artifact)]);
    let other = write_file(work.path(), "m2.bin", b"other weights");
    server.json(&["version", "push", "roundtrip", path(&other)]);

    // `card edit` on a version without a card opens a skeleton of what the low tier requires.
    let seen = work.path().join("seen.yaml");
    let editor = write_file(
        work.path(),
        "editor.sh",
        format!(
            "#!/bin/sh\ncp \"$1\" {seen}\nprintf 'model_details:\\n  name: roundtrip\\n  owners:\\n  - name: Risk team\\nintended_use:\\n  primary_uses: ranking\\nlimitations: EU only\\n' > \"$1\"\n",
            seen = seen.display()
        )
        .as_bytes(),
    );
    assert!(
        Command::new("chmod")
            .args(["+x", path(&editor)])
            .status()
            .unwrap()
            .success()
    );
    let edited = Command::new(BINARY)
        .args(["--output", "json", "card", "edit", "roundtrip", "1"])
        .env("MODELGATE_SERVER", &server.url)
        .env("MODELGATE_TOKEN", &server.token)
        .env("EDITOR", path(&editor))
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(edited.status.success(), "{}", stderr(&edited));
    let skeleton = std::fs::read_to_string(&seen).unwrap();
    assert!(
        skeleton.contains("low risk tier requires")
            && skeleton.contains("name: roundtrip")
            && skeleton.contains("owners:")
            && skeleton.contains("primary_uses:")
            && skeleton.contains("limitations:"),
        "the skeleton lists the required fields: {skeleton}"
    );
    assert!(!skeleton.contains("{}"), "{skeleton}");

    // What `card show --output json` prints is accepted by `card set --file`.
    let shown = server.run(&["--output", "json", "card", "show", "roundtrip", "1"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let mut document: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(document["author"], "alice");
    document["card"]["limitations"] = serde_json::json!("EU applicants only");
    let file = write_file(work.path(), "shown.json", document.to_string().as_bytes());
    let set = server.json(&["card", "set", "roundtrip", "1", "--file", path(&file)]);
    assert_eq!(set["revision"], 2, "{set}");
    assert_eq!(set["card"]["limitations"], "EU applicants only");

    // `--file -` reads standard input, a bare card as well.
    let mut bare = document["card"].clone();
    bare["limitations"] = serde_json::json!("EU applicants, 2021-2025");
    let from_stdin = server.run_with_stdin(
        &[
            "--output",
            "json",
            "card",
            "set",
            "roundtrip",
            "1",
            "--file",
            "-",
        ],
        Some(&bare.to_string()),
    );
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    let from_stdin: serde_json::Value = serde_json::from_slice(&from_stdin.stdout).unwrap();
    assert_eq!(from_stdin["revision"], 3);
    assert_eq!(
        from_stdin["card"]["limitations"],
        "EU applicants, 2021-2025"
    );

    // `card copy` makes version 2's card from version 1's, and says where from.
    let copied = server.json(&["card", "copy", "roundtrip", "2", "--from", "1"]);
    assert_eq!(copied["revision"], 1, "{copied}");
    assert_eq!(copied["card"], from_stdin["card"]);
    assert!(
        copied["message"]
            .as_str()
            .unwrap()
            .contains("copied from roundtrip version 1 (card revision 3"),
        "{copied}"
    );
    let missing = server.run(&["card", "copy", "roundtrip", "1", "--from", "9"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not_found"),
        "{}",
        stderr(&missing)
    );
}
