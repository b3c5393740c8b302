//! The `modelgate` binary, driven as a user or a script would: offline admin commands, `serve` on a
//! loopback port, and the client commands against it.

use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_modelgate");

/// A `modelgate serve` process with its own data directory and CLI profile directory.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    pub(crate) data_dir: tempfile::TempDir,
    pub(crate) config_dir: tempfile::TempDir,
    pub(crate) token: String,
}

impl Server {
    /// Bootstraps users offline, then starts `serve` on port 0 and waits for its address.
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`Server::start`], with more `serve` flags.
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let config_dir = tempfile::tempdir().unwrap();
        let created = offline(&[
            "admin",
            "create-user",
            "--data-dir",
            path(data_dir.path()),
            "--username",
            "alice",
            "--printed-name",
            "Alice Example",
            "--role",
            "model_developer",
            "--role",
            "admin",
        ]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let token_output = offline(&[
            "admin",
            "create-token",
            "--data-dir",
            path(data_dir.path()),
            "--username",
            "alice",
        ]);
        assert!(token_output.status.success());
        let token = String::from_utf8(token_output.stdout)
            .unwrap()
            .trim()
            .to_owned();
        assert!(
            token.starts_with("mgt_") && !token.contains('\n'),
            "create-token prints only the token"
        );

        let (child, url) = serve(data_dir.path(), extra);
        Self {
            child,
            url,
            data_dir,
            config_dir,
            token,
        }
    }

    /// Kills the server with SIGKILL (no shutdown work at all), then serves the same data directory again.
    pub(crate) fn kill9_and_restart(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, url) = serve(self.data_dir.path(), extra);
        self.child = child;
        self.url = url;
    }
}

/// Starts `modelgate serve` on port 0 over `data_dir` and waits for its address.
fn serve(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            path(data_dir),
        ])
        .args(extra)
        .env_remove("MODELGATE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                // Keep draining so the server never blocks on a full pipe.
                continue;
            }
        }
    });
    let url = loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the server prints its address");
        if let Some(rest) = line.strip_prefix("modelgate listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    (child, url)
}

impl Server {
    /// Runs a client command with this server and token in the environment.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BINARY)
            .args(args)
            .env("MODELGATE_SERVER", &self.url)
            .env("MODELGATE_TOKEN", &self.token)
            .env("MODELGATE_CONFIG_DIR", self.config_dir.path())
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

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub(crate) fn offline(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env_remove("MODELGATE_DATABASE_URL")
        .output()
        .unwrap()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    file
}

#[test]
fn a_model_and_its_versions_from_the_command_line() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let created = server.json(&[
        "model",
        "create",
        "credit-default",
        "--owner",
        "alice",
        "--risk-tier",
        "high",
        "--description",
        "PD model",
    ]);
    assert_eq!(created["name"], "credit-default");
    assert_eq!(created["risk_tier"], "high");

    let table = server.run(&["model", "list"]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.starts_with("NAME") && text.contains("credit-default"),
        "{text}"
    );

    let artifact: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let file = write_file(work.path(), "model.onnx", &artifact);
    let digest = crate::support::sha256_of(&artifact);
    let version = server.json(&[
        "version",
        "push",
        "credit-default",
        path(&file),
        "--expect-digest",
        &digest,
        "--code-commit",
        "3f2a9c1",
        "--param",
        "max_depth=6",
        "--metadata-json",
        "{\"framework\":\"sklearn\"}",
    ]);
    assert_eq!(version["version"], 1);
    assert_eq!(version["digest"], digest);
    assert_eq!(version["format"], "onnx");
    assert_eq!(version["lineage"]["metadata"]["framework"], "sklearn");

