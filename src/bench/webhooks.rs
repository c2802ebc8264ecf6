//! `bench webhooks`: verification events of several lenders, each with a
//! webhook to a local receiver, appended at a steady rate, with the
//! deliveries projector and the webhook consumer on the bus this
//! configuration selects; the latency from the append call to the receiver
//! holding the signed request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofline_commands::handler::CommandContext;
use proofline_commands::lenders::{NewKey, Registration};
use proofline_domain::log::Metadata;
use proofline_domain::values::{ContactEmail, Name, WebhookUrl};
use proofline_projections::read_side::ReadSide;
use proofline_projections::webhooks::client::ClientOptions;
use proofline_projections::webhooks::{ConsumerOptions, WebhookConsumer, WebhookDeliveries};

use super::{BenchBus, Latencies, Scratch, progress, steady_verifications};
use crate::config::Config;

/// `bench webhooks`: verification events of `lenders` lenders, each with a
/// webhook to a local receiver, appended at `rate` per second for `seconds`,
/// with the deliveries projector and the webhook consumer running on the
/// bus this configuration selects. Prints the latency from the append call
/// to the receiver holding the signed request.
pub async fn webhooks(
    config: &Config,
    rate: u64,
    seconds: u64,
    lenders: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=20_000).contains(&rate), "--rate must be 1 to 20000");
    anyhow::ensure!(
        (1..=3_600).contains(&seconds),
        "--seconds must be 1 to 3600"
    );
    anyhow::ensure!(
        (1..=1_000).contains(&lenders),
        "--lenders must be 1 to 1000"
    );
    Scratch::run(config, false, async |scratch| {
        run(config, scratch, rate, seconds, lenders).await
    })
    .await
}

async fn run(
    config: &Config,
    scratch: &Scratch,
    rate: u64,
    seconds: u64,
    lenders: usize,
) -> anyhow::Result<()> {
    let store = scratch.store("log").await?;
    let read = scratch.read_db(8).await?;

    // The receiver: when each webhook-id arrived.
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let received = received.clone();
                async move {
                    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                        received
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(id.to_owned())
                            .or_insert_with(Instant::now);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let (stop_receiver, receiver_stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = receiver_stopped.await;
            })
            .await
    });

    // Lenders with webhooks.
    let allowed: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse()?];
    let sealing_key = Arc::new(proofline_commands::sealing::SealingKey::generate()?);
    let context = CommandContext::now(Metadata::default());
    let mut lender_ids = Vec::with_capacity(lenders);
    for n in 0..lenders {
        let registration = Registration {
            name: Name::parse("name", &format!("Bench Lender {n}"))?,
            contact_email: ContactEmail::parse(&format!("bench-{n}@lenders.example"))?,
            audiences: None,
        };
        let key = NewKey::generate().await?;
        let done = proofline_commands::lenders::register(
            store.as_ref(),
            &context,
            &registration,
            &key,
            &|_| Ok(Vec::new()),
        )
        .await?;
        let lender = done.value.lender_id;
        let secret = proofline_commands::webhooks::generate_secret()?;
        proofline_commands::webhooks::configure(
            store.as_ref(),
            &context,
            lender,
            WebhookUrl::parse(&url)?,
            &allowed,
            &sealing_key,
            &secret,
        )
        .await?;
        lender_ids.push(lender.as_uuid());
    }

    let bus = BenchBus::start(config, store.clone()).await?;
    let side = ReadSide::start_these(
        read.clone(),
        store.clone(),
        bus.bus.subscriptions(store.clone()),
        vec![Arc::new(WebhookDeliveries)],
    )
    .await?;
    let consumer = WebhookConsumer::new(
        store.clone(),
        read.clone(),
        sealing_key,
        ConsumerOptions {
            client: ClientOptions {
                allowed_networks: allowed,
                ..ClientOptions::default()
            },
            ..ConsumerOptions::default()
        },
    )
    .map_err(anyhow::Error::msg)?;
    let (stop_consumer, mut consumer_stopped) = tokio::sync::watch::channel(false);
    let wake = side.positions[0].1.clone();
    let consumer = tokio::spawn(async move {
        consumer
            .run(Some(wake), async move {
                let _ = consumer_stopped.wait_for(|s| *s).await;
            })
            .await
    });
    super::report::line(format!(
        "bench webhooks: {rate} verification events/s for {seconds} s over {lenders} lenders, \
         consumer on {} ({})",
        bus.bus.describe(),
        scratch.describe()
    ));

    super::report::set("bus", bus.bus.describe());
    let total = rate * seconds;
    let appended: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let progress = progress(total, "{bar:40} {pos}/{len} delivered {msg}");
    let writer = {
        let appended = appended.clone();
        let lender_ids = lender_ids.clone();
        steady_verifications(
            store.clone(),
            rate,
            total,
            move |n| lender_ids[(n as usize) % lender_ids.len()],
            move |event_id, _, started| {
                appended
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(event_id.to_string(), started);
            },
        )
    };
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    let mut writer = Some(writer);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = received.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        progress.set_position(got);
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().expect("checked").await??;
        }
        if writer.is_none() && got >= total {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {got} of {total} webhooks arrived in time"
        );
    }
    progress.finish_and_clear();
    let _ = stop_consumer.send(true);
    let _ = consumer.await;
    side.stop().await;
    bus.stop().await;
    let _ = stop_receiver.send(());
    let _ = receiver.await;

    let appended = appended.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let received = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let latencies: Vec<Duration> = appended
        .iter()
        .filter_map(|(id, at)| received.get(id).map(|r| r.saturating_duration_since(*at)))
        .collect();
    anyhow::ensure!(
        latencies.len() as u64 == total,
        "only {} of {total} webhooks arrived",
        latencies.len()
    );
    let latencies = Latencies::new(latencies);
    super::report::line(format!(
        "webhook latency (append called → receiver has it): p50 {:.1} ms, p90 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms over {total} deliveries",
        latencies.ms(0.5),
        latencies.ms(0.9),
        latencies.ms(0.99),
        latencies.ms(1.0)
    ));
    super::report::set("store", scratch.kind());
    super::report::set("rate", rate);
    super::report::set("deliveries", total);
    super::report::set("p50_ms", latencies.ms(0.5));
    super::report::set("p90_ms", latencies.ms(0.9));
    super::report::set("p99_ms", latencies.ms(0.99));
    super::report::set("max_ms", latencies.ms(1.0));
    read.close().await;
    store.close().await;
    Ok(())
}
