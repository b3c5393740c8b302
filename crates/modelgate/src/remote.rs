//! Commands that talk to a server through the API client.

use crate::cli::{
    KpiCommand, ListModelsArgs, LoginArgs, ModelCommand, MonitorCommand, PushArgs, TokenCommand,
    UserCommand, VersionCommand, WebhookCommand,
};
use crate::offline::read_password_stdin;
use crate::output::{self, Printer};
use crate::profile;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use modelgate_api as api;
use modelgate_client::{Client, Progress};
use std::io::IsTerminal;
use std::sync::Arc;

/// A progress bar with throughput on standard error when it is a terminal; nothing otherwise.
fn progress_bar(total: u64, label: &str) -> Option<(ProgressBar, Progress)> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label.to_owned());
    let handle = bar.clone();
    Some((bar, Arc::new(move |bytes| handle.inc(bytes))))
}

fn format_from_extension(file: &std::path::Path) -> String {
    match file
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(ext) if ext == "pkl" => "pickle".to_owned(),
        Some(ext) if ext == "gz" || ext == "tgz" => "tar".to_owned(),
        Some(ext) if !ext.is_empty() => ext,
        _ => "binary".to_owned(),
    }
}

pub async fn login(
    server: &str,
    given_token: Option<String>,
    args: LoginArgs,
) -> anyhow::Result<()> {
    let client = Client::new(server, None)?;
    let token = match args.username {
        Some(username) => {
            let password = if args.password_stdin {
                read_password_stdin()?
            } else {
                rpassword::prompt_password(format!("password for {username}: "))
                    .context("cannot read the password")?
            };
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "cli".to_owned());
            let created = client
                .login(&api::LoginRequest {
                    username,
                    password,
                    token_name: Some(format!("cli-login@{host}")),
                    expires_in_days: None,
                })
                .await?;
            created.secret
        }
        None => {
            let Some(token) = given_token else {
                bail!(
                    "give --username to log in with a password, or --token to save an existing token"
                );
            };
            token
        }
    };
    let checked = Client::new(client.server(), Some(token.clone()))?;
    let who = checked.whoami().await?;
    let path = profile::save(&profile::Profile {
        server: Some(client.server().to_owned()),
        token: Some(token),
    })?;
    eprintln!(
        "logged in to {} as {} ({}); saved to {}",
        client.server(),
        who.user.username,
        who.user.printed_name,
        path.display()
    );
    Ok(())
}

pub async fn whoami(client: &Client, printer: &Printer) -> anyhow::Result<()> {
    let who = client.whoami().await?;
    printer.print(&who, |who| output::user(&who.user))
}

pub async fn model(
    client: &Client,
    printer: &Printer,
    command: ModelCommand,
) -> anyhow::Result<()> {
    match command {
        ModelCommand::Create {
            name,
            owner,
            risk_tier,
            description,
            intended_use,
            tags,
        } => {
            let request = api::CreateModelRequest {
                name,
                owner,
                risk_tier,
                description,
                intended_use,
                tags: tags.into_iter().collect(),
            };
            let model = client.create_model(&request).await?;
            printer.print(&model, output::model)
        }
        ModelCommand::List(args) => list_models(client, printer, args).await,
        ModelCommand::Show { name } => {
            printer.print(&client.get_model(&name).await?, output::model)
        }
        ModelCommand::Update {
            name,
            description,
            intended_use,
            owner,
            risk_tier,
        } => {
            let request = api::UpdateModelRequest {
                description,
                intended_use,
                owner,
                risk_tier,
            };
            printer.print(&client.update_model(&name, &request).await?, output::model)
        }
        ModelCommand::Tag { name, key, value } => printer.print(
            &client.set_model_tag(&name, &key, &value).await?,
            output::model,
        ),
        ModelCommand::Untag { name, key } => {
            printer.print(&client.delete_model_tag(&name, &key).await?, output::model)
        }
        ModelCommand::Archive { name } => {
            printer.print(&client.archive_model(&name).await?, output::model)
        }
    }
}

