//! `modelgate policy|request|review|gate|keys …`: governed promotion from the command line.

use crate::cli::{
    AttestCommand, CardCommand, DatasetCommand, EvalCommand, GateCommand, KeysCommand,
    PolicyCommand, RequestCommand, ReviewCommand,
};
use crate::offline::read_password_stdin;
use crate::output::{Printer, fields, table};
use anyhow::Context;
use modelgate_api as api;
use modelgate_client::Client;

/// Ends the process with a specific exit code (the gate's 3) after printing nothing more.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitCode {
    pub code: u8,
    pub message: String,
}

pub async fn policy(
    client: impl FnOnce() -> anyhow::Result<Client>,
    printer: &Printer,
    command: PolicyCommand,
) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            match modelgate_policy::Policy::parse(&text) {
                Ok(policy) => {
                    let summary = serde_json::json!({
                        "valid": true,
                        "digest": policy.digest,
                        "stages": policy.stages.iter().map(|stage| stage.as_str()).collect::<Vec<_>>(),
                        "gates": policy.gates().count(),
                    });
                    printer.print(&summary, |_| {
                        format!("{}: valid policy, digest {}", file.display(), policy.digest)
                    })
                }
                Err(problems) => {
                    for problem in &problems {
                        eprintln!(
                            "{}:{}:{}: {}",
                            file.display(),
                            problem.line,
                            problem.column,
                            problem.message
                        );
                    }
                    anyhow::bail!(
                        "{} is not a valid policy ({} problems)",
                        file.display(),
                        problems.len()
                    )
                }
            }
        }
        PolicyCommand::Show => {
            let policy = client()?.get_policy().await?;
            printer.print(&policy, |policy| {
                format!(
                    "{}\n\n{}",
                    fields(&[
                        ("digest", policy.digest.clone()),
                        ("source", policy.source.clone()),
                        ("revision", policy.revision.to_string()),
                        (
                            "applied",
                            format!(
                                "{} by {}",
                                policy.applied_at.clone().unwrap_or_else(|| "-".to_owned()),
                                policy.applied_by.clone().unwrap_or_else(|| "-".to_owned())
                            )
                        ),
                    ]),
                    policy.text
                )
            })
        }
        PolicyCommand::Apply { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let applied = client()?.apply_policy(&text, dry_run).await;
            if let Err(modelgate_client::ClientError::Api {
                details: Some(details),
                ..
            }) = &applied
                && let Some(problems) = details
                    .get("problems")
                    .and_then(|problems| problems.as_array())
            {
                for problem in problems {
                    eprintln!(
                        "{}:{}:{}: {}",
                        file.display(),
                        problem["line"],
                        problem["column"],
                        problem["message"].as_str().unwrap_or_default()
                    );
                }
            }
            let applied = applied?;
            for warning in &applied.warnings {
                eprintln!("{}: warning: {warning}", file.display());
            }
            printer.print(&applied, |applied| {
                let mut lines = vec![if applied.dry_run {
                    format!(
                        "dry run: {} is valid; nothing was applied (revision {} stays in force)",
                        applied.digest, applied.policy.revision
                    )
                } else {
                    format!(
                        "policy revision {} in force, digest {}",
                        applied.policy.revision, applied.policy.digest
                    )
                }];
                if applied.approvals_not_regranted.is_empty() {
                    lines.push("every approval in force would be granted by it".to_owned());
                }
                for approval in &applied.approvals_not_regranted {
                    lines.push(format!(
                        "{} version {} in {}: not granted by the new policy → {}",
                        approval.model, approval.version, approval.stage, approval.action
                    ));
                    for reason in &approval.reasons {
                        lines.push(format!("  - {reason}"));
                    }
                }
                lines.join("\n")
            })
        }
        PolicyCommand::Explain {
            model,
            version,
            stage,
        } => {
            let explanation = client()?.explain(&model, &version, stage).await?;
            printer.print(&explanation, explanation_text)
        }
    }
}

fn explanation_text(explanation: &api::Explanation) -> String {
    let mut lines = vec![format!(
        "{} version {} ({} risk): {} → {}",
        explanation.model,
        explanation.version,
        explanation.risk_tier,
        explanation.current_stage,
        explanation.target_stage
    )];
    if let Some(problem) = &explanation.step_problem {
        lines.push(format!("step: not allowed — {problem}"));
    }
    lines.push(format!("policy {}", explanation.policy_digest));
    lines.push(String::new());
    lines.push("checks:".to_owned());
    if explanation.checks.is_empty() {
        lines.push("  (none)".to_owned());
    }
    for check in &explanation.checks {
        let detail = check
            .detail
            .as_deref()
            .map(|detail| format!(" — {detail}"))
            .unwrap_or_default();
        lines.push(format!(
            "  {:<8} {} ({}){detail}",
            check.status.as_str().to_uppercase(),
            check.name,
            check.expression
        ));
    }
    lines.push(String::new());
    let quota = |list: &[api::SignoffQuota]| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.iter()
                .map(|q| format!("{} {}", q.count, q.role))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    lines.push(format!(
        "sign-offs required: {}",
        quota(&explanation.signoffs_required)
    ));
    lines.push(format!(
        "sign-offs missing:  {}",
        quota(&explanation.signoffs_outstanding)
    ));
    for (role, people) in &explanation.eligible_reviewers {
        let who = if people.is_empty() {
            "nobody eligible".to_owned()
        } else {
            people.join(", ")
        };
        lines.push(format!("  {role}: {who}"));
    }
    lines.push(format!(
        "approval valid for {} days",
        explanation.valid_for_days
    ));
    if let Some(id) = explanation.open_request {
        lines.push(format!("open request: {id}"));
    }
    if let Some(reason) = &explanation.suspension {
        lines.push(format!("suspended: {reason}"));
    }
    if let Some(monitoring) = &explanation.monitoring {
        lines.push(String::new());
        lines.push("after deployment:".to_owned());
        for (key, value) in crate::output::version_monitoring(monitoring) {
            lines.push(format!("  {key}: {value}"));
        }
    }
    lines.join("\n")
}