    let wrong = format!("sha256:{}", "1".repeat(64));
    let refused = server.run(&[
        "version",
        "push",
        "credit-default",
        path(&file),
        "--expect-digest",
        &wrong,
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("digest_mismatch"),
        "{}",
        stderr(&refused)
    );

    let shown = server.json(&["version", "show", "credit-default", "1"]);
    assert_eq!(shown["digest"], digest);
    let listed = server.json(&["version", "list", "credit-default"]);
    assert_eq!(
        listed["versions"].as_array().unwrap().len(),
        1,
        "the refused push made no version"
    );

    let out = work.path().join("downloaded.onnx");
    let downloaded = server.run(&[
        "version",
        "download",
        "credit-default",
        "1",
        "--out",
        path(&out),
    ]);
    assert!(downloaded.status.success(), "{}", stderr(&downloaded));
    assert_eq!(std::fs::read(&out).unwrap(), artifact);
    assert!(stderr(&downloaded).contains("verified"));

    let missing = server.run(&["model", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not_found"));
    let usage = server.run(&["model", "create"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
    let help = server.run(&["version", "push", "--help"]);
    assert!(String::from_utf8(help.stdout).unwrap().contains("Example"));

    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status:?}"
    );
}

#[test]
fn login_saves_a_profile_that_later_commands_use() {
    let server = Server::start();
    let user = server.run_with_stdin(
        &[
            "user",
            "create",
            "bob",
            "--printed-name",
            "Bob Example",
            "--role",
            "validator",
            "--password-stdin",
        ],
        Some("bob's long password\n"),
    );
    assert!(user.status.success(), "{}", stderr(&user));
    let login = Command::new(BINARY)
        .args([
            "login",
            "--server",
            &server.url,
            "--username",
            "bob",
            "--password-stdin",
        ])
        .env("MODELGATE_CONFIG_DIR", server.config_dir.path())
        .env_remove("MODELGATE_TOKEN")
        .env_remove("MODELGATE_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"bob's long password\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(login.status.success(), "{}", stderr(&login));
    let who = Command::new(BINARY)
        .args(["--output", "json", "whoami"])
        .env("MODELGATE_CONFIG_DIR", server.config_dir.path())
        .env_remove("MODELGATE_TOKEN")
        .env_remove("MODELGATE_SERVER")
        .output()
        .unwrap();
    assert!(who.status.success(), "{}", stderr(&who));
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(who["user"]["username"], "bob");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.config_dir.path().join("profile.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the profile holds a token: owner-only");
    }
}

#[test]
fn verify_artifacts_reports_tampering() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "m", "--risk-tier", "low"]);
    let file = write_file(work.path(), "a.bin", b"original bytes");
    let version = server.json(&["version", "push", "m", path(&file)]);
    let digest = version["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let data_dir = server.data_dir.path().to_path_buf();
    let clean = offline(&["admin", "verify-artifacts", "--data-dir", path(&data_dir)]);
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("1 artifacts checked"));

    let stored = data_dir
        .join("artifacts")
        .join("sha256")
        .join(&digest[..2])
        .join(&digest);
    std::fs::write(&stored, b"tampered bytes").unwrap();
    let dirty = offline(&["admin", "verify-artifacts", "--data-dir", path(&data_dir)]);
    assert_eq!(dirty.status.code(), Some(1));
    assert!(
        stderr(&dirty).contains(&format!("MISMATCH sha256:{digest}")),
        "{}",
        stderr(&dirty)
    );

    // And the CLI refuses to hand over the tampered bytes.
    let out = work.path().join("out.bin");
    let download = server.run(&["version", "download", "m", "1", "--out", path(&out)]);
    assert_eq!(download.status.code(), Some(1));
    assert!(!out.exists() && !work.path().join("out.bin.partial").exists());
}

