//! The `modelgate` binary: the server (`serve`), offline administration (`admin`, `migrate`), and the
//! command-line client of the API. Exit codes: 0 success, 1 error, 2 usage, 3 the gate
//! denies. With `--output json`, errors are the API's error JSON on standard output.

mod audit;
mod cli;
mod offline;
mod output;
mod profile;
mod promote;
mod remote;
mod runtime;

use clap::Parser;
use cli::{Cli, Command};
use modelgate_client::{Client, ClientError};
use std::process::ExitCode;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli.output;
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(exit) = error.downcast_ref::<promote::ExitCode>() {
                eprintln!("{}", exit.message);
                return ExitCode::from(exit.code);
            }
            report(&error, format);
            ExitCode::FAILURE
        }
    }
}

/// An error for people on standard error; with `--output json`, the API's error shape on standard
/// output (`{"error": {"code", "message", "details"}}`), with a client-side code when the server gave none.
fn report(error: &anyhow::Error, format: cli::OutputFormat) {
    let client_error = error.downcast_ref::<ClientError>();
    if format == cli::OutputFormat::Json {
        let (code, message, details) = match client_error {
            Some(ClientError::Api {
                code,
                message,
                details,
                ..
            }) => (code.clone(), message.clone(), details.clone()),
            Some(other) => (other.error_code().to_owned(), format!("{error:#}"), None),
            None => ("client_error".to_owned(), format!("{error:#}"), None),
        };
        let body = modelgate_api::ErrorBody {
            error: modelgate_api::ErrorDetail {
                code,
                message,
                details,
            },
        };
        match serde_json::to_string_pretty(&body) {
            Ok(text) => println!("{text}"),
            Err(_) => eprintln!("error: {error:#}"),
        }
        return;
    }
    if let Some(ClientError::Api {
        details: Some(details),
        ..
    }) = client_error
    {
        eprintln!("error: {error:#}\n  details: {details}");
    } else {
        eprintln!("error: {error:#}");
    }
}

/// A non-empty environment variable. `--server` and `--token` read theirs here rather than through
/// clap's `env`, which would print them in usage lines as if they were required arguments.
fn from_environment(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Logs go to standard error; `MODELGATE_LOG` (or `RUST_LOG`) sets the filter. The server logs at
/// `info`; client commands only at `warn`.
fn init_tracing(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = std::env::var("MODELGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let printer = output::Printer { format: cli.output };
    let client = || -> anyhow::Result<Client> {
        let profile = profile::load();
        let server = cli
            .server
            .clone()
            .or_else(|| from_environment("MODELGATE_SERVER"))
            .or(profile.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let token = cli
            .token
            .clone()
            .or_else(|| from_environment("MODELGATE_TOKEN"))
            .or(profile.token);
        Ok(Client::new(&server, token)?)
    };
    match cli.command {
        Command::Serve(args) => offline::serve(args).await,
        Command::Migrate(storage) => offline::migrate(storage).await,
        Command::Admin(command) => offline::admin(command).await,
        Command::Runtime(command) => offline::runtime(command).await,
        Command::Login(args) => {
            let server = cli
                .server
                .clone()
                .or_else(|| from_environment("MODELGATE_SERVER"))
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
            let token = cli
                .token
                .clone()
                .or_else(|| from_environment("MODELGATE_TOKEN"));
            remote::login(&server, token, args).await
        }
        Command::Whoami => remote::whoami(&client()?, &printer).await,
        Command::Model(command) => remote::model(&client()?, &printer, command).await,
        Command::Version(command) => remote::version(&client()?, &printer, command).await,
        Command::User(command) => remote::user(&client()?, &printer, command).await,
        Command::Token(command) => remote::token(&client()?, &printer, command).await,
        Command::Webhook(command) => remote::webhook(&client()?, &printer, command).await,
        Command::Monitor(command) => remote::monitor(&client()?, &printer, command).await,
        Command::Kpi(command) => remote::kpi(&client()?, &printer, command).await,
        Command::Audit(command) => audit::run(client, &printer, command).await,
        Command::Policy(command) => promote::policy(client, &printer, command).await,
        Command::Request(command) => promote::request(&client()?, &printer, command).await,
        Command::Review(command) => promote::review(&client()?, &printer, command).await,
        Command::Gate(command) => promote::gate(&client()?, &printer, command).await,
        Command::Keys(command) => promote::keys(&client()?, &printer, command).await,
        Command::Attest(command) => promote::attest(client, &printer, command).await,
        Command::Card(command) => promote::card(&client()?, &printer, command).await,
        Command::Dataset(command) => promote::dataset(&client()?, &printer, command).await,
        Command::Eval(command) => promote::eval(&client()?, &printer, command).await,
    }
}