async fn list_models(
    client: &Client,
    printer: &Printer,
    args: ListModelsArgs,
) -> anyhow::Result<()> {
    let mut query = api::ListModelsQuery {
        name_prefix: args.name_prefix,
        owner: args.owner,
        risk_tier: args.risk_tier,
        stage: args.stage,
        tag: args.tag,
        include_archived: Some(args.include_archived),
        limit: Some(args.limit),
        cursor: args.cursor,
    };
    let mut page = client.list_models(&query).await?;
    if args.all {
        while let Some(cursor) = page.next_cursor.take() {
            query.cursor = Some(cursor);
            let next = client.list_models(&query).await?;
            page.models.extend(next.models);
            page.next_cursor = next.next_cursor;
        }
    }
    printer.print(&page, |page| {
        let mut text = output::models(&page.models);
        if let Some(cursor) = &page.next_cursor {
            text.push_str(&format!("\n(more: --cursor {cursor}, or --all)"));
        }
        text
    })
}

pub async fn version(
    client: &Client,
    printer: &Printer,
    command: VersionCommand,
) -> anyhow::Result<()> {
    match command {
        VersionCommand::Push(args) => push(client, printer, *args).await,
        VersionCommand::List { model, stage, tag } => {
            let mut query = api::ListVersionsQuery {
                stage,
                tag,
                limit: Some(500),
                cursor: None,
            };
            let mut list = client.list_versions(&model, &query).await?;
            while let Some(cursor) = list.next_cursor.take() {
                query.cursor = Some(cursor);
                let next = client.list_versions(&model, &query).await?;
                list.versions.extend(next.versions);
                list.next_cursor = next.next_cursor;
            }
            printer.print(&list, |list| output::versions(&list.versions))
        }
        VersionCommand::Show { model, version } => printer.print(
            &client.get_version(&model, &version).await?,
            output::version,
        ),
        VersionCommand::Scan { model, version } => printer.print(
            &client.get_version_scan(&model, &version).await?,
            output::scan_report,
        ),
        VersionCommand::Download {
            model,
            version,
            out,
        } => {
            let described = client.get_version(&model, &version).await?;
            let bar = progress_bar(described.size_bytes, "download");
            let progress = bar.as_ref().map(|(_, progress)| progress.clone());
            let result = client
                .download_version(&model, &version, &out, progress)
                .await;
            if let Some((bar, _)) = bar {
                bar.finish_and_clear();
            }
            let downloaded = result?;
            eprintln!(
                "downloaded {} version {} to {} ({} bytes, {} verified)",
                downloaded.model,
                downloaded.version,
                out.display(),
                downloaded.size_bytes,
                downloaded.digest
            );
            printer.print(&downloaded, |_| String::new())
        }
        VersionCommand::Tag {
            model,
            version,
            key,
            value,
        } => printer.print(
            &client
                .set_version_tag(&model, &version, &key, &value)
                .await?,
            output::version,
        ),
        VersionCommand::Suspend {
            model,
            version,
            reason,
        } => printer.print(
            &client
                .set_suspension(&model, &version, Some(&reason))
                .await?,
            output::version,
        ),
        VersionCommand::Rollback {
            model,
            stage,
            justification,
        } => {
            let request = client.rollback(&model, stage, &justification).await?;
            printer.print(&request, |request| {
                format!(
                    "rollback request {} for {} version {} into {}: {}",
                    request.id, request.model, request.version, request.target_stage, request.state
                )
            })
        }
        VersionCommand::Reinstate { model, version } => printer.print(
            &client.set_suspension(&model, &version, None).await?,
            output::version,
        ),
        VersionCommand::Archive { model, version } => printer.print(
            &client.archive_version(&model, &version).await?,
            output::version,
        ),
    }
}