#[test]
fn an_auditor_pins_the_key_exports_and_verifies_offline_and_online() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "audited", "--risk-tier", "medium"]);
    let key = work.path().join("modelgate.pub");
    let saved = work.path().join("checkpoint-then");
    assert!(
        server
            .run(&["audit", "public-key", "--out", path(&key)])
            .status
            .success()
    );
    assert!(
        server
            .run(&["audit", "checkpoint", "--out", path(&saved)])
            .status
            .success()
    );
    for round in 0..5 {
        let tagged = server.run(&["model", "tag", "audited", &format!("k{round}"), "v"]);
        assert!(tagged.status.success());
    }

    let online = server.run(&[
        "audit",
        "verify",
        "--public-key",
        path(&key),
        "--since",
        path(&saved),
    ]);
    assert!(online.status.success(), "{}", stderr(&online));
    assert!(String::from_utf8_lossy(&online.stdout).contains("audit log intact"));

    let export = work.path().join("export");
    let exported = server.run(&["audit", "export", "--out", path(&export)]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let entries = std::fs::read_to_string(export.join("entries.jsonl")).unwrap();
    let first_line = entries.lines().next().unwrap();
    assert!(
        first_line.starts_with("{\"action\":\"user.create\""),
        "{first_line}"
    );
    let offline_ok = offline(&[
        "audit",
        "verify",
        "--export",
        path(&export),
        "--public-key",
        path(&key),
    ]);
    assert!(offline_ok.status.success(), "{}", stderr(&offline_ok));

    // One changed byte in the export is caught, and the index named.
    let tampered: Vec<String> = entries
        .lines()
        .enumerate()
        .map(|(index, line)| {
            if index == 3 {
                line.replacen("alice", "mallo", 1)
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert_ne!(tampered.join("\n") + "\n", entries);
    std::fs::write(export.join("entries.jsonl"), tampered.join("\n") + "\n").unwrap();
    let offline_bad = offline(&[
        "audit",
        "verify",
        "--export",
        path(&export),
        "--public-key",
        path(&key),
    ]);
    assert_eq!(offline_bad.status.code(), Some(1));
    assert!(
        stderr(&offline_bad).contains("does not verify"),
        "{}",
        stderr(&offline_bad)
    );

    // A key the auditor did not pin is refused.
    let other_key = work.path().join("other.pub");
    std::fs::write(&other_key, "modelgate/other+00000000+AQ==\n").unwrap();
    let wrong_key = offline(&[
        "audit",
        "verify",
        "--export",
        path(&export),
        "--public-key",
        path(&other_key),
    ]);
    assert_eq!(wrong_key.status.code(), Some(1));

    // Directly on the store: intact, then an edited row is named.
    let data_dir = server.data_dir.path().to_path_buf();
    let direct = offline(&["audit", "verify", "--data-dir", path(&data_dir)]);
    assert!(direct.status.success(), "{}", stderr(&direct));
    let shown = server.json(&[
        "audit",
        "show",
        "--target",
        "model/audited",
        "--action",
        "model.tag.set",
    ]);
    assert_eq!(shown["events"].as_array().unwrap().len(), 5);
    let database = data_dir.join("modelgate.db");
    let edited = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE audit_events SET leaf = replace(leaf, '\\\"k2\\\"', '\\\"k9\\\"') WHERE seq = 5\"); \
             c.commit(); print(c.total_changes)",
            path(&database),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&edited.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    let direct_bad = offline(&["audit", "verify", "--data-dir", path(&data_dir)]);
    assert_eq!(direct_bad.status.code(), Some(1));
    assert!(
        stderr(&direct_bad).contains("index 5"),
        "{}",
        stderr(&direct_bad)
    );
}

#[test]
fn promotion_from_the_command_line_with_the_gate_exit_codes() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let make_user = |name: &str, role: &str| {
        let created = server.run_with_stdin(
            &[
                "user",
                "create",
                name,
                "--printed-name",
                &format!("{name} Example"),
                "--role",
                role,
                "--password-stdin",
            ],
            Some("a long enough password\n"),
        );
        assert!(created.status.success(), "{}", stderr(&created));
        let token = server.json(&["token", "create", "--name", "cli", "--user", name]);
        token["secret"].as_str().unwrap().to_owned()
    };
    let validator = make_user("vic", "validator");
    server.json(&["model", "create", "fraud", "--risk-tier", "medium"]);
    let file = write_file(work.path(), "fraud.onnx", b"model bytes");
    let version = server.json(&["version", "push", "fraud", path(&file)]);
    let digest = version["digest"].as_str().unwrap().to_owned();

    let denied = server.run(&[
        "gate", "check", "--model", "fraud", "--stage", "staging", "--digest", &digest,
    ]);
    assert_eq!(denied.status.code(), Some(3), "{}", stderr(&denied));
    assert!(
        stderr(&denied).contains("denied: no version is approved"),
        "{}",
        stderr(&denied)
    );

    let request = server.json(&[
        "request",
        "open",
        "fraud",
        "1",
        "--stage",
        "staging",
        "--justification",
        "ready",
    ]);
    assert_eq!(request["state"], "open");
    let id = request["id"].to_string();
    let explained = server.run(&["policy", "explain", "fraud", "1", "--stage", "staging"]);
    assert!(
        String::from_utf8_lossy(&explained.stdout).contains("validator: vic"),
        "{}",
        String::from_utf8_lossy(&explained.stdout)
    );

    let as_validator = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(BINARY)
            .args(args)
            .env("MODELGATE_SERVER", &server.url)
            .env("MODELGATE_TOKEN", &validator)
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
    };
    let wrong = as_validator(
        &[
            "review",
            "approve",
            &id,
            "--role",
            "validator",
            "--password-stdin",
        ],
        Some("nope nope nope\n"),
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("unauthenticated"),
        "{}",
        stderr(&wrong)
    );
    let signed = as_validator(
        &[
            "--output",
            "json",
            "review",
            "approve",
            &id,
            "--role",
            "validator",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(signed.status.success(), "{}", stderr(&signed));
    let signed: serde_json::Value = serde_json::from_slice(&signed.stdout).unwrap();
    assert_eq!(signed["state"], "approved");
    assert_eq!(
        signed["reviews"][0]["meaning"],
        "approved for staging as validator"
    );

    let allowed = server.run(&[
        "gate", "check", "--model", "fraud", "--stage", "staging", "--digest", &digest,
    ]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    let keys = server.json(&["keys", "show"]);
    assert!(
        keys["verifier_key"]
            .as_str()
            .unwrap()
            .starts_with("modelgate/")
    );

    // The attestation verifies offline with the pinned key, and only for what it says.
    let key_file = write_file(
        work.path(),
        "server.pub",
        keys["verifier_key"].as_str().unwrap().as_bytes(),
    );
    let attestation = work.path().join("fraud-1.intoto.json");
    let fetched = server.run(&[
        "attest",
        "get",
        "fraud",
        "1",
        "--stage",
        "staging",
        "--out",
        path(&attestation),
    ]);
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    let verify = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "attest",
            "verify",
            path(file),
            "--public-key",
            path(&key_file),
        ];
        args.extend_from_slice(extra);
        offline(&args)
    };
    let valid = verify(&attestation, &["--digest", &digest, "--stage", "staging"]);
    assert!(valid.status.success(), "{}", stderr(&valid));
    assert!(String::from_utf8_lossy(&valid.stdout).contains("vic Example as validator"));
    // A valid file that does not verify is exit 3 (as the gate's "denied"); 1 is for errors.
    let wrong_stage = verify(&attestation, &["--stage", "production"]);
    assert_eq!(wrong_stage.status.code(), Some(3));
    let wrong_digest = verify(
        &attestation,
        &["--digest", &format!("sha256:{}", "0".repeat(64))],
    );
    assert_eq!(wrong_digest.status.code(), Some(3));
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&attestation).unwrap()).unwrap();
    let mut payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let position = payload.iter().position(|byte| *byte == b'v').unwrap();
    payload[position] ^= 1;
    let mut forged = envelope.clone();
    forged["payload"] =
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(payload));
    let forged_file = write_file(work.path(), "forged.json", forged.to_string().as_bytes());
    let refused = verify(&forged_file, &[]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        stderr(&refused).contains("does not verify"),
        "{}",
        stderr(&refused)
    );

    // Policy files are checked offline, with positions.
    let bad = write_file(
        work.path(),
        "bad.toml",
        b"version = 1\nstages = [\"development\", \"prod\"]\nroles = []\n",
    );
    let checked = offline(&["policy", "check", path(&bad)]);
    assert_eq!(checked.status.code(), Some(1));
    assert!(
        stderr(&checked).contains("bad.toml:2:"),
        "{}",
        stderr(&checked)
    );
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
    let good = offline(&["policy", "check", path(&default)]);
    assert!(good.status.success(), "{}", stderr(&good));
}

