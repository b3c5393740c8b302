//! Commands that work on the store directly, without a server: `serve`, `migrate` and `admin …`.

use crate::cli::{
    AdminCommand, AdminCreateTokenArgs, AdminCreateUserArgs, AdminVerifyArgs, RuntimeCommand,
    ServeArgs, StorageArgs,
};
use anyhow::{Context, bail};
use modelgate_core::{NewUser, Role, TokenName, Username};
use modelgate_server::auth::{hash_password, new_token_secret, token_secret_hash};
use modelgate_server::{PreparedServer, ServeOptions, open_store, system_now};
use modelgate_store::{Attribution, Store};
use std::io::IsTerminal as _;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if args.checkpoint_interval == 0 {
        bail!("--checkpoint-interval must be at least 1 second");
    }
    let options = ServeOptions {
        database_url: args.storage.database_url,
        artifact_store: args.artifact_store,
        max_upload_bytes: args.max_upload_bytes,
        max_dataset_bytes: args.max_dataset_bytes,
        dataset_limits: modelgate_server::DatasetLimits {
            max_columns: args.max_dataset_columns,
            max_cell_bytes: args.max_dataset_cell_bytes,
            max_rows: args.max_dataset_rows,
            max_profile_bytes: args.max_dataset_profile_bytes,
            ..modelgate_server::DatasetLimits::DEFAULT
        },
        signing_key: args.signing_key,
        audit_origin: args.audit_origin,
        checkpoint_interval: std::time::Duration::from_secs(args.checkpoint_interval),
        onnxruntime_library: crate::runtime::prepare_for_serve(
            args.onnxruntime_library.as_deref(),
            &args.storage.data_dir,
            args.offline,
        )
        .await,
        max_token_days: args.max_token_days,
        sessions: modelgate_server::ui::SessionSettings {
            idle: std::time::Duration::from_secs(args.session_idle_minutes * 60),
            lifetime: std::time::Duration::from_secs(args.session_max_hours * 3600),
            public_url: args.public_url.clone(),
        },
        webhooks: modelgate_server::webhooks::WebhookSettings {
            allow_hosts: args.webhook_allow_hosts.clone(),
            timeout: std::time::Duration::from_secs(args.webhook_timeout),
            backoff_base: std::time::Duration::from_millis(args.webhook_backoff_ms),
            ..modelgate_server::webhooks::WebhookSettings::default()
        },
        mlflow: modelgate_server::mlflow::MlflowSettings {
            default_risk_tier: match args.mlflow_default_risk_tier {
                modelgate_api::RiskTier::Low => modelgate_core::RiskTier::Low,
                modelgate_api::RiskTier::Medium => modelgate_core::RiskTier::Medium,
                modelgate_api::RiskTier::High => modelgate_core::RiskTier::High,
                modelgate_api::RiskTier::Critical => modelgate_core::RiskTier::Critical,
            },
        },
        ..ServeOptions::new(args.storage.data_dir, args.listen)
    };
    let server = PreparedServer::prepare(&options).await?;
    let address = server.local_addr()?;
    if let Some(token) = server.bootstrap_token() {
        // Printed once, on standard output so a script can capture it; only its hash is stored.
        println!(
            "Created the first user, `admin`. Its API token (shown once, stored only as a hash):"
        );
        println!("{token}");
        println!("Use it with: export MODELGATE_SERVER=http://{address} MODELGATE_TOKEN={token}");
    }
    if let Some(notice) = server.admin_notice() {
        eprintln!("{notice}");
    }
    tracing::info!(%address, data_dir = %options.data_dir.display(), "modelgate is listening");
    eprintln!(
        "modelgate listening on http://{address} (web UI at http://{address}/, API docs at \
         http://{address}/api/docs; the web UI signs in with a password: \
         `modelgate user update NAME --password-stdin` sets one)"
    );
    server.run(modelgate_server::shutdown_signal()).await?;
    Ok(())
}

/// `modelgate runtime show|fetch`.
pub async fn runtime(command: RuntimeCommand) -> anyhow::Result<()> {
    match command {
        RuntimeCommand::Show(args) => {
            match crate::runtime::find(args.onnxruntime_library.as_deref(), &args.data_dir) {
                Some(found) => {
                    println!("{}", found.path.display());
                    eprintln!("found in {}", found.source);
                    Ok(())
                }
                None => bail!(
                    "ONNX Runtime {} is not found: not given with --onnxruntime-library, not in ORT_DYLIB_PATH, \
                     not next to the binary, not in {}, not in an installed onnxruntime Python package; \
                     run `modelgate runtime fetch --data-dir {}`",
                    crate::runtime::VERSION,
                    crate::runtime::fetch_folder(&args.data_dir).display(),
                    args.data_dir.display()
                ),
            }
        }
        RuntimeCommand::Fetch(args) => {
            let path = crate::runtime::fetch(&args.data_dir).await?;
            println!("{}", path.display());
            Ok(())
        }
    }
}

pub async fn open(storage: &StorageArgs) -> anyhow::Result<Store> {
    open_store(&storage.data_dir, storage.database_url.as_deref())
        .await
        .with_context(|| match &storage.database_url {
            Some(url) => format!(
                "cannot open the database {}",
                modelgate_store::redact_url(url)
            ),
            None => format!(
                "cannot open the data directory {}",
                storage.data_dir.display()
            ),
        })
}

