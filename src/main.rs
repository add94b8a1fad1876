//! The `counterfoil` command: serve (the default), migrate, healthcheck, reconcile, pci-scan and
//! manage API keys.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use counterfoil::config::Settings;
use counterfoil::domain::api_key::Role;
use counterfoil::service::{KeyService, SystemClock};
use counterfoil::startup::{open_store, Application};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "counterfoil",
    version,
    about = "Hosted card payments for UK councils; keeps no card data"
)]
struct Cli {
    /// TOML configuration file (every key: deploy/counterfoil.example.toml).
    #[arg(long, global = true, env = "COUNTERFOIL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate {
        /// Then (PostgreSQL, as the schema's owner) give this application role only what the
        /// service needs: deploy/postgres/grants.sql for that role.
        #[arg(long, value_name = "ROLE")]
        grant_to: Option<String>,
    },
    /// Exit 0 if this host's server answers /healthz (a container HEALTHCHECK needs no shell).
    Healthcheck,
    /// Reconcile an account against the provider's records for a period (RFC 3339 times).
    Reconcile {
        #[arg(long)]
        account: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Scan every stored text value for card numbers; exit 1 if any is found (PCI DSS evidence).
    PciScan,
    /// Takings into the income system, now rather than at the worker's next round: build every
    /// batch that is due, push those waiting (LocalGov IMS), and read the providers' payouts;
    /// exit 1 if a day could not be built, a batch was refused or a provider could not be read.
    Income,
    /// Run the retention sweep once: pseudonymise personal data past retention.personal_data_days,
    /// remove records past the financial year plus retention.keep_years_after_financial_year.
    Purge {
        /// Only count what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// End every console session of a person (their subject at the identity provider), at once:
    /// someone who has left, or whose roles were removed.
    SignOut {
        /// The person's subject at the identity provider (the audit trail shows it as staff:<subject>).
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-compute the hash chain; exit 1 naming the first broken entry.
    Verify,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it once; only its hash is stored.
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        label: String,
        /// Refuse the key after this many days (e.g. a contractor's key).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List keys (never the keys themselves), with their last use and expiry.
    List,
    /// Revoke a key by its id (the 12 characters after `cf_`).
    Revoke { id: String },
}

/// GETs `/healthz` on the admin port if there is one, else on the main port, over loopback.
async fn healthcheck(settings: &Settings) -> ExitCode {
    let (bind, tls) = match &settings.server.admin_bind {
        Some(admin) => (admin.as_str(), false),
        None => (settings.server.bind.as_str(), settings.server.tls.is_some()),
    };
    let Ok(mut address) = bind.parse::<std::net::SocketAddr>() else {
        return ExitCode::FAILURE;
    };
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let scheme = if tls { "https" } else { "http" };
    // Loopback, and only "are you alive": the certificate names the public host, not 127.0.0.1.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .danger_accept_invalid_certs(tls)
        .build();
    let answered = match client {
        Ok(client) => client
            .get(format!("{scheme}://{address}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    };
    if answered {
        ExitCode::SUCCESS
    } else {
        eprintln!("counterfoil: no healthy answer from {scheme}://{address}/healthz");
        ExitCode::FAILURE
    }
}

fn parse_role(value: &str) -> Result<Role, String> {
    value
        .parse()
        .map_err(|e: counterfoil::domain::api_key::UnknownRole| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("counterfoil: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match counterfoil::telemetry::init(settings.environment, &settings.telemetry) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("counterfoil: cannot set up trace export (telemetry.otlp_endpoint): {e}");
            return ExitCode::from(2);
        }
    };
    let code = match run(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("counterfoil: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Flush the spans still buffered (a blocking call: off the async workers).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(address = %app.address(), public_url = app.public_url(), "counterfoil is listening");
            app.run_until_signalled().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => Ok(healthcheck(&settings).await),
        Command::Migrate { grant_to } => {
            settings.database.migrate_on_start = true;
            let store = open_store(&settings).await?;
            println!("migrations applied");
            if let Some(role) = grant_to {
                store.grant_application_role(&role).await?;
                println!("grants applied for {role}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reconcile { account, from, to } => reconcile(settings, account, from, to).await,
        Command::Purge { dry_run } => purge(settings, dry_run).await,
        Command::Audit {
            command: AuditCommand::Verify,
        } => audit_verify(settings).await,
        Command::PciScan => pci_scan(settings).await,
        Command::Income => income_round(settings).await,
        Command::Keys { command } => keys(settings, command).await,
        Command::SignOut { subject } => {
            let store = open_store(&settings).await?;
            let sessions = counterfoil::service::staff_sessions::StaffSessionService::new(
                store,
                Arc::new(SystemClock),
            );
            let subject = subject.strip_prefix("staff:").unwrap_or(&subject);
            let ended = sessions
                .revoke_all(
                    &format!("staff:{subject}"),
                    &counterfoil::domain::Actor::CommandLine("counterfoil sign-out"),
                )
                .await
                .map_err(anyhow::Error::msg)?;
            println!("{ended} console session(s) ended");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `counterfoil reconcile`: one run, printed as JSON.
async fn reconcile(
    mut settings: Settings,
    account: String,
    from: String,
    to: String,
) -> anyhow::Result<ExitCode> {
    let app = Application::build({
        // A one-off run needs the services, not a listening server of its own.
        settings.server.bind = "127.0.0.1:0".into();
        settings.poller.enabled = false;
        settings.notifications.worker = false;
        settings
    })
    .await?;
    let services = app.services();
    let body = serde_json::json!({"account": account, "from": from, "to": to});
    let reconciliation = &services.reconciliation;
    let (account, from, to) =
        counterfoil::http::requests::reconciliation_run(&body, |a| reconciliation.knows_account(a))
            .map_err(|e| anyhow::anyhow!("{e}: check --account, --from and --to"))?;
    let actor = counterfoil::domain::Actor::CommandLine("counterfoil reconcile");
    // The simulator (in development) answers on this process's own server.
    tokio::spawn(app.run_until_stopped());
    let run = services
        .reconciliation
        .run(&actor, &account, from, to)
        .await
        .map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&run)?);
    if run.status != "completed" {
        return Ok(ExitCode::FAILURE);
    }

    Ok(ExitCode::SUCCESS)
}

/// `counterfoil income`: one round of the income job, printed as JSON.
async fn income_round(mut settings: Settings) -> anyhow::Result<ExitCode> {
    let app = Application::build({
        // A one-off round needs the services, not the background jobs or a server of its own.
        settings.server.bind = "127.0.0.1:0".into();
        settings.poller.enabled = false;
        settings.notifications.worker = false;
        settings.retention.sweep = false;
        settings.income.worker = false;
        settings
    })
    .await?;
    let services = app.services();
    // The simulators (in development) answer on this process's own server.
    tokio::spawn(app.run_until_stopped());
    let built = services
        .income
        .build_due()
        .await
        .map_err(anyhow::Error::msg)?;
    let round = services
        .income
        .post_due()
        .await
        .map_err(anyhow::Error::msg)?;
    let payouts = services
        .payouts
        .read_all()
        .await
        .map_err(anyhow::Error::msg)?;
    let unbuilt: Vec<_> = built
        .unbuilt
        .iter()
        .map(|(a, why)| serde_json::json!({"account": a, "why": why}))
        .collect();
    let built: Vec<_> = built
        .built
        .iter()
        .map(|b| serde_json::json!({"reference": b.reference, "day": b.day, "rows": b.row_count, "control_total": b.control_total}))
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "built": built, "unbuilt": unbuilt, "posted": round.posted, "retrying": round.retrying,
            "failed": round.failed, "payouts_read": payouts.changed,
            "payouts_unread": payouts.unread.iter().map(|(a, why)| serde_json::json!({"account": a, "why": why})).collect::<Vec<_>>(),
        }))?
    );
    Ok(
        if round.failed > 0 || !payouts.unread.is_empty() || !unbuilt.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// `counterfoil purge`: the retention sweep, now.
async fn purge(mut settings: Settings, dry_run: bool) -> anyhow::Result<ExitCode> {
    settings.database.migrate_on_start = false;
    let store = open_store(&settings).await?;
    let privacy = counterfoil::service::data_protection::DataProtectionService::new(
        store,
        Arc::new(SystemClock),
        settings.retention.clone(),
    );
    let report = privacy
        .sweep(
            &counterfoil::service::data_protection::COMMAND_LINE,
            dry_run,
        )
        .await
        .map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&report)?);

    Ok(ExitCode::SUCCESS)
}

/// Who the audit trail says made a key change at the command line.
const OPERATOR: counterfoil::domain::Actor =
    counterfoil::domain::Actor::CommandLine("counterfoil command line");

/// `counterfoil audit verify`: walks the audit chain.
async fn audit_verify(mut settings: Settings) -> anyhow::Result<ExitCode> {
    settings.database.migrate_on_start = false;
    let store = open_store(&settings).await?;
    let audit = counterfoil::service::audit::AuditService::new(store, Arc::new(SystemClock));
    let report = audit.verify().await.map_err(anyhow::Error::msg)?;
    // The console shows when the chain was last verified, by whom, and its head then.
    let actor = counterfoil::domain::Actor::CommandLine("counterfoil audit verify");
    if let Err(e) = audit
        .record(&actor, "audit.verified", "audit", report.detail())
        .await
    {
        eprintln!("audit verify: the result could not be recorded in the trail: {e}");
    }
    println!(
        "audit verify: {} chained entries checked; {} written before the chain existed",
        report.entries, report.unchained
    );
    println!(
        "audit verify: head is entry {} with hash {} (keep a copy elsewhere)",
        report.head_seq, report.head_hash
    );
    Ok(match &report.broken {
        None => {
            println!("audit verify: the chain is intact");
            ExitCode::SUCCESS
        }
        Some(broken) => {
            println!("audit verify: BROKEN: {broken}");
            ExitCode::FAILURE
        }
    })
}

/// `counterfoil pci-scan`: reads every text column for card numbers.
async fn pci_scan(mut settings: Settings) -> anyhow::Result<ExitCode> {
    settings.database.migrate_on_start = false;
    let store = open_store(&settings).await?;
    let report = counterfoil::service::compliance::pci_scan(store.as_ref()).await?;
    if report.tables == 0 {
        // Clean-looking evidence from the wrong database would be worse than none.
        anyhow::bail!("no Counterfoil tables at database.url: is this the right database?");
    }
    println!(
        "pci-scan: {} values in {} text columns of {} tables ({} database)",
        report.values,
        report.columns,
        report.tables,
        store.backend()
    );
    if report.findings.is_empty() {
        println!("pci-scan: no card numbers found");
    } else {
        for finding in &report.findings {
            println!(
                "FOUND table={} column={} row={}",
                finding.table, finding.column, finding.row
            );
        }
        println!(
            "pci-scan: {} value(s) look like card numbers; the values are not shown",
            report.findings.len()
        );
        return Ok(ExitCode::FAILURE);
    }

    Ok(ExitCode::SUCCESS)
}

/// `counterfoil keys`: create, list and revoke API keys.
async fn keys(settings: Settings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let keys = KeyService::new(open_store(&settings).await?, Arc::new(SystemClock));
    match command {
        KeysCommand::Create {
            role,
            label,
            expires_in_days,
        } => {
            let expires_at = expires_in_days
                .map(|days| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
            let (record, token) = keys
                .create_expiring(&OPERATOR, role, &label, expires_at)
                .await
                .map_err(anyhow::Error::msg)?;
            eprintln!(
                "Created {} key {} ({}). Store it now: it is shown only once.",
                record.role, record.id, record.label
            );
            println!("{token}");
        }
        KeysCommand::List => {
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "{:<14} {:<8} {:<21} {:<21} {:<21} {:<21} label",
                "id", "role", "created", "last used", "expires", "revoked"
            );
            for k in keys.list().await.map_err(anyhow::Error::msg)? {
                println!(
                    "{:<14} {:<8} {:<21} {:<21} {:<21} {:<21} {}",
                    k.id,
                    k.role.as_str(),
                    when(Some(k.created_at)),
                    when(k.last_used_at),
                    when(k.expires_at),
                    when(k.revoked_at),
                    k.label
                );
            }
        }
        KeysCommand::Revoke { id } => {
            if keys
                .revoke(&OPERATOR, &id)
                .await
                .map_err(anyhow::Error::msg)?
            {
                println!("revoked {id}");
            } else {
                eprintln!("no active key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }

    Ok(ExitCode::SUCCESS)
}