/// Whether a review counts toward the request's sign-offs: only current approvals of a request that is
/// open or was approved; a rejected or withdrawn request's sign-offs count for nothing.
fn review_counts(request: &api::PromotionRequest, review: &api::ReviewRecord) -> String {
    if review.decision != api::ReviewDecision::Approve {
        return "- (not a sign-off)".to_owned();
    }
    match request.state {
        api::RequestState::Rejected | api::RequestState::Withdrawn => {
            format!("no (request {})", request.state)
        }
        _ if review.current => "yes".to_owned(),
        _ => "no (superseded)".to_owned(),
    }
}

pub(crate) fn request_text(request: &api::PromotionRequest) -> String {
    let mut text = fields(&[
        ("request", request.id.to_string()),
        ("state", request.state.to_string()),
        (
            "model",
            format!(
                "{} version {} ({})",
                request.model, request.version, request.digest
            ),
        ),
        (
            "move",
            format!(
                "{} → {} ({})",
                request.from_stage, request.target_stage, request.kind
            ),
        ),
        ("requester", request.requester.clone()),
        ("justification", request.justification.clone()),
        ("opened", request.created_at.clone()),
        (
            "decided",
            match (&request.decided_at, &request.decision_reason) {
                (Some(at), Some(reason)) => format!("{at}: {reason}"),
                _ => "-".to_owned(),
            },
        ),
        ("policy", request.policy_digest.clone()),
        ("evidence", request.evidence_digest.clone()),
    ]);
    if !request.evaluations.is_empty() {
        text.push_str("\n\nevaluations the gate runs:\n");
        text.push_str(&table(
            &["DATASET", "JOB", "STATE", "PROBLEM"],
            request
                .evaluations
                .iter()
                .map(|evaluation| {
                    vec![
                        evaluation.dataset.clone(),
                        evaluation
                            .job
                            .map_or_else(|| "-".to_owned(), |job| job.to_string()),
                        evaluation.state.to_string(),
                        evaluation.problem.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        ));
    }
    if !request.reviews.is_empty() {
        text.push_str("\n\nreviews:\n");
        text.push_str(&table(
            &[
                "WHEN",
                "WHO",
                "ROLE",
                "DECISION",
                "MEANING / COMMENT",
                "COUNTS",
            ],
            request
                .reviews
                .iter()
                .map(|review| {
                    vec![
                        review.signed_at.clone(),
                        format!("{} ({})", review.printed_name, review.reviewer),
                        review.role.clone(),
                        review.decision.to_string(),
                        review
                            .meaning
                            .clone()
                            .unwrap_or_else(|| review.comment.clone()),
                        review_counts(request, review),
                    ]
                })
                .collect(),
        ));
    }
    if !request.comments.is_empty() {
        text.push_str("\n\ncomments:\n");
        for comment in &request.comments {
            text.push_str(&format!(
                "  {} {}: {}\n",
                comment.created_at, comment.author, comment.body
            ));
        }
    }
    text
}

pub async fn request(
    client: &Client,
    printer: &Printer,
    command: RequestCommand,
) -> anyhow::Result<()> {
    match command {
        RequestCommand::Open {
            model,
            version,
            stage,
            justification,
        } => {
            let opened = client
                .open_request(&api::OpenRequest {
                    model,
                    version,
                    stage,
                    justification,
                })
                .await?;
            printer.print(&opened, request_text)
        }
        RequestCommand::Show { id } => printer.print(&client.get_request(id).await?, request_text),
        RequestCommand::List { mine, state, model } => {
            let list = client
                .list_requests(&api::ListRequestsQuery {
                    state,
                    mine: Some(mine),
                    model,
                    limit: Some(500),
                })
                .await?;
            printer.print(&list, |list| {
                table(
                    &[
                        "ID",
                        "STATE",
                        "MODEL",
                        "VERSION",
                        "MOVE",
                        "REQUESTER",
                        "OPENED",
                    ],
                    list.requests
                        .iter()
                        .map(|request| {
                            vec![
                                request.id.to_string(),
                                request.state.to_string(),
                                request.model.clone(),
                                request.version.to_string(),
                                format!("{} → {}", request.from_stage, request.target_stage),
                                request.requester.clone(),
                                request.created_at.clone(),
                            ]
                        })
                        .collect(),
                )
            })
        }
        RequestCommand::Withdraw { id, reason } => {
            printer.print(&client.withdraw_request(id, reason).await?, request_text)
        }
        RequestCommand::Comment { id, text } => {
            let comment = client.comment_request(id, &text).await?;
            printer.print(&comment, |comment| {
                format!("comment {} added to request {id}", comment.id)
            })
        }
    }
}

pub async fn review(
    client: &Client,
    printer: &Printer,
    command: ReviewCommand,
) -> anyhow::Result<()> {
    let review = match command {
        ReviewCommand::Approve {
            id,
            role,
            meaning,
            comment,
            password_stdin,
            evidence_digest,
        } => {
            let password = if password_stdin {
                read_password_stdin()?
            } else {
                rpassword::prompt_password("password (approving signs the request): ")
                    .context("cannot read the password; use --password-stdin in scripts")?
            };
            (
                id,
                api::SubmitReview {
                    decision: api::ReviewDecision::Approve,
                    role,
                    comment,
                    meaning,
                    password: Some(password),
                    evidence_digest,
                },
            )
        }
        ReviewCommand::Reject { id, role, comment } => (
            id,
            api::SubmitReview {
                decision: api::ReviewDecision::Reject,
                role,
                comment,
                meaning: None,
                password: None,
                evidence_digest: None,
            },
        ),
        ReviewCommand::RequestChanges { id, role, comment } => (
            id,
            api::SubmitReview {
                decision: api::ReviewDecision::RequestChanges,
                role,
                comment,
                meaning: None,
                password: None,
                evidence_digest: None,
            },
        ),
    };
    let request = client.review_request(review.0, &review.1).await?;
    printer.print(&request, request_text)
}

pub async fn gate(client: &Client, printer: &Printer, command: GateCommand) -> anyhow::Result<()> {
    let GateCommand::Check {
        model,
        stage,
        digest,
    } = command;
    let answer = client.gate(&model, stage, &digest).await?;
    printer.print(&answer, |answer| {
        if answer.allowed {
            format!(
                "allowed: {} version {} in {} (approval valid until {})",
                answer.model,
                answer.version.map(|v| v.to_string()).unwrap_or_default(),
                answer.stage,
                answer.not_after.clone().unwrap_or_else(|| "-".to_owned())
            )
        } else {
            String::new()
        }
    })?;
    if answer.allowed {
        Ok(())
    } else {
        for reason in &answer.reasons {
            eprintln!("denied: {reason}");
        }
        Err(ExitCode {
            code: 3,
            message: format!("the gate denies {digest} in {stage} for {model}"),
        }
        .into())
    }
}

/// `keys show`: the verifier key (`<name>+<key id>+<key>`), the one form every verifying command reads, on
/// standard output or in `--out FILE`; the raw Ed25519 key goes to standard error for comparing out of band.
pub async fn keys(client: &Client, printer: &Printer, command: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::Show { out } = command;
    let keys = client.keys().await?;
    match out {
        Some(path) => {
            std::fs::write(&path, format!("{}\n", keys.verifier_key))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "saved the server's key to {} (ed25519 {}); pass it as --public-key",
                path.display(),
                keys.ed25519_public_key
            );
            Ok(())
        }
        None => printer.print(&keys, |keys| {
            eprintln!("ed25519 {}", keys.ed25519_public_key);
            keys.verifier_key.clone()
        }),
    }
}

pub async fn attest(
    client: impl FnOnce() -> anyhow::Result<Client>,
    printer: &Printer,
    command: AttestCommand,
) -> anyhow::Result<()> {
    match command {
        AttestCommand::Get {
            model,
            version,
            stage,
            out,
        } => {
            let envelope = client()?.attestation(&model, &version, stage).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &envelope)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("saved the attestation to {}", path.display());
                    Ok(())
                }
                None => {
                    println!("{envelope}");
                    Ok(())
                }
            }
        }
        AttestCommand::Verify {
            file,
            public_key,
            digest,
            stage,
            at,
        } => {
            let envelope = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let key = std::fs::read_to_string(&public_key)
                .with_context(|| format!("cannot read {}", public_key.display()))?;
            let verifier = modelgate_audit::NoteVerifier::parse(key.trim())
                .with_context(|| format!("public key {}", public_key.display()))?;
            // The verifier compares times as the server writes them (fixed-width UTC with milliseconds).
            let now = match &at {
                Some(text) => modelgate_core::Timestamp::parse_rfc3339(text)
                    .map_err(|invalid| anyhow::anyhow!("--at {}", invalid.rule))?,
                None => modelgate_server::system_now(),
            }
            .to_rfc3339();
            let expectations = modelgate_audit::attestation::Expectations {
                digest: digest.as_deref(),
                stage: stage.map(api::Stage::as_str),
                now: Some(&now),
            };
            let statement =
                modelgate_audit::attestation::verify_envelope(&envelope, &verifier, &expectations)
                    .map_err(|reason| ExitCode {
                        code: 3,
                        message: format!("the attestation does not verify: {reason}"),
                    })?;
            printer.print(&statement, |statement| {
                let predicate = &statement["predicate"];
                let approvers: Vec<String> = predicate["approvers"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|a| {
                                format!(
                                    "{} as {} ({})",
                                    a["printed_name"].as_str().unwrap_or(""),
                                    a["role"].as_str().unwrap_or(""),
                                    a["signed_at"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "valid: {} version {} approved for {} until {}; approvers: {}",
                    predicate["model"].as_str().unwrap_or(""),
                    predicate["version"],
                    predicate["stage"].as_str().unwrap_or(""),
                    predicate["not_after"].as_str().unwrap_or(""),
                    if approvers.is_empty() {
                        "none needed".to_owned()
                    } else {
                        approvers.join("; ")
                    }
                )
            })
        }
    }
}

fn card_text(card: &api::ModelCardRevision) -> String {
    let mut text = fields(&[
        ("model", format!("{} version {}", card.model, card.version)),
        (
            "revision",
            format!(
                "{} ({}) by {} at {}",
                card.revision, card.digest, card.author, card.created_at
            ),
        ),
        (
            "complete",
            if card.complete {
                "yes".to_owned()
            } else {
                format!("no — missing {}", card.missing.join(", "))
            },
        ),
    ]);
    text.push_str("\n\n");
    text.push_str(&serde_json::to_string_pretty(&card.card).unwrap_or_default());
    text
}

pub async fn card(client: &Client, printer: &Printer, command: CardCommand) -> anyhow::Result<()> {
    match command {
        CardCommand::Show { model, version } => {
            printer.print(&client.get_card(&model, &version).await?, card_text)
        }
        CardCommand::Set {
            model,
            version,
            file,
            message,
        } => {
            let (name, text) = read_file_or_stdin(&file)?;
            let card = card_from_document(&name, &text)?;
            let result = client
                .set_card(&model, &version, &api::SetModelCard { card, message })
                .await;
            if let Err(modelgate_client::ClientError::Api {
                details: Some(details),
                ..
            }) = &result
                && let Some(problems) = details
                    .get("problems")
                    .and_then(|problems| problems.as_array())
            {
                for problem in problems {
                    eprintln!(
                        "{}: {}",
                        problem["path"].as_str().unwrap_or(""),
                        problem["message"].as_str().unwrap_or("")
                    );
                }
            }
            printer.print(&result?, card_text)
        }
        CardCommand::Edit {
            model,
            version,
            message,
        } => edit_card(client, printer, &model, &version, message).await,
        CardCommand::Copy {
            model,
            version,
            from_version,
            message,
        } => {
            let source = client.get_card(&model, &from_version).await?;
            let origin = format!(
                "copied from {model} version {} (card revision {}, {})",
                source.version, source.revision, source.digest
            );
            let message = match message {
                Some(message) => format!("{origin}: {message}"),
                None => origin,
            };
            let revision = client
                .set_card(
                    &model,
                    &version,
                    &api::SetModelCard {
                        card: source.card,
                        message: Some(message),
                    },
                )
                .await?;
            printer.print(&revision, card_text)
        }
        CardCommand::Import {
            model,
            version,
            format,
            file,
        } => {
            let document = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let imported = client
                .import_card(&model, &version, &format, document)
                .await?;
            printer.print(&imported, |imported| {
                let mut lines = vec![format!(
                    "revision {} of {} version {} ({})",
                    imported.revision.revision,
                    imported.revision.model,
                    imported.revision.version,
                    imported.revision.digest
                )];
                for mapping in &imported.report {
                    lines.push(format!("  {} → {}", mapping.from, mapping.to));
                }
                if !imported.revision.complete {
                    lines.push(format!(
                        "still missing for the tier: {}",
                        imported.revision.missing.join(", ")
                    ));
                }
                lines.join("\n")
            })
        }
        CardCommand::Export {
            model,
            version,
            format,
            out,
        } => {
            let document = client.export_card(&model, &version, &format).await?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &document)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{document}"),
            }
            Ok(())
        }
        CardCommand::Diff {
            model,
            version,
            against,
        } => {
            let diff = client
                .diff_card(&model, &version, against.as_deref())
                .await?;
            printer.print(&diff, |diff| {
                let mut lines = vec![format!("{} → {}", diff.from, diff.to)];
                if diff.changes.is_empty() {
                    lines.push("no changes".to_owned());
                }
                for change in &diff.changes {
                    let show = |value: &Option<serde_json::Value>| {
                        value
                            .as_ref()
                            .map_or("(absent)".to_owned(), |v| v.to_string())
                    };
                    lines.push(format!(
                        "{}: {} → {}",
                        change.path,
                        show(&change.before),
                        show(&change.after)
                    ));
                }
                lines.join("\n")
            })
        }
    }
}