#[test]
fn cards_from_the_command_line_import_export_and_diff() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "credit", "--risk-tier", "low"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "credit", path(&artifact)]);
    let readme =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../modelgate-card/tests/golden/hf_readme.md");
    let imported = server.run(&[
        "card",
        "import",
        "credit",
        "1",
        "--format",
        "hf",
        path(&readme),
    ]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let report = String::from_utf8_lossy(&imported.stdout);
    assert!(
        report.contains("section: Environmental Impact → additional.Environmental Impact"),
        "{report}"
    );
    assert!(
        report.contains("still missing for the tier: model_details.owners"),
        "{report}"
    );

    let mut card = server.json(&["card", "show", "credit", "1"])["card"].clone();
    card["model_details"]["owners"] = serde_json::json!([{ "name": "Risk team" }]);
    let file = write_file(work.path(), "card.json", card.to_string().as_bytes());
    let set = server.json(&[
        "card",
        "set",
        "credit",
        "1",
        "--file",
        path(&file),
        "--message",
        "add owners",
    ]);
    assert_eq!(
        (set["revision"].as_i64(), set["complete"].as_bool()),
        (Some(2), Some(true))
    );
    let diff = server.json(&["card", "diff", "credit", "1"]);
    assert_eq!(diff["changes"][0]["path"], "model_details.owners[0].name");

    let bad = write_file(
        work.path(),
        "bad.json",
        br#"{"model_details": {"license": "Apache 2"}}"#,
    );
    let refused = server.run(&["card", "set", "credit", "1", "--file", path(&bad)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("model_details.license:"),
        "{}",
        stderr(&refused)
    );

    let html = work.path().join("card.html");
    let exported = server.run(&[
        "card",
        "export",
        "credit",
        "1",
        "--format",
        "html",
        "--out",
        path(&html),
    ]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h1>credit-default</h1>") && page.contains("&lt;b&gt;not&lt;/b&gt;"),
        "{page}"
    );
    let mct = server.run(&["card", "export", "credit", "1", "--format", "mct"]);
    let mct: serde_json::Value = serde_json::from_slice(&mct.stdout).unwrap();
    assert_eq!(
        mct["model_details"]["licenses"][0]["identifier"],
        "Apache-2.0"
    );
    let hf = server.run(&["card", "export", "credit", "1", "--format", "hf"]);
    assert!(String::from_utf8_lossy(&hf.stdout).starts_with("---\n"));
}

#[test]
fn card_edit_reopens_with_the_problems_until_the_card_is_valid() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "edited", "--risk-tier", "low"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "edited", path(&artifact)]);
    // A scripted editor: the first save has a bad licence, the second fixes it; it keeps what it saw.
    let seen = work.path().join("seen");
    let editor = write_file(
        work.path(),
        "editor.sh",
        format!(
            "#!/bin/sh\ncat \"$1\" >> {seen}\nif [ ! -f {seen}.once ]; then touch {seen}.once; \
             printf 'model_details:\\n  name: edited\\n  license: Apache 2\\n' > \"$1\"; \
             else printf 'model_details:\\n  name: edited\\n  license: MIT\\nlimitations: none known\\n' > \"$1\"; fi\n",
            seen = seen.display()
        )
        .as_bytes(),
    );
    let made_executable = Command::new("chmod")
        .args(["+x", path(&editor)])
        .status()
        .unwrap();
    assert!(made_executable.success());
    let output = Command::new(BINARY)
        .args(["--output", "json", "card", "edit", "edited", "1"])
        .env("MODELGATE_SERVER", &server.url)
        .env("MODELGATE_TOKEN", &server.token)
        .env("EDITOR", path(&editor))
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let saved: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(saved["card"]["model_details"]["license"], "MIT");
    assert_eq!(saved["revision"], 1, "the invalid save made no revision");
    let transcript = std::fs::read_to_string(&seen).unwrap();
    assert!(
        transcript.contains("#! model_details.license:"),
        "the editor was reopened with the problem: {transcript}"
    );
}

