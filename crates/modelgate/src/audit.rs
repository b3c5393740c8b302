//! `modelgate audit …`: show, export and verify the audit log — online through the API, offline from an
//! export, or directly on the store. Verification recomputes every leaf hash from the entry bytes and
//! trusts only the pinned public key.

use crate::cli::{AuditCommand, AuditVerifyArgs, StorageArgs};
use crate::output::{Printer, table};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use modelgate_api as api;
use modelgate_audit::merkle::{Frontier, Hash, leaf_hash, verify_consistency};
use modelgate_audit::{Checkpoint, ExpectedRoot, LogProblem, LogVerifier, NoteVerifier};
use modelgate_client::Client;
use std::io::{BufRead, Write};
use std::path::Path;

/// Entries fetched per request while verifying or exporting.
const PAGE: u64 = 10_000;

pub async fn run(
    client: impl FnOnce() -> anyhow::Result<Client>,
    printer: &Printer,
    command: AuditCommand,
) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => {
            if let Some(export) = &args.export {
                verify_export(export, &args).await
            } else if args.data_dir.is_some() || args.database_url.is_some() {
                verify_store(&args).await
            } else {
                verify_online(&client()?, &args).await
            }
        }
        AuditCommand::Export { out } => export(&client()?, &out).await,
        AuditCommand::Show {
            target,
            actor,
            action,
            since,
            limit,
            cursor,
        } => {
            let client = client()?;
            let mut query = api::AuditEventsQuery {
                target,
                actor,
                action,
                since,
                limit: Some(limit.min(1000)),
                cursor,
            };
            let mut list = client.audit_events(&query).await?;
            while list.events.len() < limit as usize {
                let Some(cursor) = list.next_cursor.take() else {
                    break;
                };
                query.cursor = Some(cursor);
                let next = client.audit_events(&query).await?;
                list.events.extend(next.events);
                list.next_cursor = next.next_cursor;
            }
            if list.events.len() > limit as usize {
                // The cursor of the last event shown, so that --cursor continues right after it.
                list.events.truncate(limit as usize);
                list.next_cursor = list
                    .events
                    .last()
                    .and_then(|event| event["seq"].as_u64())
                    .map(|seq| seq.to_string());
            }
            printer.print(&list, |list| {
                let mut text = events_table(&list.events);
                if let Some(cursor) = &list.next_cursor {
                    text.push_str(&format!("\n(more: --cursor {cursor})"));
                }
                text
            })
        }
        AuditCommand::Checkpoint { out } => {
            let note = client()?.audit_checkpoint().await?;
            write_or_print(out.as_deref(), &note)
        }
        AuditCommand::PublicKey { out } => {
            let key = client()?.audit_public_key().await?;
            write_or_print(out.as_deref(), &format!("{key}\n"))
        }
    }
}

fn write_or_print(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("saved to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn events_table(events: &[serde_json::Value]) -> String {
    let field =
        |event: &serde_json::Value, name: &str| event[name].as_str().unwrap_or("").to_owned();
    table(
        &["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME"],
        events
            .iter()
            .map(|event| {
                let outcome = match event["reason"].as_str() {
                    Some(reason) => format!("{}: {reason}", field(event, "outcome")),
                    None => field(event, "outcome"),
                };
                vec![
                    event["seq"].to_string(),
                    field(event, "time"),
                    field(event, "actor"),
                    field(event, "action"),
                    field(event, "target"),
                    outcome,
                ]
            })
            .collect(),
    )
}

fn read_verifier(path: &Path) -> anyhow::Result<NoteVerifier> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    NoteVerifier::parse(text.trim()).with_context(|| format!("public key {}", path.display()))
}

fn read_checkpoint(path: &Path, verifier: &NoteVerifier) -> anyhow::Result<Checkpoint> {
    let note = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the checkpoint {}", path.display()))?;
    verifier
        .verify(&note)
        .with_context(|| format!("checkpoint {}", path.display()))
}

fn expect(log: &mut LogVerifier, checkpoint: &Checkpoint, label: &str) {
    log.expect_root(
        checkpoint.size,
        ExpectedRoot {
            root: checkpoint.root,
            label: format!("{label} (size {})", checkpoint.size),
        },
    );
}

/// Fails with the problem, naming the index where there is one.
fn fail(problem: LogProblem) -> anyhow::Error {
    anyhow::anyhow!("the audit log does not verify: {problem}")
}

fn report(size: u64, root: &Hash, verifier: &NoteVerifier, since: Option<&Checkpoint>) {
    println!(
        "audit log intact: {size} entries, root {}, checkpoint signed by {}",
        BASE64.encode(root),
        verifier.name()
    );
    if let Some(since) = since {
        println!(
            "it extends the earlier checkpoint of size {} (consistent)",
            since.size
        );
    }
}