/// Reads `file`, or standard input when it is `-`; returns a name for messages and the text.
fn read_file_or_stdin(file: &std::path::Path) -> anyhow::Result<(String, String)> {
    if file.as_os_str() == "-" {
        let text =
            std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?;
        Ok(("standard input".to_owned(), text))
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        Ok((file.display().to_string(), text))
    }
}

/// The card in a JSON document: a bare card, or a card revision as `card show --output json` prints it
/// (its `card`; the revision details around it are the server's and are ignored).
fn card_from_document(name: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    let document: serde_json::Value = serde_json::from_str(text).with_context(|| {
        format!("{name} is not JSON (a card is a JSON document; see `modelgate card show --output json`)")
    })?;
    match document {
        serde_json::Value::Object(mut fields) if fields.contains_key("card") => {
            match fields.remove("card") {
                Some(card @ serde_json::Value::Object(_)) => Ok(card),
                _ => anyhow::bail!(
                    "{name}: `card` must be an object (the card itself, as `card show --output json` prints it)"
                ),
            }
        }
        card @ serde_json::Value::Object(_) => Ok(card),
        _ => anyhow::bail!(
            "{name}: a card is a JSON object; see `modelgate card show --output json`"
        ),
    }
}

/// The card fields the policy in force requires of a risk tier (`[card_requirements]`).
async fn required_card_fields(client: &Client, tier: api::RiskTier) -> anyhow::Result<Vec<String>> {
    let policy = client.get_policy().await?;
    let parsed = modelgate_policy::Policy::parse(&policy.text).map_err(|problems| {
        anyhow::anyhow!(
            "the server's policy (digest {}) does not parse here: {}",
            policy.digest,
            problems
                .first()
                .map(|problem| problem.message.clone())
                .unwrap_or_default()
        )
    })?;
    let tier = modelgate_core::RiskTier::parse(tier.as_str())
        .map_err(|error| anyhow::anyhow!("the model's risk tier: {error}"))?;
    Ok(parsed
        .card_requirements
        .get(&tier)
        .cloned()
        .unwrap_or_default())
}