pub async fn migrate(storage: StorageArgs) -> anyhow::Result<()> {
    let store = open(&storage).await?;
    // `open_store` has applied whatever was pending; running again reports zero.
    let applied = store.migrate().await?;
    eprintln!("database is up to date ({applied} migrations were pending)");
    Ok(())
}

pub async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser(args) => create_user(args).await,
        AdminCommand::CreateToken(args) => create_token(args).await,
        AdminCommand::VerifyArtifacts(args) => verify_artifacts(args).await,
        AdminCommand::Rescan(args) => rescan(args).await,
    }
}

/// Reads the first line of standard input as a password.
pub fn read_password_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

async fn create_user(args: AdminCreateUserArgs) -> anyhow::Result<()> {
    let password_hash = if args.password_stdin {
        let password = read_password_stdin()?;
        Some(hash_password(&password).map_err(|error| anyhow::anyhow!(error.message))?)
    } else {
        None
    };
    let new_user = NewUser {
        username: Username::parse(&args.username)?,
        printed_name: modelgate_server::text::check_printed_name(&args.printed_name)
            .map_err(|error| anyhow::anyhow!("--printed-name: {}", error.message))?,
        email: args.email,
        roles: args
            .roles
            .iter()
            .map(|role| Role::parse(role))
            .collect::<Result<_, _>>()?,
        password_hash,
    };
    let store = open(&args.storage).await?;
    let user = store
        .create_user(&Attribution::system("admin-cli", system_now()), &new_user)
        .await?;
    eprintln!(
        "created user {} ({}) with roles [{}]",
        user.username,
        user.printed_name,
        user.roles
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

async fn create_token(args: AdminCreateTokenArgs) -> anyhow::Result<()> {
    let store = open(&args.storage).await?;
    let user = store.get_user(&Username::parse(&args.username)?).await?;
    let now = system_now();
    let expires_at = (args.expires_in_days > 0)
        .then(|| now.plus_seconds(i64::from(args.expires_in_days) * 86_400));
    let secret = new_token_secret();
    store
        .create_token(
            &Attribution::system("admin-cli", now),
            &user,
            &TokenName::parse(&args.name)?,
            &token_secret_hash(&secret),
            expires_at,
        )
        .await?;
    println!("{secret}");
    Ok(())
}

async fn verify_artifacts(args: AdminVerifyArgs) -> anyhow::Result<()> {
    let store = open(&args.storage).await?;
    let artifacts = modelgate_server::open_artifact_store(
        &args.storage.data_dir,
        args.artifact_store.as_deref(),
    )?;
    let records = store.list_artifact_records().await?;
    eprintln!(
        "re-hashing {} artifacts in {}",
        records.len(),
        artifacts.description()
    );
    let report = artifacts
        .verify(&records, |record, problem| match problem {
            None => eprintln!("ok       {}", record.digest),
            Some(problem) => eprintln!("MISMATCH {}: {problem}", record.digest),
        })
        .await;
    println!(
        "{} artifacts checked ({} bytes), {} problems",
        report.checked,
        report.bytes,
        report.problems.len()
    );
    if !report.problems.is_empty() {
        bail!(
            "{} artifacts do not match their digests",
            report.problems.len()
        );
    }
    Ok(())
}

async fn rescan(args: AdminVerifyArgs) -> anyhow::Result<()> {
    let store = open(&args.storage).await?;
    let artifacts = modelgate_server::open_artifact_store(
        &args.storage.data_dir,
        args.artifact_store.as_deref(),
    )?;
    let records = store.list_artifact_records().await?;
    eprintln!(
        "scanning {} artifacts in {} with {}",
        records.len(),
        artifacts.description(),
        modelgate_scan::ENGINE_VERSION
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(records.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("rescan [{bar:30}] {pos}/{len} eta {eta} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut verdicts = std::collections::BTreeMap::<String, usize>::new();
    let (mut changed, mut new, mut kept) = (0, 0, 0);
    for record in &records {
        let report = modelgate_server::scanning::scan_stored(&artifacts, record)
            .await
            .map_err(|error| anyhow::anyhow!(error.message))?;
        let scan = modelgate_server::scanning::stored_form(&record.digest, &report)
            .map_err(|error| anyhow::anyhow!(error.message))?;
        match store
            .record_scan(&Attribution::system("admin rescan", system_now()), &scan)
            .await?
        {
            modelgate_store::ScanRecorded::New => new += 1,
            modelgate_store::ScanRecorded::Replaced => changed += 1,
            modelgate_store::ScanRecorded::KeptNewer => kept += 1,
            modelgate_store::ScanRecorded::Unchanged => {}
        }
        *verdicts.entry(scan.verdict.clone()).or_default() += 1;
        match &bar {
            Some(bar) => {
                bar.set_message(format!("{} {}", record.digest, scan.verdict));
                bar.inc(1);
            }
            None => eprintln!("{:<10} {}", scan.verdict, record.digest),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let counts = verdicts
        .iter()
        .map(|(verdict, count)| format!("{count} {verdict}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "{} artifacts scanned ({}); {new} had no report, {changed} reports changed{}",
        records.len(),
        if counts.is_empty() { "none" } else { &counts },
        if kept > 0 {
            format!(", {kept} kept (a newer scanner's report is on record)")
        } else {
            String::new()
        }
    );
    Ok(())
}
