//! The command line: every command, flag and help text.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use modelgate_api as api;
use std::path::PathBuf;

/// The parser of a flag that takes one of a wire enum's values: `--help` lists them, and clap refuses
/// any other before a request is sent.
fn one_of<T>(all: &'static [T], spelled: fn(T) -> &'static str) -> impl TypedValueParser<Value = T>
where
    T: Copy + Send + Sync + 'static,
{
    PossibleValuesParser::new(all.iter().map(|value| spelled(*value))).try_map(
        move |text: String| {
            all.iter()
                .copied()
                .find(|value| spelled(*value) == text)
                .ok_or("not one of the possible values")
        },
    )
}

const EXAMPLES: &str = "\
Examples:
  # Start a server (SQLite and artifacts under ./modelgate-data, listening on 127.0.0.1:8080)
  modelgate serve

  # Point the CLI at it and check who you are
  export MODELGATE_SERVER=http://127.0.0.1:8080 MODELGATE_TOKEN=mgt_...
  modelgate whoami

  # Register a model and push a version
  modelgate model create credit-default --owner alice --risk-tier high
  modelgate version push credit-default model.onnx --format onnx
  modelgate version download credit-default 1 --out model.onnx";

#[derive(Debug, Parser)]
#[command(
    name = "modelgate",
    version,
    about = "modelgate: the model approval workflow — a registry of models and versions bound to content \
             digests, served over an authenticated HTTP API",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Server URL for client commands, as http://HOST:PORT (a bare HOST:PORT means http://) [env:
    /// MODELGATE_SERVER; default: the profile written by `login`, else http://127.0.0.1:8080]
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// API token for client commands [env: MODELGATE_TOKEN; default: the profile written by `login`]
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Output format: readable tables, or the API's JSON for scripts. With json, an error is printed on
    /// standard output as the API's error JSON, {"error": {"code", "message", "details"}} (client-side
    /// errors too, with codes such as `unreachable`), and the exit codes stay 1 error, 2 usage, 3 denied
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server
    #[command(
        after_help = "Examples:\n  modelgate serve\n  modelgate serve --data-dir /var/lib/modelgate --listen 0.0.0.0:8080\n  \
        modelgate serve --database-url postgres://modelgate:secret@db:5432/modelgate --artifact-store s3://bucket/models"
    )]
    Serve(ServeArgs),
    /// Apply database migrations and exit (the server also applies them at start)
    #[command(
        after_help = "Examples:\n  modelgate migrate --data-dir ./modelgate-data\n  modelgate migrate --database-url postgres://modelgate:secret@db:5432/modelgate"
    )]
    Migrate(StorageArgs),
    /// Offline administration directly on the data directory or database (bootstrap, scripts, recovery)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// ONNX Runtime, which model-mode evaluations run on: where it is found, and fetching it from PyPI
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Save a server and token to the profile file, from a password login or a token
    #[command(
        after_help = "Examples:\n  modelgate login --server http://127.0.0.1:8080 --username alice\n  \
        echo \"$PASSWORD\" | modelgate login --username alice --password-stdin\n  modelgate login --server http://127.0.0.1:8080 --token mgt_..."
    )]
    Login(LoginArgs),
    /// Show the user behind the current token
    #[command(after_help = "Example:\n  modelgate whoami --output json")]
    Whoami,
    /// Register, list, show, update, tag and archive models
    #[command(subcommand)]
    Model(ModelCommand),
    /// Push, list, show, download, tag and archive versions
    #[command(subcommand)]
    Version(VersionCommand),
    /// Manage user accounts (creating and changing users needs the admin role)
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list and revoke API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Webhooks (admins): subscribe a URL to signed CloudEvents of every change, test, read deliveries
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// After deployment: push production batches (judged for drift by the server), show the monitoring
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// Business KPIs of a deployed model, checked against the policy's bounds
    #[command(subcommand)]
    Kpi(KpiCommand),
    /// The tamper-evident audit log: show events, export, verify (online, offline, or on the store)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Policy as code: check a file offline, show or apply the policy in force, explain a gate
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Promotion requests: open, show, list, withdraw, comment
    #[command(subcommand)]
    Request(RequestCommand),
    /// Sign off (approve), reject or ask for changes on a request
    #[command(subcommand)]
    Review(ReviewCommand),
    /// The deployment gate: may this digest run in this stage now? (exit 0 allowed, 3 denied)
    #[command(subcommand)]
    Gate(GateCommand),
    /// The server's public key (it signs sign-offs and audit checkpoints)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Signed approval attestations (in-toto in DSSE): fetch, and verify offline as a deploy system would
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Model cards: show, set (each write a new revision), diff
    #[command(subcommand)]
    Card(CardCommand),
    /// Evaluation datasets (CSV or Parquet): register (validated and profiled), show, list
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Server-side evaluation as background jobs: run (from predictions or the ONNX model), show, job, wait,
    /// cancel
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Upload a CSV or Parquet dataset and register it with its schema; problems name the column and the
    /// CSV line or Parquet row
    #[command(
        after_help = "Examples:\n  modelgate dataset register holdout-2026q3 holdout.csv --label default \\\n    --features income,age --sensitive sex --sensitive age_band --positive-label 1\n  \
        modelgate dataset register species species.parquet --task multiclass --label species --classes a,b,c"
    )]
    Register {
        /// The dataset's name, used by `eval run --dataset`
        name: String,
        /// A CSV or Parquet file (told apart by content)
        file: PathBuf,
        /// The label column
        #[arg(long)]
        label: String,
        /// What the label is: two classes (binary), more (multiclass) or a number (regression)
        #[arg(long, default_value = "binary", value_parser = one_of(api::DatasetTask::ALL, api::DatasetTask::as_str))]
        task: api::DatasetTask,
        /// Comma-separated feature columns
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// A sensitive-attribute column (repeatable)
        #[arg(long)]
        sensitive: Vec<String>,
        /// A column of row weights (counted in every metric, per group and in fairness)
        #[arg(long)]
        weight: Option<String>,
        /// The label value that counts as positive (binary)
        #[arg(long, default_value = "1")]
        positive_label: String,
        /// Multiclass: the classes the label may take, comma-separated; other labels are refused
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
    },
    /// Show a dataset with its schema and profile
    #[command(after_help = "Example:\n  modelgate dataset show holdout-2026q3 --output json")]
    Show {
        /// The dataset's name
        name: String,
    },
    /// List datasets
    List,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Evaluate a version on a dataset. With --predictions (the dataset's label and sensitive columns plus
    /// the score) the server computes the metrics from that file; without it, the server runs the version's
    /// ONNX artifact on the dataset's features itself
    #[command(
        after_help = "Examples:\n  modelgate eval run credit-default 3 --dataset holdout-2026q3   # model mode (ONNX)\n  \
        modelgate eval run credit-default 3 --dataset holdout-2026q3 --predictions preds.parquet --score-column score --wait\n  \
        modelgate eval run credit-default 3 --dataset holdout-2026q3 --intersect sex,age_band --bootstrap 1000 --wait"
    )]
    Run {
        /// The model's name
        model: String,
        /// The version number to evaluate
        version: u32,
        /// The registered dataset to evaluate on (`modelgate dataset list`)
        #[arg(long)]
        dataset: String,
        /// Predictions mode: a CSV or Parquet file with one row per dataset row, in the dataset's order
        /// (uploaded, then joined to the dataset by row). Without it: model mode
        #[arg(long)]
        predictions: Option<PathBuf>,
        /// The predictions file's column with the score (binary: the probability of the positive label;
        /// regression: the predicted value)
        #[arg(long)]
        score_column: Option<String>,
        /// Multiclass: the column of predicted classes (--score-column is then the prefix of the per-class
        /// probability columns, as `proba_` for proba_a, proba_b …). Binary decisions come from the score
        /// and the threshold
        #[arg(long)]
        prediction_column: Option<String>,
        /// Binary: a score at or above it is a positive decision
        #[arg(long, default_value_t = 0.5)]
        threshold: f64,
        /// Also report the intersection of two sensitive attributes, as `sex,race` (repeatable)
        #[arg(long = "intersect", value_name = "A,B")]
        intersections: Vec<String>,
        /// Bootstrap resamples for the 95 % intervals (0: none)
        #[arg(long, default_value_t = 200)]
        bootstrap: usize,
        /// Seed of the bootstrap (and of the robustness noise); recorded with the evaluation
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Wait for the evaluation to finish, with a progress bar, and print it (Ctrl-C cancels it).
        /// Without --wait the command prints the queued job and returns
        #[arg(long)]
        wait: bool,
    },
    /// Show an evaluation: overall, per group, fairness
    #[command(after_help = "Example:\n  modelgate eval show 7 --output json")]
    Show {
        /// The evaluation's id (`modelgate eval list`)
        id: i64,
    },
    /// List a version's evaluations, oldest first: dataset, mode, headline numbers and digest
    #[command(after_help = "Example:\n  modelgate eval list credit-default 3")]
    List {
        /// The model's name
        model: String,
        /// The version number
        version: u32,
    },
    /// List evaluation jobs, newest first: what is queued, running, or how recent ones ended
    #[command(
        after_help = "Examples:\n  modelgate eval jobs --state running\n  modelgate eval jobs --model credit-default --limit 10"
    )]
    Jobs {
        /// Only jobs in this state
        #[arg(long, value_parser = one_of(api::JobState::ALL, api::JobState::as_str))]
        state: Option<api::JobState>,
        /// Only the jobs of this model
        #[arg(long)]
        model: Option<String>,
        /// At most this many (1 to 500)
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show an evaluation job: state, percent done, phase, and its evaluation once it succeeded
    #[command(after_help = "Example:\n  modelgate eval job 12")]
    Job {
        /// The evaluation job's id (`modelgate eval jobs`)
        id: i64,
    },
    /// Wait for an evaluation job to finish, with a progress bar, and print its evaluation
    #[command(after_help = "Example:\n  modelgate eval wait 12 --output json")]
    Wait {
        /// The evaluation job's id (`modelgate eval jobs`)
        id: i64,
    },
    /// Cancel a queued or running evaluation job; nothing of it is saved
    #[command(after_help = "Example:\n  modelgate eval cancel 12")]
    Cancel {
        /// The evaluation job's id (`modelgate eval jobs`)
        id: i64,
    },
    /// Set an evaluation aside (exploratory, superseded) or count it again; the policy reads only counted
    /// ones. Audited, and a change of the version's evidence: sign-offs given before no longer count
    #[command(
        after_help = "Examples:\n  modelgate eval mark 7 --status exploratory --reason \"tried a new threshold\"\n  \
        modelgate eval mark 7 --status counted --reason \"the threshold was right after all\""
    )]
    Mark {
        /// The evaluation's id (`modelgate eval list MODEL VERSION`)
        id: i64,
        /// `counted`, `exploratory` or `superseded`
        #[arg(long, value_parser = one_of(api::EvaluationStatus::ALL, api::EvaluationStatus::as_str))]
        status: api::EvaluationStatus,
        /// Why; it stays on record with the evaluation and in the audit log
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Show a version's current card and what the policy still requires of it
    #[command(after_help = "Example:\n  modelgate card show credit-default 3 --output json")]
    Show {
        /// The model's name
        model: String,
        /// The version number
        version: String,
    },
    /// Write a new revision of a version's card from a JSON file (schema: /api/v1/schemas/model-card.json):
    /// a bare card, or what `card show --output json` prints (its `card` is taken, the revision details
    /// ignored)
    #[command(
        after_help = "Examples:\n  modelgate card set credit-default 3 --file card.json --message \"add limitations\"\n  \
        modelgate card show credit-default 3 --output json > card.json   # edit, then\n  \
        modelgate card set credit-default 3 --file card.json\n  \
        jq '.card.limitations = \"EU applicants only\"' card.json | modelgate card set credit-default 3 --file -"
    )]
    Set {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// The JSON file to read, or `-` for standard input
        #[arg(long)]
        file: PathBuf,
        /// Why the card changed, kept with the revision
        #[arg(long)]
        message: Option<String>,
    },
    /// Edit the current card in $EDITOR (as YAML); saved as a new revision when valid, otherwise reopened
    /// with the problems listed on top (an empty file cancels). A version without a card starts from a
    /// skeleton of the fields its model's risk tier requires
    #[command(after_help = "Example:\n  EDITOR=vim modelgate card edit credit-default 3")]
    Edit {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// Why the card changed, kept with the revision
        #[arg(long)]
        message: Option<String>,
    },
    /// Copy another version's current card to this version as a new revision (the message says where
    /// it came from)
    #[command(after_help = "Example:\n  modelgate card copy credit-default 4 --from 3")]
    Copy {
        /// The model's name
        model: String,
        /// The version that gets the card
        version: String,
        /// The version of the same model whose current card is copied
        #[arg(long = "from", value_name = "FROM_VERSION")]
        from_version: String,
        /// Added to the revision's message after where the card came from
        #[arg(long)]
        message: Option<String>,
    },
    /// Import a Hugging Face README.md (`hf`) or a Model Card Toolkit JSON (`mct`) as a new revision;
    /// prints where each part went (unmapped content is kept under `additional`)
    #[command(
        after_help = "Example:\n  modelgate card import credit-default 3 --format hf README.md"
    )]
    Import {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// `hf` (a Hugging Face README.md) or `mct` (Model Card Toolkit JSON)
        #[arg(long, value_parser = ["hf", "mct"])]
        format: String,
        /// The file to import
        file: PathBuf,
    },
    /// Export the current card: a Hugging Face README (`hf`), Model Card Toolkit JSON (`mct`), or a
    /// Markdown/HTML document for reviewers that shows the approval signatures
    #[command(
        after_help = "Example:\n  modelgate card export credit-default 3 --format html --out card.html"
    )]
    Export {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// `hf` (README.md), `mct` (Model Card Toolkit JSON), `markdown` or `html` (with signatures)
        #[arg(long, value_parser = ["hf", "mct", "markdown", "html"])]
        format: String,
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Field-level differences: the latest revision against the one before it, or against another
    /// version's card (`--against 2`, `--against production`)
    #[command(
        after_help = "Examples:\n  modelgate card diff credit-default 3\n  modelgate card diff credit-default 3 --against production"
    )]
    Diff {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// Compare with another version's card (a number, or a stage such as `production`) instead of the revision before
        #[arg(long)]
        against: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Fetch the attestation of a version's approval for a stage
    #[command(
        after_help = "Example:\n  modelgate attest get credit-default 3 --stage production --out credit-3.intoto.json"
    )]
    Get {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// The stage the approval is for
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: api::Stage,
        /// Write the attestation to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify an attestation offline: signature, and optionally subject digest and stage; always expiry
    /// and suspension. Exit 0 when valid; 3 when it does not verify (the reason on stderr); 1 on errors
    #[command(
        after_help = "Examples:\n  modelgate keys show --out modelgate.pub\n  \
        modelgate attest verify credit-3.intoto.json --public-key modelgate.pub \\\n    --digest sha256:… --stage production\n  \
        modelgate attest verify credit-3.intoto.json --public-key modelgate.pub --at 2027-01-31T00:00:00Z"
    )]
    Verify {
        /// The attestation file (as `modelgate attest get --out` saved it)
        file: PathBuf,
        /// The pinned server key file (`modelgate keys show --out FILE`)
        #[arg(long)]
        public_key: PathBuf,
        /// Also require the attestation to be for this digest (sha256:HEX)
        #[arg(long)]
        digest: Option<String>,
        /// Also require the attestation to be for this stage
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: Option<api::Stage>,
        /// Verify as of this time instead of now: RFC 3339 in UTC (`2027-01-31T00:00:00Z`) or a date
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file offline; errors give line and column (exit 1 when invalid)
    #[command(after_help = "Example:\n  modelgate policy check policies/default.toml")]
    Check {
        /// The policy file (TOML)
        file: PathBuf,
    },
    /// Show the policy in force (its digest, revision and text)
    #[command(after_help = "Example:\n  modelgate policy show --output json")]
    Show,
    /// Make a policy file the one in force (admin); an invalid file changes nothing. Lists the approvals
    /// in force that the new policy would not grant, and what its `approvals_not_regranted` does to them
    #[command(
        after_help = "Examples:\n  modelgate policy apply --dry-run stricter.toml   # only list what would change\n  \
        modelgate policy apply stricter.toml"
    )]
    Apply {
        /// The policy file (TOML)
        file: PathBuf,
        /// Apply nothing: report the problems and the approvals the policy would not grant
        #[arg(long)]
        dry_run: bool,
    },
    /// Dry run: which checks pass or fail and why, which sign-offs are missing and who could give them
    #[command(
        after_help = "Example:\n  modelgate policy explain credit-default 3 --stage production"
    )]
    Explain {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// The stage whose gate is explained
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: api::Stage,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Ask to move a version into a stage
    #[command(
        after_help = "Example:\n  modelgate request open credit-default 3 --stage staging --justification \"passes holdout\""
    )]
    Open {
        /// The model's name
        model: String,
        /// The version number
        version: u32,
        /// The stage to move the version into (one step from where it is); the stage it is in already
        /// opens a re-validation there (renews its approval; once signed off, lifts a suspension)
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: api::Stage,
        /// Why the version should move, for the reviewers (kept with the request)
        #[arg(long)]
        justification: String,
    },
    /// Show a request with its reviews and comments
    #[command(after_help = "Example:\n  modelgate request show 12 --output json")]
    Show {
        /// The request's id (`modelgate request list`)
        id: i64,
    },
    /// List requests, newest first
    #[command(
        after_help = "Examples:\n  modelgate request list --state open\n  modelgate request list --mine"
    )]
    List {
        /// Only requests you opened
        #[arg(long)]
        mine: bool,
        /// Only requests in this state
        #[arg(long, value_parser = one_of(api::RequestState::ALL, api::RequestState::as_str))]
        state: Option<api::RequestState>,
        /// Only requests about this model
        #[arg(long)]
        model: Option<String>,
    },
    /// Withdraw an open request (its requester or an admin)
    #[command(after_help = "Example:\n  modelgate request withdraw 12")]
    Withdraw {
        /// The request's id (`modelgate request list`)
        id: i64,
        /// Why the request is withdrawn
        #[arg(long)]
        reason: Option<String>,
    },
    /// Comment on a request, for reviewers to discuss
    #[command(
        after_help = "Example:\n  modelgate request comment 12 \"please attach the holdout report\""
    )]
    Comment {
        /// The request's id (`modelgate request list`)
        id: i64,
        /// The comment
        text: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Approve as ROLE: an electronic signature (your password is asked again, or read with --password-stdin)
    #[command(
        after_help = "Example:\n  modelgate review approve 12 --role compliance --meaning \"approved for production as compliance\""
    )]
    Approve {
        /// The request's id (`modelgate request list`)
        id: i64,
        /// The role you review as: one you hold and the gate asks for
        #[arg(long)]
        role: String,
        /// What the signature means [default: "approved for STAGE as ROLE"]
        #[arg(long)]
        meaning: Option<String>,
        /// A comment kept with the sign-off
        #[arg(long, default_value = "")]
        comment: String,
        /// Read the password from standard input (first line) instead of asking for it
        #[arg(long)]
        password_stdin: bool,
        /// Sign only if the version's evidence is still this digest (the one `request show` or
        /// `policy explain` showed you); refused with 409 when it changed since
        #[arg(long)]
        evidence_digest: Option<String>,
    },
    /// Reject as ROLE (the request closes)
    #[command(
        after_help = "Example:\n  modelgate review reject 12 --role validator --comment \"AUC below threshold\""
    )]
    Reject {
        /// The request's id (`modelgate request list`)
        id: i64,
        /// The role you review as: one you hold and the gate asks for
        #[arg(long)]
        role: String,
        /// Why it is rejected
        #[arg(long)]
        comment: String,
    },
    /// Ask for changes as ROLE (the request stays open)
    #[command(
        after_help = "Example:\n  modelgate review request-changes 12 --role validator --comment \"add the fairness evaluation\""
    )]
    RequestChanges {
        /// The request's id (`modelgate request list`)
        id: i64,
        /// The role you review as: one you hold and the gate asks for
        #[arg(long)]
        role: String,
        /// What has to change before you approve
        #[arg(long)]
        comment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GateCommand {
    /// Ask the gate; exit 0 when allowed, 3 when denied (reasons on standard error)
    #[command(
        after_help = "Example:\n  modelgate gate check --model credit-default --stage production --digest sha256:…"
    )]
    Check {
        /// The model's name
        #[arg(long)]
        model: String,
        /// The stage the artifact would run in
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: api::Stage,
        /// The digest of the artifact to run (sha256:HEX)
        #[arg(long)]
        digest: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the server's public key (it signs approvals, attestations and audit checkpoints) in the
    /// verifier-key form, or save it to the key file that `attest verify --public-key` and
    /// `audit verify --public-key` read
    #[command(
        after_help = "Examples:\n  modelgate keys show --out modelgate.pub\n  modelgate keys show --output json"
    )]
    Show {
        /// Save the key file here instead of printing it
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the log: online against the server (default), offline from an export (--export), or directly
    /// on the store (--data-dir / --database-url). Exit 0 when intact; otherwise 1, naming the first bad index
    #[command(after_help = "Examples:\n  \
        # Online, with the key you pinned, and proving the log extends the checkpoint you saved last time\n  \
        modelgate audit verify --public-key modelgate.pub --since last-checkpoint\n\n  \
        # Offline, from an export\n  modelgate audit verify --export ./audit-2026-11 --public-key modelgate.pub\n\n  \
        # Directly on the server's data\n  modelgate audit verify --data-dir ./modelgate-data")]
    Verify(AuditVerifyArgs),
    /// Export the log: DIR/entries.jsonl (line i is exactly leaf i), DIR/checkpoint (the signed note),
    /// DIR/leaf-hashes (line i the hex hash of leaf i, so that a verify names an edited entry) and
    /// DIR/public-key (the server's key as it claims it)
    #[command(after_help = "Example:\n  modelgate audit export --out ./audit-2026-11")]
    Export {
        /// The directory to write the export to (created if missing)
        #[arg(long)]
        out: PathBuf,
    },
    /// Show events, oldest first (filters combine)
    #[command(
        after_help = "Examples:\n  modelgate audit show --target model/credit-default   # the model, its versions, cards, evaluations and requests\n  \
        modelgate audit show --actor alice --since 2026-11-01 --output json\n  modelgate audit show --action auth.refused --limit 50\n  \
        modelgate audit show --action auth.refused --limit 50 --cursor CURSOR   # the next 50"
    )]
    Show {
        /// `model/NAME`, `model/NAME/version/N`, `user/NAME`, `token/ID`, `request/ID`, `artifact/sha256:…`;
        /// also matches what lies under it (`model/NAME` includes `model/NAME/version/N` and the model's
        /// requests)
        #[arg(long)]
        target: Option<String>,
        /// A username, `system:…` or `anonymous`
        #[arg(long)]
        actor: Option<String>,
        /// `model.create`, `version.tag.set`, `auth.refused`, …
        #[arg(long)]
        action: Option<String>,
        /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC)
        #[arg(long)]
        since: Option<String>,
        /// At most this many events
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Continue after the events shown before (the cursor printed after them, or `next_cursor`)
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Print (or save) the latest signed checkpoint, to pass later as `audit verify --since FILE`
    #[command(after_help = "Example:\n  modelgate audit checkpoint --out last-checkpoint")]
    Checkpoint {
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print (or save) the server's verifier key, to pin it; the same as `modelgate keys show [--out FILE]`
    #[command(after_help = "Example:\n  modelgate audit public-key --out modelgate.pub")]
    PublicKey {
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A checkpoint saved earlier: the log must extend it (consistency), or history was rewritten
    #[arg(long)]
    pub since: Option<PathBuf>,
    /// The pinned verifier key file (`<name>+<key id>+<key>`); required with --export
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Verify an export directory offline
    #[arg(long, conflicts_with_all = ["data_dir", "database_url"])]
    pub export: Option<PathBuf>,
    /// Verify the store in this data directory directly
    #[arg(long, conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// Verify the store in this PostgreSQL database directly
    #[arg(long)]
    pub database_url: Option<String>,
    /// With --data-dir/--database-url: the signing key file, when not DATA_DIR/audit-signing.key
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
}

/// Where the data lives: SQLite and artifacts in a directory, or a PostgreSQL database.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Directory for the SQLite database and local artifacts
    #[arg(long, env = "MODELGATE_DATA_DIR", default_value = "./modelgate-data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DB) instead of SQLite in the data directory
    #[arg(long, env = "MODELGATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on
    #[arg(long, env = "MODELGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Artifact store URL (s3://bucket/prefix, gs://…, az://…, file:///path) [default: DATA_DIR/artifacts]
    #[arg(long, env = "MODELGATE_ARTIFACT_STORE")]
    pub artifact_store: Option<String>,
    /// Largest artifact accepted, in bytes
    #[arg(long, env = "MODELGATE_MAX_UPLOAD_BYTES", default_value_t = modelgate_server::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    /// Largest dataset or predictions file evaluated, in bytes (they are parsed in memory); a Parquet file's
    /// columns may decode to at most 4 times as much
    #[arg(long, env = "MODELGATE_MAX_DATASET_BYTES", default_value_t = modelgate_server::DEFAULT_MAX_DATASET_BYTES)]
    pub max_dataset_bytes: u64,
    /// Most columns a dataset or predictions file may have (CSV header fields, Parquet leaf columns); a
    /// wider file is refused (413) as soon as its header passes the limit
    #[arg(long, env = "MODELGATE_MAX_DATASET_COLUMNS", default_value_t = modelgate_server::DatasetLimits::DEFAULT.max_columns)]
    pub max_dataset_columns: usize,
    /// Longest cell of a dataset or predictions file, in bytes (a CSV field or header name, a Parquet
    /// string); a file with a longer one is refused (413) when the reader reaches it
    #[arg(long, env = "MODELGATE_MAX_DATASET_CELL_BYTES", default_value_t = modelgate_server::DatasetLimits::DEFAULT.max_cell_bytes)]
    pub max_dataset_cell_bytes: usize,
    /// Most data rows of a dataset or predictions file (a Parquet file's are counted from its footer,
    /// before decoding)
    #[arg(long, env = "MODELGATE_MAX_DATASET_ROWS", default_value_t = modelgate_server::DatasetLimits::DEFAULT.max_rows)]
    pub max_dataset_rows: u64,
    /// Largest stored profile of a dataset, in bytes of JSON (categories are kept to 10 per column of at
    /// most 64 characters)
    #[arg(long, env = "MODELGATE_MAX_DATASET_PROFILE_BYTES", default_value_t = modelgate_server::DatasetLimits::DEFAULT.max_profile_bytes)]
    pub max_dataset_profile_bytes: usize,
    /// File with the Ed25519 key that signs audit checkpoints (created if missing); replicas must share it
    /// [default: DATA_DIR/audit-signing.key]
    #[arg(long, env = "MODELGATE_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// The audit log's origin line and key name [default: modelgate/<key id>]
    #[arg(long, env = "MODELGATE_AUDIT_ORIGIN")]
    pub audit_origin: Option<String>,
    /// Seconds between audit checkpoints while the log grows
    #[arg(long, env = "MODELGATE_CHECKPOINT_INTERVAL", default_value_t = 10)]
    pub checkpoint_interval: u64,
    /// The ONNX Runtime library (libonnxruntime.so.1.x) for model-mode evaluations
    /// [default: ORT_DYLIB_PATH, next to the binary, DATA_DIR/onnxruntime, the onnxruntime Python package,
    /// else fetched from PyPI unless --offline]
    #[arg(long, env = "MODELGATE_ONNXRUNTIME_LIBRARY")]
    pub onnxruntime_library: Option<PathBuf>,
    /// Never fetch ONNX Runtime from PyPI at start when it is not found (model-mode evaluations are then
    /// unavailable until it is); see `modelgate runtime fetch`
    #[arg(long, env = "MODELGATE_OFFLINE")]
    pub offline: bool,
    /// Longest lifetime, in days, of a token made through the API (token create, login)
    #[arg(long, env = "MODELGATE_MAX_TOKEN_DAYS", default_value_t = modelgate_server::DEFAULT_MAX_TOKEN_DAYS,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub max_token_days: u32,
    /// Minutes of inactivity after which a web UI session ends (sign in again to go on)
    #[arg(long, env = "MODELGATE_SESSION_IDLE_MINUTES", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_idle_minutes: u64,
    /// Hours after signing in at which a web UI session ends however active it is
    #[arg(long, env = "MODELGATE_SESSION_MAX_HOURS", default_value_t = 12,
        value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_max_hours: u64,
    /// The address people reach the server at, when it differs from --listen (behind a proxy):
    /// `https://…` makes session cookies Secure, and forms must come from this origin
    #[arg(long, env = "MODELGATE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// A host webhooks may be delivered to although it is on loopback or a private network (`name`,
    /// `name:port` or an IP address); repeat for several. Others must resolve to public addresses only
    #[arg(
        long = "webhook-allow-host",
        env = "MODELGATE_WEBHOOK_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub webhook_allow_hosts: Vec<String>,
    /// Seconds a webhook receiver has to answer before the attempt counts as failed (and is retried)
    #[arg(long, env = "MODELGATE_WEBHOOK_TIMEOUT", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=300))]
    pub webhook_timeout: u64,
    /// Milliseconds before the first webhook retry; each further retry waits twice as long (with
    /// jitter, at most an hour), for up to a day after the event
    #[arg(long, env = "MODELGATE_WEBHOOK_BACKOFF_MS", default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_backoff_ms: u64,
    /// The risk tier of a model registered through MLflow's API without the tag
    /// `modelgate.risk_tier` (unknown risk is not low risk)
    #[arg(long, env = "MODELGATE_MLFLOW_DEFAULT_RISK_TIER", default_value = "high",
        value_parser = one_of(api::RiskTier::ALL, api::RiskTier::as_str))]
    pub mlflow_default_risk_tier: api::RiskTier,
}