/// A card with every required field present and empty (lists with one empty entry), for people to fill
/// in; the model's name is filled in already.
fn card_skeleton(model: &str, required: &[String]) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    fn insert(fields: &mut Map<String, Value>, parts: &[&str], value: Value) {
        match parts {
            [leaf] => {
                fields.insert((*leaf).to_owned(), value);
            }
            [first, rest @ ..] => {
                if let Value::Object(inner) = fields
                    .entry((*first).to_owned())
                    .or_insert_with(|| json!({}))
                {
                    insert(inner, rest, value);
                }
            }
            [] => {}
        }
    }
    let mut card = Map::new();
    for path in required {
        let value = match path.as_str() {
            "model_details.name" => json!(model),
            "model_details.owners" => json!([{ "name": "", "contact": "" }]),
            "model_details.references" => json!([""]),
            "training_data" | "evaluation_data" => json!([{ "name": "", "source": "" }]),
            "ethical_considerations" => json!([{ "name": "", "mitigation": "" }]),
            "metrics" => json!([{ "dataset": "", "metric": "", "value": 0.0 }]),
            _ => json!(""),
        };
        insert(&mut card, &path.split('.').collect::<Vec<_>>(), value);
    }
    Value::Object(card)
}

/// `card edit`: the card as YAML in $EDITOR, validated by the server on save; on problems the file is
/// reopened with them listed on top as comments.
async fn edit_card(
    client: &Client,
    printer: &Printer,
    model: &str,
    version: &str,
    message: Option<String>,
) -> anyhow::Result<()> {
    let (current, required) = match client.get_card(model, version).await {
        Ok(card) => (card.card, String::new()),
        Err(modelgate_client::ClientError::Api { status: 404, .. }) => {
            // No card yet (or no such version: then the get below says so).
            client.get_version(model, version).await?;
            let tier = client.get_model(model).await?.risk_tier;
            let required = required_card_fields(client, tier).await?;
            (
                card_skeleton(model, &required),
                format!(
                    "# No card yet: a skeleton of what the {tier} risk tier requires ({}).\n",
                    required.join(", ")
                ),
            )
        }
        Err(error) => return Err(error.into()),
    };
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .map_err(|_| anyhow::anyhow!("set $EDITOR (or $VISUAL) to the editor to use"))?;
    let file = tempfile::Builder::new()
        .prefix("modelgate-card-")
        .suffix(".yaml")
        .tempfile()?;
    let mut text = format!(
        "# Model card of {model} version {version}. Save to submit; an empty file cancels.\n{required}# Schema: /api/v1/schemas/model-card.json\n{}",
        yaml_serde::to_string(&current)?
    );
    loop {
        std::fs::write(file.path(), &text)?;
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("editor")
            .arg(file.path())
            .status()
            .with_context(|| format!("cannot run the editor {editor:?}"))?;
        if !status.success() {
            anyhow::bail!("the editor exited with {status}; nothing was saved");
        }
        let edited = std::fs::read_to_string(file.path())?;
        let content: String = edited
            .lines()
            .filter(|line| !line.starts_with("#!"))
            .collect::<Vec<_>>()
            .join("\n");
        if content
            .lines()
            .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
        {
            eprintln!("empty card: cancelled, nothing saved");
            return Ok(());
        }
        let problems: Vec<String> = match yaml_serde::from_str::<serde_json::Value>(&content) {
            Err(error) => vec![format!("YAML: {error}")],
            Ok(card) => match client
                .set_card(
                    model,
                    version,
                    &api::SetModelCard {
                        card,
                        message: message.clone(),
                    },
                )
                .await
            {
                Ok(revision) => return printer.print(&revision, card_text),
                Err(modelgate_client::ClientError::Api {
                    details: Some(details),
                    message: text,
                    ..
                }) => details
                    .get("problems")
                    .and_then(|problems| problems.as_array())
                    .map(|problems| {
                        problems
                            .iter()
                            .map(|p| {
                                format!(
                                    "{}: {}",
                                    p["path"].as_str().unwrap_or(""),
                                    p["message"].as_str().unwrap_or("")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_else(|| vec![text]),
                Err(error) => return Err(error.into()),
            },
        };
        let header: String = problems
            .iter()
            .map(|problem| format!("#! {problem}\n"))
            .collect();
        text = format!(
            "#! The card was not saved; fix these problems (lines starting with #! are ignored):\n{header}{content}\n"
        );
    }
}

pub async fn dataset(
    client: &Client,
    printer: &Printer,
    command: DatasetCommand,
) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Register {
            name,
            file,
            label,
            task,
            features,
            sensitive,
            weight,
            positive_label,
            classes,
        } => {
            let (artifact, _) = client.upload_artifact(&file, None, None).await?;
            let request = api::RegisterDataset {
                name,
                digest: artifact.digest,
                format: None,
                schema: api::DatasetColumns {
                    task: Some(task),
                    label,
                    features,
                    sensitive,
                    weight,
                    positive_label,
                    classes,
                },
            };
            printer.print(&client.register_dataset(&request).await?, dataset_text)
        }
        DatasetCommand::Show { name } => {
            printer.print(&client.get_dataset(&name).await?, dataset_text)
        }
        DatasetCommand::List => printer.print(&client.list_datasets().await?, |list| {
            table(
                &["NAME", "ROWS", "LABEL", "SENSITIVE", "DIGEST"],
                list.datasets
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.clone(),
                            d.rows.to_string(),
                            d.schema.label.clone(),
                            d.schema.sensitive.join(","),
                            d.digest.clone(),
                        ]
                    })
                    .collect(),
            )
        }),
    }
}