fn decode_hashes(hashes: &[String]) -> anyhow::Result<Vec<Hash>> {
    hashes
        .iter()
        .map(|text| {
            BASE64
                .decode(text)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("the server sent a proof hash that is not 32 bytes of base64")
                })
        })
        .collect()
}

async fn verify_online(client: &Client, args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let verifier = match &args.public_key {
        Some(path) => read_verifier(path)?,
        None => {
            eprintln!(
                "warning: no --public-key given; trusting the key the server presents. Pin it with \
                 `modelgate keys show --out FILE` and pass --public-key FILE"
            );
            NoteVerifier::parse(&client.audit_public_key().await?)?
        }
    };
    let note = client.audit_checkpoint().await?;
    let latest = verifier
        .verify(&note)
        .context("the server's latest checkpoint")?;
    let since = args
        .since
        .as_deref()
        .map(|path| read_checkpoint(path, &verifier))
        .transpose()?;
    let mut log = LogVerifier::new();
    expect(&mut log, &latest, "the latest signed checkpoint");
    if let Some(since) = &since {
        if since.origin != latest.origin {
            bail!(
                "the saved checkpoint is for log {:?}, the server's for {:?}",
                since.origin,
                latest.origin
            );
        }
        if since.size > latest.size {
            bail!(
                "the saved checkpoint covers {} entries but the server's latest only {}: the log was truncated or forked",
                since.size,
                latest.size
            );
        }
        expect(&mut log, since, "the saved checkpoint");
        if since.size > 0 {
            let proof = client
                .audit_consistency_proof(since.size, latest.size)
                .await?;
            verify_consistency(since.size, latest.size, &decode_hashes(&proof.hashes)?, &since.root, &latest.root)
                .map_err(|error| anyhow::anyhow!("the log is not consistent with the saved checkpoint (history was rewritten): {error}"))?;
        }
    }
    let mut start = 0u64;
    while start < latest.size {
        let end = (start + PAGE).min(latest.size);
        let lines = client.audit_entries(start, end).await?;
        if lines.is_empty() {
            return Err(fail(LogProblem::at(
                start,
                "the server returned no entries where the checkpoint has some",
            )));
        }
        for (offset, line) in lines.iter().enumerate() {
            log.push(start + offset as u64, line.as_bytes())
                .map_err(fail)?;
        }
        start += lines.len() as u64;
    }
    let (size, root) = log.finish().map_err(fail)?;
    report(size, &root, &verifier, since.as_ref());
    Ok(())
}

async fn export(client: &Client, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let note = client.audit_checkpoint().await?;
    let key = client.audit_public_key().await?;
    let checkpoint = NoteVerifier::parse(&key)?
        .verify(&note)
        .context("the server's checkpoint does not verify with its own key")?;
    let entries_path = out.join("entries.jsonl");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&entries_path)
            .with_context(|| format!("cannot create {}", entries_path.display()))?,
    );
    let hashes_path = out.join(LEAF_HASHES);
    let mut hashes = std::io::BufWriter::new(
        std::fs::File::create(&hashes_path)
            .with_context(|| format!("cannot create {}", hashes_path.display()))?,
    );
    let mut start = 0u64;
    while start < checkpoint.size {
        let end = (start + PAGE).min(checkpoint.size);
        let lines = client.audit_entries(start, end).await?;
        if lines.is_empty() {
            bail!("the server returned no entries from index {start}");
        }
        for line in &lines {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
            hashes.write_all(hex::encode(leaf_hash(line.as_bytes())).as_bytes())?;
            hashes.write_all(b"\n")?;
        }
        start += lines.len() as u64;
    }
    file.flush()?;
    hashes.flush()?;
    std::fs::write(out.join("checkpoint"), &note)?;
    std::fs::write(out.join("public-key"), format!("{key}\n"))?;
    eprintln!(
        "exported {} entries and the checkpoint to {} (verify with: modelgate audit verify --export {} --public-key YOUR-PINNED-KEY)",
        checkpoint.size,
        out.display(),
        out.display()
    );
    Ok(())
}

/// The export's file of leaf hashes, one hex SHA-256 per line: line *i* is the hash of entry *i* as the
/// server sent it. Unsigned, but its tree must match the signed checkpoint, so it can name the edited
/// entry once the entries do not.
const LEAF_HASHES: &str = "leaf-hashes";

