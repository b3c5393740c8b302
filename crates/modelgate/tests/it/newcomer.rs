//! What a newcomer tripped on ("Trust core, second pass", part 3), driven through the real binary: cards
//! that round-trip between `card show` and `card set`, skeletons and copies, and the CLI's papercuts.

use crate::cli::{BINARY, Server, offline, path, stderr, write_file};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a client command against `server` as `token`, with `stdin` when given.
fn run_as(server: &Server, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .env("MODELGATE_SERVER", &server.url)
        .env("MODELGATE_TOKEN", token)
        .env("MODELGATE_CONFIG_DIR", server.config_dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// Runs a client command with only the given environment (no token, no server from the caller).
fn run_with_server(server: &str, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    Command::new(BINARY)
        .args(args)
        .env("MODELGATE_SERVER", server)
        .env("MODELGATE_TOKEN", "mgt_unused")
        .env("MODELGATE_CONFIG_DIR", config.path())
        .output()
        .unwrap()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
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

#[test]
fn version_tables_show_approval_status_and_suspension() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "tabled", "--risk-tier", "low"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "tabled", path(&artifact)]);
    // The low tier's staging gate asks for nothing: the request approves at once.
    let request = server.json(&[
        "request",
        "open",
        "tabled",
        "1",
        "--stage",
        "staging",
        "--justification",
        "ready",
    ]);
    assert_eq!(request["state"], "approved", "{request}");
    let listed = server.run(&["version", "list", "tabled"]);
    let text = stdout(&listed);
    assert!(
        text.lines().next().unwrap().contains("APPROVAL") && text.contains("active until 20"),
        "{text}"
    );
    let shown = stdout(&server.run(&["version", "show", "tabled", "1"]));
    assert!(
        shown.contains("approval:")
            && shown.contains("active until")
            && shown.contains("for staging"),
        "{shown}"
    );
    let suspended = server.run(&[
        "version",
        "suspend",
        "tabled",
        "1",
        "--reason",
        "drift above limit",
    ]);
    assert!(suspended.status.success(), "{}", stderr(&suspended));
    let shown = stdout(&server.run(&["version", "show", "tabled", "1"]));
    assert!(
        shown.contains("suspended for staging") && shown.contains("drift above limit"),
        "{shown}"
    );
    let listed = stdout(&server.run(&["version", "list", "tabled"]));
    assert!(listed.contains("suspended"), "{listed}");
    // A version without an approval shows its suspension too.
    let other = write_file(work.path(), "m2.bin", b"other weights");
    server.json(&["version", "push", "tabled", path(&other)]);
    let suspended = server.run(&[
        "version",
        "suspend",
        "tabled",
        "2",
        "--reason",
        "leaked data",
    ]);
    assert!(suspended.status.success(), "{}", stderr(&suspended));
    let shown = stdout(&server.run(&["version", "show", "tabled", "2"]));
    assert!(
        shown.contains("suspended:") && shown.contains("leaked data"),
        "{shown}"
    );
    let listed = stdout(&server.run(&["version", "list", "tabled"]));
    let row = listed.lines().find(|line| line.starts_with('2')).unwrap();
    assert!(row.contains("suspended"), "{listed}");
}