fn dataset_text(dataset: &api::Dataset) -> String {
    let schema = &dataset.schema;
    let task = schema.task.unwrap_or(api::DatasetTask::Binary);
    let label = match task {
        api::DatasetTask::Binary => {
            format!("{} (positive: {})", schema.label, schema.positive_label)
        }
        api::DatasetTask::Multiclass if !schema.classes.is_empty() => {
            format!("{} (classes: {})", schema.label, schema.classes.join(", "))
        }
        _ => schema.label.clone(),
    };
    let mut text = fields(&[
        ("name", dataset.name.clone()),
        ("format", dataset.format.to_string()),
        ("task", task.to_string()),
        ("rows", dataset.rows.to_string()),
        ("digest", dataset.digest.clone()),
        ("label", label),
        ("features", schema.features.join(", ")),
        ("sensitive", schema.sensitive.join(", ")),
        ("weight", schema.weight.clone().unwrap_or_default()),
    ]);
    // The profile, one row per column: the reference reviewers (and, later, drift monitoring) compare with.
    let figure = |value: &serde_json::Value| {
        value
            .as_f64()
            .map_or_else(String::new, |number| format!("{number:.4}"))
    };
    let rows = dataset.profile["columns"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(column, summary)| {
            let top = summary["top"]
                .as_array()
                .into_iter()
                .flatten()
                .take(3)
                .filter_map(|entry| Some(format!("{} ({})", entry[0].as_str()?, entry[1])))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                column.clone(),
                summary["type"].as_str().unwrap_or_default().to_owned(),
                summary["nulls"].to_string(),
                figure(&summary["min"]),
                figure(&summary["mean"]),
                figure(&summary["quantiles"]["p50"]),
                figure(&summary["max"]),
                figure(&summary["std"]),
                summary["distinct"]
                    .as_u64()
                    .map_or_else(String::new, |distinct| distinct.to_string()),
                top,
            ]
        })
        .collect();
    text.push_str("\n\nprofile:\n");
    text.push_str(&table(
        &[
            "COLUMN", "TYPE", "NULLS", "MIN", "MEAN", "MEDIAN", "MAX", "STD", "DISTINCT", "TOP",
        ],
        rows,
    ));
    text
}