/// `http://…` or `https://…` with a host, without a trailing slash.
fn parse_public_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("{text:?} must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!(
            "{text:?} has no host (example: https://models.example.com)"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Say where ONNX Runtime would be loaded from (exit 1 when it is not found)
    #[command(after_help = "Example:\n  modelgate runtime show --data-dir ./modelgate-data")]
    Show(RuntimeArgs),
    /// Fetch the pinned ONNX Runtime wheel from PyPI into DATA_DIR/onnxruntime (SHA-256 checked)
    #[command(after_help = "Example:\n  modelgate runtime fetch --data-dir ./modelgate-data")]
    Fetch(RuntimeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// The server's data directory (a fetch writes DATA_DIR/onnxruntime/)
    #[arg(long, env = "MODELGATE_DATA_DIR", default_value = "./modelgate-data")]
    pub data_dir: PathBuf,
    /// An ONNX Runtime library to use instead of searching
    #[arg(long, env = "MODELGATE_ONNXRUNTIME_LIBRARY")]
    pub onnxruntime_library: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user directly in the store
    #[command(
        after_help = "Example:\n  modelgate admin create-user --data-dir ./modelgate-data --username alice \\\n    \
        --printed-name \"Alice Example\" --role model_developer --role validator"
    )]
    CreateUser(AdminCreateUserArgs),
    /// Create a token for a user directly in the store; prints only the token
    #[command(
        after_help = "Example:\n  export MODELGATE_TOKEN=$(modelgate admin create-token --data-dir ./modelgate-data --username alice)"
    )]
    CreateToken(AdminCreateTokenArgs),
    /// Re-hash every stored artifact and report any whose bytes changed or vanished
    #[command(
        after_help = "Example:\n  modelgate admin verify-artifacts --data-dir ./modelgate-data"
    )]
    VerifyArtifacts(AdminVerifyArgs),
    /// Scan every stored artifact again and record the reports (after the scanner's rules changed)
    #[command(
        long_about = "Scan every stored artifact again with this binary's scanner and record each report \
        (audited as artifact.scan). A running server already rescans, in the background, every artifact \
        whose report was made by other rules; this does all of them now, with a progress bar, and prints \
        how many verdicts changed. A changed report voids sign-offs given on the old one, and a changed \
        verdict marks an approval in force review_due.",
        after_help = "Example:\n  modelgate admin rescan --data-dir ./modelgate-data"
    )]
    Rescan(AdminVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AdminCreateUserArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The user's login name
    #[arg(long)]
    pub username: String,
    /// Full name, printed on signatures
    #[arg(long)]
    pub printed_name: String,
    /// An email address to reach them
    #[arg(long)]
    pub email: Option<String>,
    /// A role to grant (repeat for several): admin, model_developer, validator, compliance, …
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Read a password from standard input (first line)
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct AdminCreateTokenArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The user the token is for
    #[arg(long)]
    pub username: String,
    /// Token name
    #[arg(long, default_value = "admin-cli")]
    pub name: String,
    /// Days until it expires (0: never)
    #[arg(long, default_value_t = 0)]
    pub expires_in_days: u32,
}

