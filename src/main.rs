use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::Parser;
use proofline::cli::{BenchCommand, Cli, Command, LogCommand, ReplayArgs, Role, ServeArgs};
use proofline::config::Config;

/// Exit status for a configuration or usage error, as opposed to a failure
/// at run time (1).
const EXIT_CONFIG: u8 = 2;
/// Exit status of `log verify` for a file that is intact but whose
/// checkpoints only the file's own keys vouch for (no `--public-key`).
const EXIT_SELF_ATTESTED: u8 = 3;

fn main() -> ExitCode {
    proofline_projections::webhooks::client::install_crypto_provider();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let role = match &cli.command {
        None => Role::All.name(),
        Some(Command::Serve(args)) => args.role.name(),
        Some(_) => "cli",
    };
    proofline::logging::init(config.log_format, role);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve(ServeArgs::default())),
        config,
    ));
    match result {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` keeps the whole cause chain on one line.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Log {
            which: LogCommand::Verify { file, public_key },
        } => verify_log(&file, &public_key),
        Command::Log {
            which: LogCommand::ReplayVerification(args),
        } => replay_verification(args).await,
        other => run_command(other, config).await.map(|()| ExitCode::SUCCESS),
    }
}

/// `proofline log verify`: 0 when intact and signed by a key given from
/// outside the file, 3 when intact but self-attested, 1 otherwise.
/// The `--public-key` values, as keys.
fn public_keys(texts: &[String]) -> anyhow::Result<Vec<ed25519_dalek::VerifyingKey>> {
    texts
        .iter()
        .map(|text| {
            proofline_domain::checkpoint::public_key(text)
                .context("--public-key: an Ed25519 public key in base64url (32 bytes)")
        })
        .collect()
}

fn verify_log(file: &std::path::Path, public_keys_given: &[String]) -> anyhow::Result<ExitCode> {
    let keys = public_keys(public_keys_given)?;
    let verified = proofline::logfile::verify_file(file, &keys)?;
    println!(
        "ok: {} events, positions {} to {}, chain intact; last hash {}",
        verified.events, verified.first_position, verified.last_position, verified.last_hash
    );
    match verified.last_checkpoint {
        Some(position) => println!(
            "{} signed checkpoints verified, the last at position {position}",
            verified.checkpoints
        ),
        None => println!("no signed checkpoint in the file"),
    }
    if let Some(root) = verified.root {
        use base64::Engine;
        println!(
            "Merkle tree recomputed: {} events, root {}; {} checkpoint notes match it",
            verified.last_position,
            base64::engine::general_purpose::STANDARD.encode(root),
            verified.notes
        );
    }
    if verified.self_attested {
        println!(
            "integrity only, signatures self-attested: the checkpoints were checked with keys the file itself records; \
             give the service's keys with --public-key (from GET /v1/log/public-key, fetched apart from the file) to know who signed them"
        );
        return Ok(ExitCode::from(EXIT_SELF_ATTESTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The API key for `--url`: the `--key-file`'s, else PROOFLINE_API_KEY.
fn api_key(key_file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let key = match key_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => std::env::var("PROOFLINE_API_KEY")
            .context("--url needs an auditor key: PROOFLINE_API_KEY or --key-file")?,
    };
    Ok(key.trim().to_owned())
}

/// `proofline log replay-verification`: 0 when the replay makes the
/// recorded outcome, 1 when it differs (or cannot be made).
async fn replay_verification(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    use proofline::replay::{Ask, Source};
    anyhow::ensure!(
        args.ids.len() == args.presentation.len(),
        "{} ids and {} --presentation files: give one presentation per id, in the same order",
        args.ids.len(),
        args.presentation.len()
    );
    anyhow::ensure!(
        args.nonce.is_none() || args.ids.len() == 1,
        "--nonce goes with one id only"
    );
    let source = match (args.log, args.url) {
        (Some(file), _) => Source::File(file),
        (None, Some(url)) => Source::Api {
            key: api_key(args.key_file.as_deref())?,
            url,
        },
        (None, None) => anyhow::bail!("give --log FILE or --url URL"),
    };
    let max_age_seconds = i64::try_from(args.max_age).unwrap_or(i64::MAX);
    let asks: Vec<Ask> = args
        .ids
        .into_iter()
        .zip(args.presentation)
        .map(|(id, presentation)| Ask {
            id,
            presentation,
            nonce: args.nonce.clone(),
            max_age_seconds,
        })
        .collect();
    let keys = public_keys(&args.public_key)?;
    let results = proofline::replay::run(source, &asks, &keys).await?;
    let unproven = results
        .iter()
        .any(|(_, result)| result.as_ref().is_ok_and(|r| r.unproven().is_some()));
    Ok(match proofline::replay::print(&results, args.json) {
        true if unproven => ExitCode::from(3),
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

async fn run_command(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => proofline::serve::run(config, args).await,
        Command::Migrate => {
            proofline::app::migrate_only(&config).await?;
            println!("migrations applied ({})", config.describe_store());
            Ok(())
        }
        Command::Keygen { out } => {
            let kid = proofline::keygen::run(&out)?;
            println!(
                "wrote a new Ed25519 signing key to {} (kid {kid}, mode 0600)",
                out.display()
            );
            Ok(())
        }
        Command::Log { which } => run_log(&config, which).await,
        Command::Rebuild { name } => proofline::rebuild::run(&config, name.as_deref()).await,
        Command::Demo {
            url,
            oid4vp,
            serve_issuer: false,
            ..
        } => proofline::demo::run(&config, &url, oid4vp)
            .await
            .map(|_| ()),
        Command::Demo {
            url,
            oid4vp,
            issuer_bind,
            once,
            ..
        } => {
            let options = proofline::demo::ServeIssuer {
                bind: issuer_bind,
                once,
            };
            proofline::demo::serve_issuer(&config, &url, oid4vp, &options)
                .await
                .map(|_| ())
        }
        Command::Wallet { action } => proofline::oid4vp_wallet::run(action).await,
        Command::Bench { json, which } => bench(&config, json, which).await,
    }
}

async fn run_log(config: &Config, which: LogCommand) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    match which {
        LogCommand::Verify { file, public_key } => verify_log(&file, &public_key).map(|_| ()),
        LogCommand::ReplayVerification(args) => replay_verification(args).await.map(|_| ()),
        LogCommand::VerifyEvidence { file, public_key } => {
            let key = proofline::evidence::LogKey::parse(&public_key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let proven = proofline::evidence::verify(&text, &key)?;
            println!(
                "ok: verification {} ({}) is the event at position {} of the log {}, included in its signed tree of {} events; the receipt matches it",
                proven.verification_id,
                if proven.verified {
                    "verified"
                } else {
                    "rejected"
                },
                proven.position,
                proven.origin,
                proven.tree_size
            );
            Ok(())
        }
        LogCommand::Consistency {
            url,
            key_file,
            since,
            public_key,
        } => {
            let key = public_key
                .as_deref()
                .map(proofline::evidence::LogKey::parse)
                .transpose()?;
            let kept = std::fs::read_to_string(&since)
                .with_context(|| format!("cannot read {}", since.display()))?;
            let api_key = api_key(key_file.as_deref())?;
            let (from, to) =
                proofline::evidence::consistency_with_server(&url, &api_key, &kept, key).await?;
            println!("grew from {from} to {to}, consistent");
            Ok(())
        }
        LogCommand::Import { file } => {
            let imported = proofline::logfile::import_file(config, &file).await?;
            println!(
                "imported {imported} events into {}",
                config.describe_store()
            );
            Ok(())
        }
        LogCommand::Export {
            after,
            out,
            url,
            key_file,
        } => {
            let mut writer: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let show_progress = out.is_some() && std::io::stderr().is_terminal();
            let written = match url {
                Some(url) => {
                    let key = api_key(key_file.as_deref())?;
                    proofline::logfile::export_from_api(
                        &url,
                        &key,
                        after,
                        &mut writer,
                        show_progress,
                    )
                    .await?
                }
                None => {
                    let store = proofline::app::open_store(
                        config,
                        proofline::app::Migrations::RequireCurrent,
                    )
                    .await?;
                    let written = proofline::logfile::export_from_store(
                        store.clone(),
                        after,
                        &mut writer,
                        show_progress,
                    )
                    .await?;
                    store.close().await;
                    written
                }
            };
            drop(writer);
            eprintln!("exported {written} events");
            Ok(())
        }
    }
}

/// `proofline bench`: the benchmark `which`, printing its figures as
/// lines, or as one JSON object with `json`.
async fn bench(
    config: &proofline::config::Config,
    json: bool,
    which: BenchCommand,
) -> anyhow::Result<()> {
    proofline::bench::report::start(json);
    let outcome = match which {
        BenchCommand::Append {
            writers,
            events,
            raw_batch,
            rounds,
            keep,
        } => proofline::bench::append(config, writers, events, raw_batch, rounds, keep).await,
        BenchCommand::Webhooks {
            rate,
            seconds,
            lenders,
        } => proofline::bench::webhooks(config, rate, seconds, lenders).await,
        BenchCommand::Auth { requests } => proofline::bench::auth(config, requests).await,
        BenchCommand::Lag { rate, seconds } => proofline::bench::lag(config, rate, seconds).await,
        BenchCommand::Rebuild { events } => proofline::bench::rebuild(config, events).await,
        BenchCommand::Verify {
            presentations,
            clients,
        } => proofline::bench::verify(config, presentations, clients).await,
        BenchCommand::Oid4vp { flows, clients } => {
            proofline::bench::oid4vp(config, flows, clients).await
        }
        BenchCommand::Tlog {
            events,
            seconds,
            clients,
        } => proofline::bench::tlog(config, events, seconds, clients).await,
        BenchCommand::TlogLoad {
            base,
            mode,
            key_file,
            size,
            seconds,
            clients,
        } => {
            proofline::bench::tlog_load(proofline::bench::TlogLoadArgs {
                base,
                mode,
                key_file,
                size,
                seconds,
                clients,
            })
            .await
        }
        BenchCommand::VerifyLoad {
            base,
            key_file,
            requests,
            clients,
            rate,
        } => {
            proofline::bench::verify_load(proofline::bench::VerifyLoadArgs {
                base,
                key_file,
                requests,
                clients,
                rate,
            })
            .await
        }
        BenchCommand::Oid4vpLoad {
            base,
            mode,
            lender_key_file,
            credential,
            holder_key,
            audience,
            flows,
            clients,
        } => {
            proofline::bench::oid4vp_load(proofline::bench::LoadArgs {
                base,
                mode,
                lender_key_file,
                credential,
                holder_key,
                audience,
                flows,
                clients,
            })
            .await
        }
    };
    if outcome.is_ok() {
        proofline::bench::report::finish();
    }
    outcome
}