fn number(value: &serde_json::Value) -> String {
    match value.get("value").and_then(serde_json::Value::as_f64) {
        Some(v) => format!("{v:.4}"),
        None => format!(
            "— ({})",
            value
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("undefined")
        ),
    }
}

fn evaluation_text(evaluation: &api::Evaluation) -> String {
    let overall = &evaluation.results["overall"];
    let task = evaluation.results["task"].as_str().unwrap_or("binary");
    let names: &[&str] = match task {
        "multiclass" => &["accuracy", "macro_f1", "weighted_f1", "log_loss"],
        "regression" => &["mae", "rmse", "r2", "mape"],
        _ => &[
            "accuracy",
            "balanced_accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "average_precision",
            "log_loss",
            "brier_score",
            "expected_calibration_error",
        ],
    };
    let rows = evaluation.results["by_group"]
        .as_object()
        .and_then(|groups| groups.values().next())
        .and_then(|segments| segments.as_array())
        .map_or(0, |segments| {
            segments
                .iter()
                .filter_map(|segment| segment["count"].as_u64())
                .sum::<u64>()
        });
    let mut text = format!(
        "evaluation {} of {} version {} on {} ({} rows, verified, {})\n",
        evaluation.id,
        evaluation.model,
        evaluation.version,
        evaluation.dataset,
        overall["count"].as_u64().unwrap_or(rows),
        evaluation.engine
    );
    // What it was computed from, so anyone can recompute it.
    for (name, value) in evaluation.inputs.as_object().into_iter().flatten() {
        text.push_str(&format!(
            "  {name}: {}\n",
            value.as_str().unwrap_or_default()
        ));
    }
    let settings: Vec<String> = evaluation
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, value)| !value.is_string() || value.as_str() != Some(""))
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    text.push_str(&format!(
        "  settings: {}\n  evaluation digest: {}\n\n",
        settings.join(", "),
        evaluation.digest
    ));
    let intervals = &evaluation.results["intervals"];
    let interval = |name: &str| {
        let interval = &intervals[name];
        match (interval["low"].as_f64(), interval["high"].as_f64()) {
            (Some(low), Some(high)) => format!("[{low:.4}, {high:.4}]"),
            _ => String::new(),
        }
    };
    let group_columns: &[(&str, &str)] = match task {
        "multiclass" => &[
            ("ACCURACY", "accuracy"),
            ("MACRO F1", "macro_f1"),
            ("LOG LOSS", "log_loss"),
        ],
        "regression" => &[("MAE", "mae"), ("RMSE", "rmse"), ("R2", "r2")],
        _ => &[
            ("ACCURACY", "accuracy"),
            ("RECALL", "recall"),
            ("ROC AUC", "roc_auc"),
            ("SELECTION RATE", "selection_rate"),
        ],
    };
    text.push_str(&table(
        &["METRIC", "VALUE", "95% INTERVAL"],
        names
            .iter()
            .map(|name| vec![(*name).to_owned(), number(&overall[*name]), interval(name)])
            .collect(),
    ));
    for (attribute, groups) in evaluation.results["by_group"]
        .as_object()
        .into_iter()
        .flatten()
    {
        text.push_str(&format!("\n\nby {attribute}:\n"));
        let headers: Vec<&str> = ["GROUP", "ROWS"]
            .into_iter()
            .chain(group_columns.iter().map(|(header, _)| *header))
            .collect();
        text.push_str(&table(
            &headers,
            groups
                .as_array()
                .into_iter()
                .flatten()
                .map(|group| {
                    let metrics = &group["metrics"];
                    let name = format!(
                        "{}{}",
                        group["group"].as_str().unwrap_or(""),
                        if group["small"] == true {
                            " (small)"
                        } else {
                            ""
                        }
                    );
                    [name, group["count"].to_string()]
                        .into_iter()
                        .chain(
                            group_columns
                                .iter()
                                .map(|(_, metric)| number(&metrics[*metric])),
                        )
                        .collect()
                })
                .collect(),
        ));
        let fairness = &evaluation.results["fairness"][attribute];
        if fairness.is_null() {
            continue;
        }
        let with_interval = |metric: &str| {
            let bounds = interval(&format!("{attribute}.{metric}"));
            if bounds.is_empty() {
                number(&fairness[metric])
            } else {
                format!("{} {bounds}", number(&fairness[metric]))
            }
        };
        text.push_str(&format!(
            "\nfairness by {attribute}: demographic parity difference {}, ratio {}; equalized odds difference {}; four-fifths rule {}",
            with_interval("demographic_parity_difference"),
            number(&fairness["demographic_parity_ratio"]),
            with_interval("equalized_odds_difference"),
            match fairness["four_fifths_holds"].as_bool() { Some(true) => "holds", Some(false) => "FAILS", None => "undefined" }
        ));
    }
    let robustness = &evaluation.results["robustness"];
    if robustness.is_object() {
        text.push_str("\n\nrobustness (the model rerun on perturbed inputs):\n");
        let delta = |value: &serde_json::Value| {
            value
                .as_f64()
                .map_or_else(|| "—".to_owned(), |v| format!("{v:+.4}"))
        };
        // (header, field, shown as a change): per task, what the perturbations moved.
        let columns: &[(&str, &str, bool)] = match task {
            "regression" => &[
                ("MEAN |Δ PREDICTION|", "mean_absolute_change", false),
                ("MAE Δ", "mae_delta", true),
                ("RMSE Δ", "rmse_delta", true),
                ("R2 Δ", "r2_delta", true),
            ],
            "multiclass" => &[
                ("CLASSES CHANGED", "flip_rate", false),
                ("ACCURACY Δ", "accuracy_delta", true),
                ("MACRO F1 Δ", "macro_f1_delta", true),
            ],
            _ => &[
                ("DECISIONS FLIPPED", "flip_rate", false),
                ("ACCURACY Δ", "accuracy_delta", true),
                ("ROC AUC Δ", "roc_auc_delta", true),
            ],
        };
        let row = |name: String, entry: &serde_json::Value| -> Vec<String> {
            std::iter::once(name)
                .chain(columns.iter().map(|(_, field, is_delta)| {
                    if *is_delta {
                        delta(&entry[*field])
                    } else {
                        entry[*field]
                            .as_f64()
                            .map_or_else(|| "—".to_owned(), |v| format!("{v:.4}"))
                    }
                }))
                .collect()
        };
        let noise = robustness["noise"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| row(format!("noise {} sd", entry["level"]), entry));
        let ablation = robustness["feature_ablation"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|entry| {
                row(
                    format!("{} set to median", entry["feature"].as_str().unwrap_or("")),
                    entry,
                )
            });
        let headers: Vec<&str> = std::iter::once("PERTURBATION")
            .chain(columns.iter().map(|(header, _, _)| *header))
            .collect();
        text.push_str(&table(&headers, noise.chain(ablation).collect()));
    }
    for warning in evaluation.results["warnings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        text.push_str(&format!("\nwarning: {}", warning.as_str().unwrap_or("")));
    }
    text
}

