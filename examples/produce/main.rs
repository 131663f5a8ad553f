//! A console producer: one record per input line (or `--count N` generated
//! ones), one JSON delivery report per record on stdout, in input order.
//!
//! ```text
//! cargo run --example produce -- --count 1000
//! printf 'k1:v1\nk2:v2\n' | cargo run --example produce -- --key-separator :
//! cargo run --release --example produce -- --stream --connections 4 --count 200000 > reports.jsonl
//! cargo run --example produce -- --endpoint https://pkc-….confluent.cloud:443 --cluster lkc-… \
//!     --api-key … --api-secret … --topic orders --format json --file orders.jsonl
//! ```
//!
//! Without `--endpoint` (or `KAFKA_REST_ENDPOINT`) it produces to an embedded
//! emulator. Exits 0 only when every record was delivered.

mod args;
mod in_order;
mod input;
mod output;
mod source;

use args::{Args, Flavour};
use ccloud_kafka_rest::{
    ClientBuilder, Credentials, DeliveryReport, Error, ProduceRetries, Producer, ProducerConfig,
    ServerKind,
};
use ccloud_kafka_rest_emulator::Emulator;
use futures_util::FutureExt;
use futures_util::stream::StreamExt;
use input::{Item, Shape};
use output::{Failure, Outcome, Output};
use source::Source;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::watch;

/// Attempts per record without `--stream` unless `--max-attempts` says
/// otherwise (the streaming producer has its own default).
const UNARY_MAX_ATTEMPTS: u32 = 5;

fn main() -> ExitCode {
    let args = Args::parse_with_sources();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let code = runtime.block_on(async {
        match run(args).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    });
    // A read of the terminal cannot be cancelled: don't wait for it.
    runtime.shutdown_background();
    code
}