#[test]
fn datasets_and_evaluations_from_the_command_line() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    server.json(&["model", "create", "scored", "--risk-tier", "medium"]);
    let artifact = write_file(work.path(), "m.bin", b"weights");
    server.json(&["version", "push", "scored", path(&artifact)]);
    let mut csv = String::from("income,sex,default,score\n");
    for index in 0..60 {
        let default = index % 3 == 0;
        let score = if default { 0.8 } else { 0.2 } + (index % 5) as f64 * 0.01;
        csv.push_str(&format!(
            "{},{},{},{score:.2}\n",
            100 + index,
            if index % 2 == 0 { "f" } else { "m" },
            u8::from(default)
        ));
    }
    let file = write_file(work.path(), "holdout.csv", csv.as_bytes());
    let registered = server.json(&[
        "dataset",
        "register",
        "holdout",
        path(&file),
        "--label",
        "default",
        "--features",
        "income",
        "--sensitive",
        "sex",
        "--positive-label",
        "1",
    ]);
    assert_eq!(registered["rows"], 60);
    let shown = server.run(&["dataset", "show", "holdout"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("format:    csv")
            && text.contains("label:     default (positive: 1)")
            && text.contains("MEDIAN")
            && text.contains("f (30), m (30)"),
        "{text}"
    );
    let bad = write_file(work.path(), "bad.csv", b"income,sex,default\n1,f,1\n2,m\n");
    let refused = server.run(&[
        "dataset",
        "register",
        "bad",
        path(&bad),
        "--label",
        "default",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("line 3"), "{}", stderr(&refused));

    let evaluation = server.json(&[
        "eval",
        "run",
        "scored",
        "1",
        "--dataset",
        "holdout",
        "--predictions",
        path(&file),
        "--score-column",
        "score",
        "--wait",
    ]);
    assert_eq!(evaluation["results"]["overall"]["accuracy"]["value"], 1.0);
    assert_eq!(evaluation["results"]["overall"]["roc_auc"]["value"], 1.0);
    let id = evaluation["id"].to_string();
    let table = server.run(&["eval", "show", &id]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("roc_auc") && text.contains("by sex:") && text.contains("four-fifths rule"),
        "{text}"
    );
    // With the intervals, and the digests and settings it was computed from.
    assert!(
        text.contains("95% INTERVAL")
            && text.contains("dataset_digest: sha256:")
            && text.contains("predictions_digest: sha256:")
            && text.contains("evaluation digest: sha256:")
            && text.contains("bootstrap_resamples 200"),
        "{text}"
    );

    // Without --wait the job is queued and printed; `eval wait` follows it to its evaluation.
    let job = server.json(&[
        "eval",
        "run",
        "scored",
        "1",
        "--dataset",
        "holdout",
        "--predictions",
        path(&file),
        "--score-column",
        "score",
        "--bootstrap",
        "0",
    ]);
    assert!(
        matches!(
            job["state"].as_str(),
            Some("queued" | "running" | "succeeded")
        ),
        "{job}"
    );
    let job_id = job["id"].to_string();
    let waited = server.json(&["eval", "wait", &job_id]);
    assert_eq!(waited["results"]["overall"]["accuracy"]["value"], 1.0);
    assert!(
        waited["results"]["intervals"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    assert_eq!(server.json(&["eval", "job", &job_id])["state"], "succeeded");
    let jobs = server.json(&["eval", "jobs", "--state", "succeeded", "--model", "scored"]);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
    assert_eq!(jobs["jobs"][0]["id"].to_string(), job_id, "newest first");
    let none = server.json(&["eval", "jobs", "--state", "running"]);
    assert!(none["jobs"].as_array().unwrap().is_empty(), "{none}");
    let listed = server.json(&["eval", "list", "scored", "1"]);
    assert_eq!(
        listed["evaluations"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    let table = server.run(&["eval", "list", "scored", "1"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("roc_auc 1.0000") && text.contains("holdout"),
        "{text}"
    );
    let refused = server.run(&["eval", "cancel", &job_id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("nothing to cancel"),
        "{}",
        stderr(&refused)
    );
    let malformed = server.run(&[
        "eval",
        "run",
        "scored",
        "1",
        "--dataset",
        "holdout",
        "--intersect",
        "sex",
    ]);
    assert_ne!(malformed.status.code(), Some(0));
    assert!(
        stderr(&malformed).contains("--intersect sex,race"),
        "{}",
        stderr(&malformed)
    );
}