#[test]
fn token_create_prints_only_the_secret_on_standard_output() {
    let server = Server::start();
    let created = server.run(&["token", "create", "--name", "ci"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let out = stdout(&created);
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(out.trim().starts_with("mgt_"), "{out:?}");
    assert!(
        stderr(&created).contains("shown only once"),
        "{}",
        stderr(&created)
    );
    // The secret works as a token.
    let who = run_as(&server, out.trim(), &["--output", "json", "whoami"], None);
    assert!(who.status.success(), "{}", stderr(&who));
}

#[test]
fn json_errors_servers_without_a_scheme_and_connection_refused() {
    let server = Server::start();
    // A server error in the API's shape on stdout, exit 1.
    let missing = server.run(&["--output", "json", "model", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&missing.stdout)
        .unwrap_or_else(|_| panic!("error JSON on stdout: {}", stdout(&missing)));
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("nope"),
        "{body}"
    );
    // A client-side error in the same shape, with a code.
    let port = closed_port();
    let unreachable = run_with_server(
        &format!("http://127.0.0.1:{port}"),
        &["--output", "json", "model", "list"],
    );
    assert_eq!(unreachable.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&unreachable.stdout).unwrap();
    assert_eq!(body["error"]["code"], "unreachable", "{body}");
    // Usage errors still exit 2.
    assert_eq!(
        server
            .run(&["--output", "json", "model", "show"])
            .status
            .code(),
        Some(2)
    );

    // Connection refused: one line that asks whether the server runs.
    let refused = run_with_server(&format!("http://127.0.0.1:{port}"), &["model", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert_eq!(
        message.trim(),
        format!(
            "error: cannot reach the server at http://127.0.0.1:{port} (connection refused): is `modelgate serve` running there?"
        ),
    );

    // HOST:PORT without a scheme means http://.
    let bare = server.url.trim_start_matches("http://").to_owned();
    let who = Command::new(BINARY)
        .args(["--output", "json", "whoami"])
        .env("MODELGATE_SERVER", &bare)
        .env("MODELGATE_TOKEN", &server.token)
        .env("MODELGATE_CONFIG_DIR", server.config_dir.path())
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", stderr(&who));
    let wrong = run_with_server("ftp://127.0.0.1:21", &["model", "list"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("write it as a URL, e.g. http://127.0.0.1:8080"),
        "{}",
        stderr(&wrong)
    );

    // Usage lines do not show the global flags set in the environment as if they were required.
    let usage = server.run(&["model", "show"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage_line = stderr(&usage)
        .lines()
        .find(|line| line.starts_with("Usage:"))
        .unwrap()
        .to_owned();
    assert!(
        !usage_line.contains("--server") && !usage_line.contains("--token"),
        "{usage_line}"
    );
}

#[test]
fn misspelt_roles_are_refused_naming_the_known_ones() {
    let server = Server::start();
    let refused = server.run(&[
        "user",
        "create",
        "x",
        "--printed-name",
        "X Example",
        "--role",
        "validtor",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let message = stderr(&refused);
    assert!(
        message.contains("validtor")
            && message.contains("validator")
            && message.contains("risk_officer"),
        "{message}"
    );
    assert!(
        server.run(&["user", "show", "x"]).status.code() == Some(1),
        "nothing was created"
    );
    let created = server.json(&[
        "user",
        "create",
        "x",
        "--printed-name",
        "X Example",
        "--role",
        "validator",
    ]);
    assert_eq!(created["roles"], serde_json::json!(["validator"]));
    let update = server.run(&["user", "update", "x", "--role", "complience"]);
    assert_eq!(update.status.code(), Some(1));
    assert!(
        stderr(&update).contains("complience"),
        "{}",
        stderr(&update)
    );
    let admin = server.json(&["user", "update", "x", "--role", "admin"]);
    assert_eq!(admin["roles"], serde_json::json!(["admin"]));
}

#[test]
fn request_show_says_which_sign_offs_count() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    // A policy whose medium staging gate asks for two validators, so one approval leaves it open.
    let default = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml"),
    )
    .unwrap();
    let two = default.replacen(
        "stage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 1 }]",
        "stage = \"staging\"\nsignoffs = [{ role = \"validator\", count = 2 }]",
        1,
    );
    assert_ne!(two, default);
    let policy = write_file(work.path(), "two.toml", two.as_bytes());
    let applied = server.run(&["policy", "apply", path(&policy)]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let made = server.run_with_stdin(
        &[
            "user",
            "create",
            "vic",
            "--printed-name",
            "Vic Example",
            "--role",
            "validator",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let token = server.json(&["token", "create", "--name", "cli", "--user", "vic"])["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    server.json(&["model", "create", "signed", "--risk-tier", "medium"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "signed", path(&artifact)]);
    let request = server.json(&[
        "request",
        "open",
        "signed",
        "1",
        "--stage",
        "staging",
        "--justification",
        "ready",
    ]);
    let id = request["id"].to_string();
    let approved = run_as(
        &server,
        &token,
        &[
            "review",
            "approve",
            &id,
            "--role",
            "validator",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(approved.status.success(), "{}", stderr(&approved));
    let open = stdout(&server.run(&["request", "show", &id]));
    let row = open
        .lines()
        .find(|line| line.contains("Vic Example"))
        .unwrap();
    assert!(
        row.trim_end().ends_with("yes"),
        "an open request's current approval counts: {open}"
    );
    let withdrawn = server.run(&["request", "withdraw", &id, "--reason", "wrong version"]);
    assert!(withdrawn.status.success(), "{}", stderr(&withdrawn));
    let shown = stdout(&server.run(&["request", "show", &id]));
    let row = shown
        .lines()
        .find(|line| line.contains("Vic Example"))
        .unwrap();
    assert!(
        row.contains("no (request withdrawn)") && !row.trim_end().ends_with("yes"),
        "{shown}"
    );
}

#[test]
fn audit_show_takes_a_model_with_what_lies_under_it_and_pages_by_cursor() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "audited", "--risk-tier", "low"]);
    server.json(&["model", "create", "audited-other", "--risk-tier", "low"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "audited", path(&artifact)]);
    server.json(&["version", "tag", "audited", "1", "candidate", "yes"]);
    server.json(&["version", "push", "audited-other", path(&artifact)]);
    server.json(&[
        "request",
        "open",
        "audited",
        "1",
        "--stage",
        "staging",
        "--justification",
        "ready",
    ]);
    let shown = server.json(&["audit", "show", "--target", "model/audited"]);
    let events = shown["events"].as_array().unwrap();
    let targets: Vec<&str> = events
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert!(targets.contains(&"model/audited"), "{targets:?}");
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("model/audited/version/1")),
        "{targets:?}"
    );
    assert!(
        targets.iter().any(|t| t.starts_with("request/")),
        "the model's requests: {targets:?}"
    );
    assert!(
        targets.iter().all(|t| !t.contains("audited-other")),
        "a name that merely starts the same is another model: {targets:?}"
    );
    // Pages: --limit, then --cursor from where the last page ended.
    let first = server.json(&["audit", "show", "--target", "model/audited", "--limit", "2"]);
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = server.json(&[
        "audit",
        "show",
        "--target",
        "model/audited",
        "--limit",
        "2",
        "--cursor",
        &cursor,
    ]);
    assert_eq!(second["events"][0]["seq"], events[2]["seq"], "{second}");
    let table =
        stdout(&server.run(&["audit", "show", "--target", "model/audited", "--limit", "2"]));
    assert!(table.contains("(more: --cursor "), "{table}");
}

#[test]
fn a_tampered_export_names_the_edited_entry() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "ledger", "--risk-tier", "low"]);
    for round in 0..20 {
        server.json(&["model", "tag", "ledger", &format!("k{round}"), "v"]);
    }
    let key = work.path().join("modelgate.pub");
    assert!(
        server
            .run(&["audit", "public-key", "--out", path(&key)])
            .status
            .success()
    );
    let export = work.path().join("export");
    let exported = server.run(&["audit", "export", "--out", path(&export)]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let entries = std::fs::read_to_string(export.join("entries.jsonl")).unwrap();
    assert!(entries.lines().count() > 18);
    let tampered: Vec<String> = entries
        .lines()
        .enumerate()
        .map(|(index, line)| {
            if index == 18 {
                line.replacen("\"v\"", "\"w\"", 1)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_ne!(tampered.join("\n") + "\n", entries);
    std::fs::write(export.join("entries.jsonl"), tampered.join("\n") + "\n").unwrap();
    let verified = offline(&[
        "audit",
        "verify",
        "--export",
        path(&export),
        "--public-key",
        path(&key),
    ]);
    assert_eq!(verified.status.code(), Some(1));
    let message = stderr(&verified);
    assert!(
        message.contains("index 18:") && message.contains("edited"),
        "{message}"
    );
    assert!(!message.contains("index 0:"), "{message}");
}