#[derive(Debug, Args)]
pub struct AdminVerifyArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Artifact store URL [default: DATA_DIR/artifacts]
    #[arg(long, env = "MODELGATE_ARTIFACT_STORE")]
    pub artifact_store: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Log in with this username and a password (prompted, or --password-stdin) to get a new token
    #[arg(long, conflicts_with = "token")]
    pub username: Option<String>,
    /// Read the password from standard input (first line) instead of asking for it
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Register a model
    #[command(
        after_help = "Example:\n  modelgate model create credit-default --owner alice --risk-tier high \\\n    \
        --description \"Probability of default\" --tag team=risk"
    )]
    Create {
        /// 1-128 characters of lowercase letters, digits, '-', '_', '.'
        name: String,
        /// Accountable owner's username [default: you]
        #[arg(long)]
        owner: Option<String>,
        /// How much harm the model can do
        #[arg(long, value_parser = one_of(api::RiskTier::ALL, api::RiskTier::as_str))]
        risk_tier: api::RiskTier,
        /// What the model does, in a sentence or two
        #[arg(long, default_value = "")]
        description: String,
        /// What the model is for, and for whom
        #[arg(long, default_value = "")]
        intended_use: String,
        /// KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_key_value)]
        tags: Vec<(String, String)>,
    },
    /// List models (filters combine)
    #[command(
        after_help = "Examples:\n  modelgate model list --risk-tier high\n  modelgate model list --tag team=risk --output json"
    )]
    List(ListModelsArgs),
    /// Show one model
    #[command(after_help = "Example:\n  modelgate model show credit-default --output json")]
    Show {
        /// The model's name
        name: String,
    },
    /// Change a model's description or intended use (owner and risk tier need admin)
    #[command(
        after_help = "Example:\n  modelgate model update credit-default --description \"PD model, retail book\""
    )]
    Update {
        /// The model's name
        name: String,
        /// A new description
        #[arg(long)]
        description: Option<String>,
        /// A new intended use
        #[arg(long)]
        intended_use: Option<String>,
        /// A new accountable owner (admin)
        #[arg(long)]
        owner: Option<String>,
        /// A new risk tier (admin)
        #[arg(long, value_parser = one_of(api::RiskTier::ALL, api::RiskTier::as_str))]
        risk_tier: Option<api::RiskTier>,
    },
    /// Set a tag on a model
    #[command(after_help = "Example:\n  modelgate model tag credit-default team risk-analytics")]
    Tag {
        /// The model's name
        name: String,
        /// The tag's key
        key: String,
        /// The tag's value
        value: String,
    },
    /// Remove a tag from a model
    #[command(after_help = "Example:\n  modelgate model untag credit-default team")]
    Untag {
        /// The model's name
        name: String,
        /// The tag's key
        key: String,
    },
    /// Archive a model (its records stay; it accepts no new versions)
    #[command(after_help = "Example:\n  modelgate model archive old-scorer")]
    Archive {
        /// The model's name
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ListModelsArgs {
    /// Only models whose name starts with this
    #[arg(long)]
    pub name_prefix: Option<String>,
    /// Only models this user owns
    #[arg(long)]
    pub owner: Option<String>,
    /// Only models of this risk tier
    #[arg(long, value_parser = one_of(api::RiskTier::ALL, api::RiskTier::as_str))]
    pub risk_tier: Option<api::RiskTier>,
    /// Models with a version in this stage
    #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
    pub stage: Option<api::Stage>,
    /// KEY or KEY=VALUE
    #[arg(long)]
    pub tag: Option<String>,
    /// Include archived models
    #[arg(long)]
    pub include_archived: bool,
    /// Page size
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Continue after this cursor (printed after a partial page)
    #[arg(long)]
    pub cursor: Option<String>,
    /// Fetch every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Upload an artifact and register it as the model's next version
    #[command(
        after_help = "Example:\n  modelgate version push credit-default model.onnx --format onnx \\\n    \
        --code-repository https://git.example.org/risk/credit --code-commit 3f2a9c1 \\\n    \
        --training-data-uri s3://data/credit/2026-10.parquet --param max_depth=6"
    )]
    Push(Box<PushArgs>),
    /// List a model's versions
    #[command(
        after_help = "Examples:\n  modelgate version list credit-default\n  modelgate version list credit-default --stage development --output json"
    )]
    List {
        /// The model's name
        model: String,
        /// Only versions in this stage
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: Option<api::Stage>,
        /// KEY or KEY=VALUE
        #[arg(long)]
        tag: Option<String>,
    },
    /// Show one version
    #[command(after_help = "Example:\n  modelgate version show credit-default 3 --output json")]
    Show {
        /// The model's name
        model: String,
        /// The version number
        version: String,
    },
    /// Show what the artifact scanner found in a version's artifact
    #[command(
        long_about = "Show what the artifact scanner found in a version's artifact. The server scans every \
        upload without executing or unpickling anything: each pickle import (module and name), archive \
        entries that escape or inflate without bound, ONNX custom operator domains and external data, \
        malformed streams. The verdict is clean, unscanned (a format the scanner cannot read), \
        suspicious (needs a person's look) or dangerous (loading it can run code). The report is part of \
        the version's evidence: the default policy wants artifact.scan.verdict == 'clean' for production \
        at the high and critical tiers.",
        after_help = "Examples:\n  modelgate version scan credit-default 3\n  modelgate version scan credit-default 3 --output json | jq '.findings[] | select(.severity == \"dangerous\")'"
    )]
    Scan {
        /// The model's name
        model: String,
        /// The version number
        version: String,
    },
    /// Download a version's artifact and verify its digest
    #[command(
        after_help = "Example:\n  modelgate version download credit-default 3 --out model.onnx"
    )]
    Download {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// Where to write the artifact (written to OUT.partial, moved here once verified)
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a tag on a version
    #[command(after_help = "Example:\n  modelgate version tag credit-default 3 candidate yes")]
    Tag {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// The tag's key
        key: String,
        /// The tag's value
        value: String,
    },
    /// Suspend a version (risk officer or admin): the gate refuses it until reinstated
    #[command(
        after_help = "Example:\n  modelgate version suspend credit-default 3 --reason \"drift above limit\""
    )]
    Suspend {
        /// The model's name
        model: String,
        /// The version number
        version: String,
        /// Why the version is suspended (kept with the suspension, shown by the gate)
        #[arg(long)]
        reason: String,
    },
    /// Roll a stage back to the previous version whose approval for it is still valid (without new
    /// sign-offs when the policy says so)
    #[command(
        after_help = "Example:\n  modelgate version rollback credit-default --stage production"
    )]
    Rollback {
        /// The model's name
        model: String,
        /// The stage to roll back
        #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str))]
        stage: api::Stage,
        /// Why the stage rolls back (kept with the request)
        #[arg(long, default_value = "")]
        justification: String,
    },
    /// Reinstate a suspended version (risk officer or admin)
    #[command(after_help = "Example:\n  modelgate version reinstate credit-default 3")]
    Reinstate {
        /// The model's name
        model: String,
        /// The version number
        version: String,
    },
    /// Archive a version (its number is never reused)
    #[command(after_help = "Example:\n  modelgate version archive credit-default 2")]
    Archive {
        /// The model's name
        model: String,
        /// The version number
        version: String,
    },
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The model's name
    pub model: String,
    /// The artifact file to upload
    pub file: PathBuf,
    /// onnx, pickle, safetensors, tar, … [default: from the file extension]
    #[arg(long)]
    pub format: Option<String>,
    /// The artifact's media type [default: application/octet-stream]
    #[arg(long)]
    pub media_type: Option<String>,
    /// Reject the upload unless the content hashes to this (sha256:HEX)
    #[arg(long)]
    pub expect_digest: Option<String>,
    /// What this version is or changes
    #[arg(long, default_value = "")]
    pub description: String,
    /// URL of the code that trained this version
    #[arg(long)]
    pub code_repository: Option<String>,
    /// The commit of that code
    #[arg(long)]
    pub code_commit: Option<String>,
    /// Where the training data is (a URI)
    #[arg(long)]
    pub training_data_uri: Option<String>,
    /// sha256:HEX of the training data
    #[arg(long)]
    pub training_data_digest: Option<String>,
    /// Training parameter KEY=VALUE (repeatable)
    #[arg(long = "param", value_parser = parse_key_value)]
    pub parameters: Vec<(String, String)>,
    /// Free-form metadata as a JSON object
    #[arg(long)]
    pub metadata_json: Option<String>,
    /// KEY=VALUE (repeatable)
    #[arg(long = "tag", value_parser = parse_key_value)]
    pub tags: Vec<(String, String)>,
    /// Then open a promotion request into this stage (prints the request instead of the version); the
    /// gate's evaluations run by themselves, and a gate that needs no sign-offs approves when they pass
    #[arg(long, value_parser = one_of(api::Stage::ALL, api::Stage::as_str), requires = "justification")]
    pub request: Option<api::Stage>,
    /// Why the version should move (with --request)
    #[arg(long, requires = "request")]
    pub justification: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (admin)
    #[command(
        after_help = "Example:\n  modelgate user create bob --printed-name \"Bob Example\" --role validator"
    )]
    Create {
        /// The user's login name
        username: String,
        /// Full name, printed on signatures
        #[arg(long)]
        printed_name: String,
        /// An email address to reach them
        #[arg(long)]
        email: Option<String>,
        /// A role to grant (repeat for several): admin, or a role the policy in force declares
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read a password from standard input (first line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    #[command(after_help = "Example:\n  modelgate user list --output json")]
    List,
    /// Show a user
    #[command(after_help = "Example:\n  modelgate user show alice")]
    Show {
        /// The user's login name
        username: String,
    },
    /// Change a user (admin). Setting someone else's password is a reset: it logs in but cannot sign
    /// until its owner sets their own with `modelgate user passwd`
    #[command(
        after_help = "Examples:\n  modelgate user update bob --role validator --role compliance\n  modelgate user update bob --deactivate\n  echo \"$TEMPORARY_PASSWORD\" | modelgate user update bob --password-stdin"
    )]
    Update {
        /// The user's login name
        username: String,
        /// A new full name, printed on signatures
        #[arg(long)]
        printed_name: Option<String>,
        /// A new email address
        #[arg(long)]
        email: Option<String>,
        /// Replace the user's roles with these (repeatable)
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Deactivate the account: it can no longer log in (its records stay)
        #[arg(long, conflicts_with = "activate")]
        deactivate: bool,
        /// Reactivate a deactivated account
        #[arg(long)]
        activate: bool,
        /// Read a new password from standard input (first line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change your own password: asks for the current one and the new one (twice), or reads both from
    /// standard input (current on the first line, new on the second)
    #[command(
        after_help = "Examples:\n  modelgate user passwd\n  printf '%s\\n%s\\n' \"$CURRENT\" \"$NEW\" | modelgate user passwd --current-password-stdin"
    )]
    Passwd {
        /// Read the current password (first line) and the new one (second line) from standard input
        #[arg(long)]
        current_password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Upload a batch of production inputs (CSV or Parquet) and have the server compare it with the
    /// reference: drift per feature and for the dataset, judged by the policy of the model's tier; a breach
    /// acts as the policy says (notify, review, suspend). Prints the report; exit 4 when it breached
    #[command(after_help = "Examples:\n  \
        modelgate monitor push credit-default 3 batch-2026-12-01.parquet\n  \
        modelgate monitor push credit-default 3 batch.csv --reference holdout-2026q3 --row-id-column id --output json\n  \
        modelgate monitor push credit-default 3 labelled.csv --label-column defaulted --score-column p_default\n\n\
        The batch needs the reference dataset's feature columns. A batch with fewer rows than the policy's\n\
        min_batch_rows is stored but not judged. With --label-column the server also evaluates the rows (the\n\
        scores against the labels, as the approving evaluation did) and the policy's performance and\n\
        fairness limits judge them; with --row-id-column the scores are kept for `monitor outcomes`.")]
    Push {
        /// The model
        model: String,
        /// The deployed version the batch was scored by
        version: u32,
        /// The batch: CSV with a header row, or Parquet
        file: PathBuf,
        /// Compare with this registered dataset instead of the policy's reference (default: the dataset of
        /// the version's latest verified evaluation)
        #[arg(long)]
        reference: Option<String>,
        /// The batch's column of known outcomes, if any
        #[arg(long)]
        label_column: Option<String>,
        /// The batch's column of row ids (for outcomes sent later)
        #[arg(long)]
        row_id_column: Option<String>,
        /// The batch's column of the model's scores (binary: the probability of the positive class;
        /// regression: the prediction); read when the batch has labels or row ids [default: score]
        #[arg(long)]
        score_column: Option<String>,
        /// Wait for the judgment (the server always judges before it answers; accepted for scripts)
        #[arg(long)]
        wait: bool,
    },
    /// Send outcomes that arrived after the predictions: a CSV or Parquet file of row ids and labels,
    /// joined by row id onto the version's batches pushed with --row-id-column. The server evaluates the
    /// joined rows and the policy's performance and fairness limits judge them against the approving
    /// evaluation; a breach acts as the policy says. Exit 4 when it breached
    #[command(after_help = "Examples:\n  \
        modelgate monitor outcomes credit-default 3 outcomes-2026-11.csv --row-id-column id --label-column defaulted\n  \
        modelgate monitor outcomes credit-default 3 outcomes.parquet --row-id-column id --label-column defaulted --output json\n\n\
        Row ids no batch carries are counted and the first few named; a repeated row id counts once. The\n\
        newest 50 batches with row ids (up to 2,000,000 rows) are joined onto; where batches share a row id,\n\
        the newest wins.")]
    Outcomes {
        /// The model
        model: String,
        /// The deployed version whose batches the outcomes belong to
        version: u32,
        /// The outcomes: CSV with a header row, or Parquet
        file: PathBuf,
        /// The file's column of row ids (matched against the batches' row ids)
        #[arg(long)]
        row_id_column: String,
        /// The file's column of outcomes (labels)
        #[arg(long)]
        label_column: String,
    },
    /// How a model is watched: the policy's monitoring, the latest batches with drift per feature and
    /// breaches, and each KPI's latest value against its bounds
    #[command(
        after_help = "Examples:\n  modelgate monitor show credit-default\n  modelgate monitor show credit-default 3 --output json"
    )]
    Show {
        /// The model
        model: String,
        /// Only this version's batches
        version: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KpiCommand {
    /// Record an observation of a KPI; a value outside the policy's bounds acts as the policy says
    #[command(
        after_help = "Examples:\n  modelgate kpi record credit-default approval_rate 0.31\n  modelgate kpi record credit-default default_rate 0.042 --at 2026-12-01T00:00:00Z --version 3"
    )]
    Record {
        /// The model
        model: String,
        /// The KPI's name, as the policy's `kpis` list names it
        name: String,
        /// The observed value
        value: f64,
        /// When it was observed (RFC 3339); now when absent
        #[arg(long)]
        at: Option<String>,
        /// The version it is about; the version in production when absent
        #[arg(long)]
        version: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe URL to events: each is POSTed as a CloudEvents 1.0 JSON body, signed per Standard
    /// Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with backoff for a day
    #[command(after_help = "Examples:\n  \
        modelgate webhook create https://hooks.example.com/modelgate --events version.promoted,version.suspended,gate.denied --secret-file hook.secret\n  \
        modelgate webhook create https://chat.example.com/hook --events '*' --model credit-default\n\n\
        The secret file holds whsec_ and base64 (24 to 64 bytes); without --secret-file the server makes one\n\
        and prints it this once. Destinations on loopback or private addresses are refused unless the server\n\
        runs with --webhook-allow-host HOST. Event types: `modelgate webhook event-types`.")]
    Create {
        /// Where to POST events (http or https)
        url: String,
        /// Comma-separated event types (version.promoted, request.opened, gate.denied, …) or '*' for all
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Only this model's events
        #[arg(long)]
        model: Option<String>,
        /// A file holding the signing secret (whsec_<base64>); the server generates one when absent
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// List subscriptions (secrets are never shown)
    #[command(after_help = "Example:\n  modelgate webhook list --output json")]
    List,
    /// Delete a subscription: nothing more is delivered to it
    #[command(after_help = "Example:\n  modelgate webhook delete 3")]
    Delete {
        /// The subscription's id (`modelgate webhook list`)
        id: String,
    },
    /// Send a test event (`webhook.test`) to one subscription; see it arrive with `webhook deliveries`
    #[command(
        after_help = "Example:\n  modelgate webhook test 3 && modelgate webhook deliveries 3"
    )]
    Test {
        /// The subscription's id
        id: String,
    },
    /// A subscription's latest deliveries: state, every attempt's status or error, and latency
    #[command(after_help = "Example:\n  modelgate webhook deliveries 3 --output json")]
    Deliveries {
        /// The subscription's id
        id: String,
    },
    /// Replace a subscription's secret; the old one keeps signing (a second signature) for --overlap-hours
    #[command(
        after_help = "Example:\n  modelgate webhook rotate 3 --secret-file new.secret --overlap-hours 48"
    )]
    Rotate {
        /// The subscription's id
        id: String,
        /// A file holding the new secret; the server generates one (printed once) when absent
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Hours during which deliveries are signed with the old secret too (at most 720)
        #[arg(long, default_value_t = 24)]
        overlap_hours: u32,
    },
    /// The event types a subscription may name
    #[command(
        name = "event-types",
        after_help = "Example:\n  modelgate webhook event-types"
    )]
    EventTypes,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (for yourself, or for --user as admin); prints the secret once, alone on standard
    /// output (the token's id and expiry go to standard error)
    #[command(
        after_help = "Examples:\n  TOKEN=$(modelgate token create --name ci-pipeline --expires-in-days 30)\n  modelgate token create --name laptop --user alice"
    )]
    Create {
        /// A name for the token, to tell it apart in `token list`
        #[arg(long)]
        name: String,
        /// Days until it expires: 1 to the server's maximum (365 unless `serve --max-token-days` says otherwise)
        #[arg(long, default_value_t = 90)]
        expires_in_days: u32,
        /// Create it for this user instead of yourself (admin)
        #[arg(long)]
        user: Option<String>,
    },
    /// List your tokens (--all: everyone's, admin)
    #[command(after_help = "Example:\n  modelgate token list --all")]
    List {
        /// Everyone's tokens, not only yours (admin)
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by id
    #[command(after_help = "Example:\n  modelgate token revoke tok_0123456789abcdef")]
    Revoke {
        /// The token's id (`modelgate token list`)
        id: String,
    },
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument of every command, the globals included, says what it is for in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for argument in command.get_arguments() {
                let id = argument.get_id().as_str();
                if matches!(
                    argument.get_action(),
                    clap::ArgAction::Help
                        | clap::ArgAction::HelpShort
                        | clap::ArgAction::HelpLong
                        | clap::ArgAction::Version
                ) {
                    continue;
                }
                let has_help = argument
                    .get_help()
                    .is_some_and(|help| !help.to_string().trim().is_empty());
                if !has_help {
                    missing.push(format!("{path} {id}"));
                }
            }
            for subcommand in command.get_subcommands() {
                walk(
                    subcommand,
                    &format!("{path} {}", subcommand.get_name()),
                    missing,
                );
            }
        }
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, "modelgate", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help text:\n{}",
            missing.join("\n")
        );
    }
}