async fn push(client: &Client, printer: &Printer, args: PushArgs) -> anyhow::Result<()> {
    let metadata = match &args.metadata_json {
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => bail!("--metadata-json must be a JSON object"),
            Err(error) => bail!("--metadata-json is not valid JSON: {error}"),
        },
        None => serde_json::Map::new(),
    };
    // Fail on an unknown model before sending gigabytes.
    client.get_model(&args.model).await?;
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let bar = progress_bar(size, "upload");
    let progress = bar.as_ref().map(|(_, progress)| progress.clone());
    let result = client
        .upload_artifact(&args.file, args.expect_digest.as_deref(), progress)
        .await;
    if let Some((bar, _)) = bar {
        bar.finish_and_clear();
    }
    let (artifact, _) = result?;
    eprintln!(
        "artifact {}: scanned, verdict {}{}",
        artifact.digest,
        artifact.scan_verdict,
        if artifact.scan_verdict == api::ScanVerdict::Clean {
            ""
        } else {
            " (see `modelgate version scan` once the version is registered)"
        }
    );
    let request = api::CreateVersionRequest {
        digest: artifact.digest,
        format: Some(
            args.format
                .unwrap_or_else(|| format_from_extension(&args.file)),
        ),
        media_type: args.media_type,
        lineage: api::Lineage {
            code_repository: args.code_repository,
            code_commit: args.code_commit,
            training_data_uri: args.training_data_uri,
            training_data_digest: args.training_data_digest,
            parameters: args.parameters.into_iter().collect(),
            metadata,
        },
        description: args.description,
        tags: args.tags.into_iter().collect(),
    };
    let version = client.create_version(&args.model, &request).await?;
    let (Some(stage), Some(justification)) = (args.request, args.justification) else {
        return printer.print(&version, output::version);
    };
    eprintln!(
        "registered {} version {}; opening a request into {stage}",
        version.model, version.version
    );
    let opened = client
        .open_request(&api::OpenRequest {
            model: version.model.clone(),
            version: version.version,
            stage,
            justification,
        })
        .await?;
    printer.print(&opened, crate::promote::request_text)
}

pub async fn user(client: &Client, printer: &Printer, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create {
            username,
            printed_name,
            email,
            roles,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password_stdin).transpose()?;
            let request = api::CreateUserRequest {
                username,
                printed_name,
                email,
                roles,
                password,
            };
            printer.print(&client.create_user(&request).await?, output::user)
        }
        UserCommand::List => printer.print(&client.list_users().await?, |list| {
            output::users(&list.users)
        }),
        UserCommand::Show { username } => {
            printer.print(&client.get_user(&username).await?, output::user)
        }
        UserCommand::Update {
            username,
            printed_name,
            email,
            roles,
            deactivate,
            activate,
            password_stdin,
        } => {
            let request = api::UpdateUserRequest {
                printed_name,
                email,
                roles: (!roles.is_empty()).then_some(roles),
                active: if deactivate {
                    Some(false)
                } else if activate {
                    Some(true)
                } else {
                    None
                },
                password: password_stdin.then(read_password_stdin).transpose()?,
                current_password: None,
            };
            printer.print(
                &client.update_user(&username, &request).await?,
                output::user,
            )
        }
        UserCommand::Passwd {
            current_password_stdin,
        } => {
            let (current, new) = if current_password_stdin {
                read_two_passwords_stdin()?
            } else {
                let current = rpassword::prompt_password("current password: ")
                    .context("cannot read the password; use --current-password-stdin in scripts")?;
                let new = rpassword::prompt_password("new password (at least 12 characters): ")
                    .context("cannot read the password")?;
                let again = rpassword::prompt_password("new password again: ")
                    .context("cannot read the password")?;
                if new != again {
                    anyhow::bail!("the two new passwords differ; nothing was changed");
                }
                (current, new)
            };
            let me = client.whoami().await?.user.username;
            let request = api::UpdateUserRequest {
                password: Some(new),
                current_password: Some(current),
                ..api::UpdateUserRequest::default()
            };
            let user = client.update_user(&me, &request).await?;
            printer.print(&user, |user| {
                format!("changed the password of {}; it may sign", user.username)
            })
        }
    }
}