pub async fn eval(client: &Client, printer: &Printer, command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Run {
            model,
            version,
            dataset,
            predictions,
            score_column,
            prediction_column,
            threshold,
            intersections,
            bootstrap,
            seed,
            wait,
        } => {
            let intersections = intersections
                .iter()
                .map(|pair| match pair.split_once(',') {
                    Some((first, second)) if !first.trim().is_empty() && !second.trim().is_empty() => {
                        Ok([first.trim().to_owned(), second.trim().to_owned()])
                    }
                    _ => Err(anyhow::anyhow!(
                        "--intersect {pair:?}: name two sensitive attributes separated by a comma, as --intersect sex,race"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let predictions_digest = match &predictions {
                Some(file) => Some(client.upload_artifact(file, None, None).await?.0.digest),
                None => None,
            };
            let request = api::RunEvaluation {
                model,
                version,
                dataset,
                predictions_digest,
                score_column,
                prediction_column,
                threshold: Some(threshold),
                bins: None,
                minimum_group_size: None,
                bootstrap_resamples: Some(bootstrap),
                seed: Some(seed),
                intersections,
                wait: false,
            };
            let job = client.start_evaluation(&request).await?;
            if wait {
                wait_for_evaluation(client, printer, job.id).await
            } else {
                printer.print(&job, job_text)
            }
        }
        EvalCommand::Show { id } => {
            printer.print(&client.get_evaluation(id).await?, evaluation_text)
        }
        EvalCommand::List { model, version } => {
            printer.print(&client.list_evaluations(&model, version).await?, |list| {
                table(
                    &[
                        "ID", "DATASET", "MODE", "TASK", "HEADLINE", "CREATED", "DIGEST",
                    ],
                    list.evaluations
                        .iter()
                        .map(|evaluation| {
                            let results = &evaluation.results;
                            let task = results["task"].as_str().unwrap_or("binary");
                            let metric = match task {
                                "regression" => "mae",
                                "multiclass" => "macro_f1",
                                _ => "roc_auc",
                            };
                            vec![
                                evaluation.id.to_string(),
                                evaluation.dataset.clone(),
                                evaluation.mode.to_string(),
                                task.to_owned(),
                                format!("{metric} {}", number(&results["overall"][metric])),
                                evaluation.created_at.clone(),
                                evaluation.digest.clone(),
                            ]
                        })
                        .collect(),
                )
            })
        }
        EvalCommand::Jobs {
            state,
            model,
            limit,
        } => printer.print(
            &client
                .list_evaluation_jobs(&api::JobListQuery {
                    state,
                    model,
                    limit: Some(limit),
                })
                .await?,
            |list| {
                table(
                    &[
                        "JOB",
                        "STATE",
                        "PERCENT",
                        "PHASE",
                        "MODEL",
                        "VERSION",
                        "DATASET",
                        "EVALUATION",
                        "CREATED",
                    ],
                    list.jobs
                        .iter()
                        .map(|job| {
                            vec![
                                job.id.to_string(),
                                job.state.to_string(),
                                format!("{:.0}", job.percent),
                                job.phase.clone(),
                                job.model.clone(),
                                job.version.to_string(),
                                job.dataset.clone(),
                                job.evaluation_id
                                    .map_or_else(String::new, |id| id.to_string()),
                                job.created_at.clone(),
                            ]
                        })
                        .collect(),
                )
            },
        ),
        EvalCommand::Job { id } => printer.print(&client.get_evaluation_job(id).await?, job_text),
        EvalCommand::Wait { id } => wait_for_evaluation(client, printer, id).await,
        EvalCommand::Cancel { id } => {
            printer.print(&client.cancel_evaluation_job(id).await?, job_text)
        }
        EvalCommand::Mark { id, status, reason } => {
            let marked = client
                .mark_evaluation(id, &api::MarkEvaluation { status, reason })
                .await?;
            printer.print(&marked, |evaluation| {
                format!(
                    "evaluation {} on {} is {}{}",
                    evaluation.id,
                    evaluation.dataset,
                    evaluation.status,
                    evaluation
                        .status_reason
                        .as_ref()
                        .map(|reason| format!(": {reason}"))
                        .unwrap_or_default()
                )
            })
        }
    }
}

fn job_text(job: &api::EvaluationJob) -> String {
    let mut text = format!(
        "evaluation job {}: {} ({:.0} %, {}) — {} {} on {}",
        job.id, job.state, job.percent, job.phase, job.model, job.version, job.dataset
    );
    if let Some(message) = &job.message {
        text.push_str(&format!("\n{message}"));
    }
    match (job.state.as_str(), job.evaluation_id) {
        (_, Some(evaluation)) => {
            text.push_str(&format!("\nshow it: modelgate eval show {evaluation}"))
        }
        ("queued" | "running", None) => text.push_str(&format!(
            "\nfollow it: modelgate eval wait {id}   (or cancel it: modelgate eval cancel {id})",
            id = job.id
        )),
        _ => {}
    }
    text
}

/// Polls a job until it ends, drawing its progress on a terminal; Ctrl-C cancels the job. Prints the
/// evaluation when it succeeded; a failed job is the command's error, as the API stated it.
async fn wait_for_evaluation(client: &Client, printer: &Printer, id: i64) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "evaluation [{bar:30}] {percent:>3}% {msg} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let job = loop {
        let job = client.get_evaluation_job(id).await?;
        if let Some(bar) = &bar {
            bar.set_position((job.percent * 10.0) as u64);
            bar.set_message(job.phase.clone());
        }
        if !matches!(job.state.as_str(), "queued" | "running") {
            break job;
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            _ = &mut interrupted => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                client.cancel_evaluation_job(id).await?;
                anyhow::bail!("interrupted: asked the server to cancel evaluation job {id}");
            }
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match (job.state.as_str(), job.evaluation_id, job.error) {
        ("succeeded", Some(evaluation), _) => {
            printer.print(&client.get_evaluation(evaluation).await?, evaluation_text)
        }
        (_, _, Some(error)) => Err(modelgate_client::ClientError::Api {
            status: 400,
            code: error.code,
            message: error.message,
            details: error.details,
        }
        .into()),
        (state, _, None) => anyhow::bail!(
            "evaluation job {id} {state}: {}",
            job.message.unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::evaluation_text;
    use serde_json::json;

    #[test]
    fn evaluation_text_shows_robustness_rows_when_the_model_was_rerun() {
        let mut evaluation: modelgate_api::Evaluation = serde_json::from_value(json!({
            "id": 3, "model": "churn", "version": 1, "dataset": "holdout", "mode": "model", "verified": true,
            "inputs": {}, "settings": {}, "engine": "modelgate-eval 0.1.0", "digest": "sha256:00",
            "created_by": "dev", "created_at": "2026-11-27T00:00:00Z",
            "results": {
                "overall": { "count": 10 },
                "robustness": {
                    "noise": [{ "level": 0.1, "flip_rate": 0.25, "accuracy_delta": -0.05, "roc_auc_delta": null }],
                    "feature_ablation": [{ "feature": "income", "flip_rate": 0.5, "accuracy_delta": 0.0, "roc_auc_delta": -0.125 }],
                    "max_noise_flip_rate": 0.25,
                },
            },
        }))
        .unwrap();
        let text = evaluation_text(&evaluation);
        assert!(text.contains("noise 0.1 sd"), "{text}");
        assert!(text.contains("evaluation digest: sha256:00"), "{text}");
        assert!(
            text.contains("0.2500") && text.contains("-0.0500"),
            "{text}"
        );
        assert!(
            text.contains("income set to median") && text.contains("-0.1250"),
            "{text}"
        );
        evaluation.results["robustness"] = serde_json::Value::Null;
        assert!(!evaluation_text(&evaluation).contains("robustness"));
    }

    #[test]
    fn evaluation_text_shows_the_metrics_of_the_task() {
        let evaluation: modelgate_api::Evaluation = serde_json::from_value(json!({
            "id": 4, "model": "iris", "version": 2, "dataset": "species", "mode": "predictions", "verified": true,
            "inputs": {}, "settings": {}, "engine": "modelgate-eval 0.1.0", "digest": "sha256:00",
            "created_by": "dev", "created_at": "2026-11-27T00:00:00Z",
            "results": {
                "task": "multiclass",
                "overall": { "accuracy": { "value": 0.9 }, "macro_f1": { "value": 0.875 }, "weighted_f1": { "value": 0.88 }, "log_loss": { "value": null, "reason": "no probabilities" } },
                "by_group": { "site": [
                    { "group": "north", "count": 12, "small": true, "metrics": { "accuracy": { "value": 1.0 }, "macro_f1": { "value": 1.0 } } },
                    { "group": "south", "count": 40, "small": false, "metrics": { "accuracy": { "value": 0.85 }, "macro_f1": { "value": 0.8 } } },
                ] },
                "warnings": [],
            },
        }))
        .unwrap();
        let text = evaluation_text(&evaluation);
        assert!(text.contains("(52 rows"), "{text}");
        assert!(
            text.contains("macro_f1") && text.contains("0.8750"),
            "{text}"
        );
        assert!(
            text.contains("MACRO F1") && text.contains("north (small)"),
            "{text}"
        );
        assert!(
            !text.contains("roc_auc") && !text.contains("fairness"),
            "{text}"
        );
    }
}