/// The first entry whose recomputed hash differs from the export's recorded one, when the recorded
/// hashes (the first `computed.len()`) give the signed `root`; `None` when the file is missing or does
/// not match the checkpoint either.
fn locate_edited_entry(dir: &Path, computed: &[Hash], root: &Hash) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(LEAF_HASHES)).ok()?;
    let recorded: Vec<Hash> = text
        .lines()
        .take(computed.len())
        .map(|line| hex::decode(line.trim()).ok()?.try_into().ok())
        .collect::<Option<_>>()?;
    if recorded.len() != computed.len() {
        return None;
    }
    let mut frontier = Frontier::new();
    for hash in &recorded {
        frontier.append(*hash);
    }
    if frontier.root() != *root {
        return None;
    }
    computed
        .iter()
        .zip(&recorded)
        .position(|(ours, theirs)| ours != theirs)
        .map(|index| index as u64)
}

async fn verify_export(dir: &Path, args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let Some(key_path) = &args.public_key else {
        bail!(
            "--export needs --public-key FILE: an export is verified against the key you pinned, not one it carries"
        );
    };
    let verifier = read_verifier(key_path)?;
    let checkpoint = read_checkpoint(&dir.join("checkpoint"), &verifier)?;
    let since = args
        .since
        .as_deref()
        .map(|path| read_checkpoint(path, &verifier))
        .transpose()?;
    let mut log = LogVerifier::new();
    expect(&mut log, &checkpoint, "the export's signed checkpoint");
    if let Some(since) = &since {
        if since.size > checkpoint.size {
            bail!(
                "the saved checkpoint covers more entries ({}) than the export ({})",
                since.size,
                checkpoint.size
            );
        }
        expect(&mut log, since, "the saved checkpoint");
    }
    let entries_path = dir.join("entries.jsonl");
    let file = std::fs::File::open(&entries_path)
        .with_context(|| format!("cannot read {}", entries_path.display()))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut index = 0u64;
    let mut computed: Vec<Hash> = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if index >= checkpoint.size {
            return Err(fail(LogProblem::at(
                index,
                "the export holds entries beyond its signed checkpoint",
            )));
        }
        computed.push(leaf_hash(&line));
        if let Err(problem) = log.push(index, &line) {
            let size = index + 1;
            let root = if size == checkpoint.size {
                Some(checkpoint.root)
            } else {
                since.as_ref().filter(|s| s.size == size).map(|s| s.root)
            };
            if let Some(edited) = root.and_then(|root| locate_edited_entry(dir, &computed, &root)) {
                return Err(fail(LogProblem::at(
                    edited,
                    format!(
                        "the entry's bytes are not those the signed checkpoint covers (its leaf hash differs from {LEAF_HASHES}, whose tree matches the checkpoint): it was edited after the export"
                    ),
                )));
            }
            return Err(fail(problem));
        }
        index += 1;
    }
    let (size, root) = log.finish().map_err(fail)?;
    report(size, &root, &verifier, since.as_ref());
    Ok(())
}

async fn verify_store(args: &AuditVerifyArgs) -> anyhow::Result<()> {
    let storage = StorageArgs {
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("./modelgate-data")),
        database_url: args.database_url.clone(),
    };
    let verifier = match &args.public_key {
        Some(path) => read_verifier(path)?,
        None => {
            let key_path = args
                .signing_key
                .clone()
                .unwrap_or_else(|| modelgate_server::default_signing_key_path(&storage.data_dir));
            let text = std::fs::read_to_string(&key_path).with_context(|| {
                format!(
                    "cannot read the signing key {} (give --public-key FILE or --signing-key FILE)",
                    key_path.display()
                )
            })?;
            let seed: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| anyhow::anyhow!("{} is not an Ed25519 seed", key_path.display()))?;
            let checkpoint_origin = crate::offline::open(&storage)
                .await?
                .latest_checkpoint()
                .await?
                .and_then(|latest| latest.note.lines().next().map(str::to_owned));
            let signer =
                modelgate_server::audit_log::signer_for(&seed, checkpoint_origin.as_deref())?;
            NoteVerifier::parse(&signer.verifier_key())?
        }
    };
    let store = crate::offline::open(&storage).await?;
    let since = args
        .since
        .as_deref()
        .map(|path| read_checkpoint(path, &verifier))
        .transpose()?;
    let outcome = store
        .verify_stored_log(&verifier, |done| {
            if done % 100_000 == 0 {
                eprintln!("verified {done} entries");
            }
        })
        .await?;
    let verified = outcome.map_err(fail)?;
    if let Some(since) = &since {
        let (_, root_then, _) = store
            .audit_consistency_proof(since.size, since.size)
            .await
            .map_err(|error| {
                anyhow::anyhow!("the saved checkpoint's size is beyond the stored log: {error}")
            })?;
        if root_then != since.root {
            bail!(
                "the stored log's first {} entries do not match the saved checkpoint: history was rewritten",
                since.size
            );
        }
    }
    println!(
        "audit log intact: {} entries, root {}, {} signed checkpoints verified with {}",
        verified.size,
        BASE64.encode(verified.root),
        verified.checkpoints_verified,
        verifier.name()
    );
    Ok(())
}