/// Reads the current password (first line) and a new one (second line) from standard input.
fn read_two_passwords_stdin() -> anyhow::Result<(String, String)> {
    let mut lines = std::io::stdin().lines();
    let mut next = |what: &str| -> anyhow::Result<String> {
        let line = lines
            .next()
            .transpose()
            .context("cannot read standard input")?
            .unwrap_or_default();
        let line = line.trim_end_matches('\r').to_owned();
        if line.is_empty() {
            anyhow::bail!(
                "no {what} on standard input (current password on line 1, new on line 2)"
            );
        }
        Ok(line)
    };
    let current = next("current password")?;
    let new = next("new password")?;
    Ok((current, new))
}

pub async fn token(
    client: &Client,
    printer: &Printer,
    command: TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            expires_in_days,
            user,
        } => {
            let request = api::CreateTokenRequest {
                name,
                expires_in_days: Some(expires_in_days),
                username: user,
            };
            let created = client.create_token(&request).await?;
            // Only the secret on standard output, so that `TOKEN=$(modelgate token create …)` works.
            printer.print(&created, |created| {
                eprintln!(
                    "token {} for {}, expires {}; the secret is shown only once",
                    created.token.id,
                    created.token.username,
                    created.token.expires_at.as_deref().unwrap_or("never")
                );
                created.secret.clone()
            })
        }
        TokenCommand::List { all } => printer.print(&client.list_tokens(all).await?, |list| {
            output::tokens(&list.tokens)
        }),
        TokenCommand::Revoke { id } => {
            let token = client.revoke_token(&id).await?;
            printer.print(&token, |token| {
                format!("revoked {} ({})", token.id, token.name)
            })
        }
    }
}

/// A webhook secret from a file: whsec_ and base64, surrounding whitespace ignored.
fn read_webhook_secret(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--secret-file {}: cannot read it", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!(
            "--secret-file {}: the file is empty; put whsec_ followed by base64 of 24 to 64 random bytes in it",
            path.display()
        );
    }
    Ok(secret.to_owned())
}

pub async fn webhook(
    client: &Client,
    printer: &Printer,
    command: WebhookCommand,
) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Create {
            url,
            events,
            model,
            secret_file,
        } => {
            let secret = secret_file
                .as_deref()
                .map(read_webhook_secret)
                .transpose()?;
            let request = api::CreateWebhookRequest {
                url,
                events: events
                    .iter()
                    .map(|event| event.trim().to_owned())
                    .filter(|event| !event.is_empty())
                    .collect(),
                model,
                secret,
            };
            let created = client.create_webhook(&request).await?;
            printer.print(&created, created_webhook_text)
        }
        WebhookCommand::List => printer.print(&client.list_webhooks().await?, |list| {
            output::webhooks(&list.webhooks)
        }),
        WebhookCommand::Delete { id } => {
            client.delete_webhook(&id).await?;
            printer.print(&serde_json::json!({ "deleted": id }), |_| {
                format!("deleted webhook {id}")
            })
        }
        WebhookCommand::Test { id } => {
            let test = client.test_webhook(&id).await?;
            printer.print(&test, |test| {
                format!(
                    "test event {} recorded (audit entry {}); `modelgate webhook deliveries {id}` shows its delivery",
                    test.event_id, test.seq
                )
            })
        }
        WebhookCommand::Deliveries { id } => printer
            .print(&client.webhook_deliveries(&id).await?, |list| {
                output::webhook_deliveries(&list.deliveries)
            }),
        WebhookCommand::Rotate {
            id,
            secret_file,
            overlap_hours,
        } => {
            let secret = secret_file
                .as_deref()
                .map(read_webhook_secret)
                .transpose()?;
            let request = api::RotateWebhookSecretRequest {
                secret,
                overlap_hours: Some(overlap_hours),
            };
            let rotated = client.rotate_webhook_secret(&id, &request).await?;
            printer.print(&rotated, created_webhook_text)
        }
        WebhookCommand::EventTypes => printer
            .print(&client.webhook_event_types().await?, |types| {
                types.event_types.join("\n")
            }),
    }
}