/// Records produced by a bare `cargo run --example produce` on a terminal.
const DEMO_RECORDS: u64 = 10;

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut builder = ClientBuilder::from_env()?;
    if let Some(flavour) = args.flavour {
        builder = builder.with_server_kind(match flavour {
            Flavour::Cloud => ServerKind::ConfluentCloud,
            Flavour::RestProxy => ServerKind::RestProxy,
        });
    }
    // Credentials from the environment (API key, OAuth client, bearer token)
    // are the library's; options on the command line replace them.
    let given = &args.on_command_line;
    if given.api_key {
        if let (Some(key), Some(secret)) = (&args.api_key, &args.api_secret) {
            builder = builder.with_credentials(Credentials::api_key(key, secret));
        }
    } else if given.bearer_token || given.identity_pool_id {
        let token = args.bearer_token.as_ref().ok_or(
            "--identity-pool-id goes with a bearer token: also pass --bearer-token \
             (for an OAuth client from the environment, set KAFKA_IDENTITY_POOL_ID)",
        )?;
        let mut credentials = Credentials::bearer_token(token);
        if let Some(pool) = &args.identity_pool_id {
            credentials = credentials.with_identity_pool_id(pool);
        }
        builder = builder.with_credentials(credentials);
    }

    // Kept alive until the end when used.
    let mut _emulator = None;
    // A bad topic name fails before anything starts or any input is read.
    if let Some(topic) = &args.topic {
        ccloud_kafka_rest::validate_topic(topic)?;
    }
    let topic = match &args.endpoint {
        Some(endpoint) => {
            let cluster = args.cluster.as_deref().ok_or(
                "--cluster (or KAFKA_CLUSTER_ID) is required with --endpoint: the cluster id, e.g. lkc-abc12",
            )?;
            builder = builder.with_endpoint(endpoint).with_cluster_id(cluster);
            args.topic.clone().ok_or(
                "--topic is required when producing to a cluster (it defaults to demo only on the embedded emulator)",
            )?
        }
        None => {
            let emulator = Emulator::start_default().await?;
            let topic = args.topic.clone().unwrap_or_else(|| "demo".to_owned());
            if emulator.partition_count(&topic).is_none() {
                emulator.create_topic(&topic, 3);
            }
            eprintln!(
                "no --endpoint (or KAFKA_REST_ENDPOINT): producing to the embedded emulator at {} \
                 (cluster {}, topic {topic} with 3 partitions)",
                emulator.url(),
                emulator.cluster_id()
            );
            builder = builder
                .with_endpoint(emulator.url())
                .with_cluster_id(emulator.cluster_id());
            _emulator = Some(emulator);
            topic
        }
    };
    let delivery_timeout = Duration::from_millis(args.delivery_timeout_ms);
    if !args.stream {
        // One request per record, retried by the client with the same
        // policy as the streaming producer's.
        let attempts = args.max_attempts.unwrap_or(UNARY_MAX_ATTEMPTS);
        builder = builder.with_produce_retries(
            ProduceRetries::new(attempts, delivery_timeout)
                .with_backoff(Duration::from_millis(100), Duration::from_secs(5)),
        );
    }
    let client = builder.build()?;

    // The demo: on the embedded emulator with nothing to read (no --count,
    // no --file, stdin a terminal), produce a few generated records.
    let count = match args.count {
        None if args.endpoint.is_none()
            && args.file.is_none()
            && std::io::stdin().is_terminal() =>
        {
            eprintln!(
                "no input given: producing {DEMO_RECORDS} generated records \
                 (pipe lines into stdin, or use --file or --count, to produce your own)"
            );
            Some(DEMO_RECORDS)
        }
        count => count,
    };

    // Ctrl-C: stop reading, finish what is in flight; a second one quits at once.
    let (interrupt_tx, interrupt) = watch::channel(false);
    let pressed = Arc::new(AtomicBool::new(false));
    let input_interrupt = source::Interrupt {
        pressed: Arc::clone(&pressed),
        watch: interrupt.clone(),
    };
    let mut output = Output::new(count);
    let progress = output.progress();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            progress.suspend(|| {
                eprintln!("interrupted: no more input is read; finishing the records in flight (Ctrl-C again to quit now)")
            });
            pressed.store(true, Ordering::SeqCst);
            interrupt_tx.send_replace(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let shape = Shape::new(&args);
    let source = match count {
        Some(count) => Source::Generated {
            count,
            size: args.value_size,
        },
        None => {
            let input: Box<dyn std::io::Read + Send> = match &args.file {
                Some(path) => Box::new(
                    std::fs::File::open(path)
                        .map_err(|e| format!("cannot open {}: {e}", path.display()))?,
                ),
                None => {
                    if std::io::stdin().is_terminal() {
                        output.progress().suspend(|| {
                            eprintln!(
                                "reading records from standard input, one per line; end with Ctrl-D"
                            )
                        });
                    }
                    Box::new(std::io::stdin())
                }
            };
            // On the embedded emulator, standard input that ends without a
            // line (a pipe, /dev/null) gets the demo as a terminal does.
            let demo = (args.endpoint.is_none() && args.file.is_none())
                .then_some((DEMO_RECORDS, args.value_size));
            Source::Lines { input, demo }
        }
    };
    let (retried, mut read_error) = if args.stream {
        let mut config = ProducerConfig::default()
            .with_connections(usize::from(args.connections))
            .with_delivery_timeout(delivery_timeout);
        if let Some(attempts) = args.max_attempts {
            config = config.with_max_attempts(attempts);
        }
        if let Some(linger) = args.linger_ms {
            config = config.with_linger(Duration::from_millis(linger));
        }
        let producer = Producer::with_config(client, config)?;
        let window = 10_000 * usize::from(args.connections);
        let hand = hand_over(producer.clone(), topic.clone(), interrupt.clone());
        let (handed, read_error) = source::start(source, shape, input_interrupt, hand);
        let outcomes = in_order::in_order(handed, window);
        drain(outcomes, &mut output).await?;
        producer.close().await;
        (producer.stats().retried, read_error)
    } else {
        let (input, read_error) = source::start(source, shape, input_interrupt, |item| item);
        let input = input.take_until(interrupted(interrupt.clone())).boxed();
        let retried = AtomicU64::new(0);
        let outcomes = input
            .map(|item| {
                let (client, topic, retried) = (&client, &topic, &retried);
                async move {
                    let record = item.map_err(Failure::local)?;
                    let outcome = client.produce(topic, &record).await;
                    retried.fetch_add(u64::from(resends(&outcome)), Ordering::Relaxed);
                    outcome.map_err(Failure::from)
                }
            })
            .buffered(usize::from(args.concurrency));
        drain(outcomes, &mut output).await?;
        (retried.load(Ordering::Relaxed), read_error)
    };

    let all_delivered = output.failed == 0;
    if output.delivered == 0 && all_delivered && !*interrupt.borrow() {
        eprintln!("the input held no records: nothing was produced");
    }
    output.finish(retried)?;
    let was_interrupted = *interrupt.borrow();
    match read_error.try_recv() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            eprintln!("error: reading input failed: {error}");
            return Ok(ExitCode::FAILURE);
        }
        // Still waiting on a read that Ctrl-C cannot cancel.
        Err(TryRecvError::Empty) if was_interrupted => {}
        Err(_) => {
            eprintln!("error: the input thread stopped before the input ended");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(if all_delivered && !was_interrupted {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Hands each record to the producer as it is read, in input order, on the
/// input thread (which is in the runtime's context). A record still waiting
/// for room in the producer when Ctrl-C comes is not sent.
fn hand_over(
    producer: Producer,
    topic: String,
    interrupt: watch::Receiver<bool>,
) -> impl FnMut(Item) -> in_order::Handed + Send + 'static {
    let runtime = tokio::runtime::Handle::current();
    move |item| {
        let record = item.map_err(Failure::local)?;
        let mut enqueue = std::pin::pin!(producer.enqueue(&topic, &record));
        // Most records are handed over at once; only one that waits for
        // room also watches for Ctrl-C.
        if let Some(delivery) = (&mut enqueue).now_or_never() {
            return Ok(delivery);
        }
        runtime.block_on(async {
            tokio::select! {
                biased;
                delivery = enqueue => Ok(delivery),
                () = interrupted(interrupt.clone()) => Err(Failure::interrupted()),
            }
        })
    }
}

/// How many times a record was sent again, as its outcome tells.
fn resends(outcome: &Result<DeliveryReport, Error>) -> u32 {
    let attempts = match outcome {
        Ok(report) => report.attempts,
        Err(Error::GaveUp { attempts, .. } | Error::MaybeWritten { attempts, .. }) => *attempts,
        Err(_) => 1,
    };
    attempts.saturating_sub(1)
}

/// Writes every outcome as it comes: buffered while more are ready at once,
/// flushed before waiting, so that a reader down a pipe sees each report when
/// it arrives and a fast stream still gets large writes.
async fn drain(
    outcomes: impl futures_util::Stream<Item = Outcome>,
    output: &mut Output,
) -> std::io::Result<()> {
    let mut outcomes = std::pin::pin!(outcomes);
    loop {
        let outcome = match outcomes.next().now_or_never() {
            Some(outcome) => outcome,
            None => {
                output.flush()?;
                outcomes.next().await
            }
        };
        match outcome {
            Some(outcome) => output.write(&outcome)?,
            None => return Ok(()),
        }
    }
}

/// Resolves once Ctrl-C was pressed.
async fn interrupted(mut interrupt: watch::Receiver<bool>) {
    if interrupt.wait_for(|pressed| *pressed).await.is_err() {
        std::future::pending::<()>().await;
    }
}