/// A new subscription or secret: the id on standard error, a generated secret alone on standard output
/// (so that `SECRET=$(modelgate webhook create …)` works), shown this once.
fn created_webhook_text(created: &api::CreatedWebhook) -> String {
    let webhook = &created.webhook;
    eprintln!(
        "webhook {} → {} for {}{}",
        webhook.id,
        webhook.url,
        webhook.events.join(","),
        webhook
            .model
            .as_deref()
            .map(|model| format!(" (model {model})"))
            .unwrap_or_default()
    );
    match &created.secret {
        Some(secret) => {
            eprintln!(
                "the signing secret is shown only once; keep it where the receiver can read it"
            );
            secret.clone()
        }
        None => String::new(),
    }
}

/// Uploads a batch or outcomes file with a progress bar; its digest.
async fn upload_monitoring_file(
    client: &Client,
    file: &std::path::Path,
    what: &str,
) -> anyhow::Result<String> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("{}: cannot read the {what}", file.display()))?
        .len();
    let bar = progress_bar(size, "upload");
    let (artifact, _) = client
        .upload_artifact(
            file,
            None,
            bar.as_ref().map(|(_, progress)| progress.clone()),
        )
        .await?;
    if let Some((bar, _)) = bar {
        bar.finish_and_clear();
    }
    Ok(artifact.digest)
}

pub async fn monitor(
    client: &Client,
    printer: &Printer,
    command: MonitorCommand,
) -> anyhow::Result<()> {
    match command {
        MonitorCommand::Push {
            model,
            version,
            file,
            reference,
            label_column,
            row_id_column,
            score_column,
            wait: _,
        } => {
            let digest = upload_monitoring_file(client, &file, "batch").await?;
            let batch = client
                .push_monitoring_batch(
                    &model,
                    version,
                    &api::PushMonitoringBatch {
                        digest,
                        reference,
                        label_column,
                        row_id_column,
                        score_column,
                    },
                )
                .await?;
            printer.print(&batch, output::monitoring_batch)?;
            if !batch.breaches.is_empty() {
                // Scripts tell a breach from a clean batch by the exit status.
                std::process::exit(4);
            }
            Ok(())
        }
        MonitorCommand::Outcomes {
            model,
            version,
            file,
            row_id_column,
            label_column,
        } => {
            let digest = upload_monitoring_file(client, &file, "outcomes file").await?;
            let outcomes = client
                .record_outcomes(
                    &model,
                    version,
                    &api::RecordOutcomes {
                        digest,
                        row_id_column,
                        label_column,
                    },
                )
                .await?;
            printer.print(&outcomes, output::monitoring_outcomes)?;
            if !outcomes.breaches.is_empty() {
                std::process::exit(4);
            }
            Ok(())
        }
        MonitorCommand::Show { model, version } => printer.print(
            &client.monitoring(&model, version).await?,
            output::monitoring_state,
        ),
    }
}

pub async fn kpi(client: &Client, printer: &Printer, command: KpiCommand) -> anyhow::Result<()> {
    match command {
        KpiCommand::Record {
            model,
            name,
            value,
            at,
            version,
        } => {
            let observation = client
                .record_kpi(
                    &model,
                    &api::RecordKpi {
                        name,
                        value,
                        at,
                        version,
                    },
                )
                .await?;
            printer.print(&observation, |observation| {
                let mut text = format!(
                    "{} = {} at {}",
                    observation.name, observation.value, observation.observed_at
                );
                for breach in &observation.breaches {
                    text.push_str(&format!("\nbreach ({}): {}", breach.action, breach.reason));
                }
                text
            })
        }
    }
}
