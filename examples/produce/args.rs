//! Command-line arguments.

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use std::path::PathBuf;

/// Produce records to Kafka through the Kafka REST v3 API, one per input line,
/// and print one JSON delivery report per record on stdout.
///
/// Without an endpoint, records go to an embedded emulator (topic `demo`,
/// 3 partitions). Everything else the library reads from the environment
/// (an OAuth client, CA and client certificate files, a proxy) applies too;
/// credential options given here replace those of the environment.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// The cluster's REST endpoint, e.g. https://pkc-abc12.us-east-1.aws.confluent.cloud:443.
    #[arg(
        long,
        help_heading = "Connection",
        env = "KAFKA_REST_ENDPOINT",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,

    /// The cluster id, e.g. lkc-abc12.
    #[arg(
        long,
        help_heading = "Connection",
        env = "KAFKA_CLUSTER_ID",
        value_name = "ID"
    )]
    pub cluster: Option<String>,

    /// API key (HTTP Basic user name).
    #[arg(
        help_heading = "Connection",
        long,
        env = "KAFKA_API_KEY",
        requires = "api_secret",
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// The secret of --api-key.
    #[arg(
        help_heading = "Connection",
        long,
        env = "KAFKA_API_SECRET",
        hide_env_values = true,
        requires = "api_key",
        value_name = "SECRET"
    )]
    pub api_secret: Option<String>,

    /// A static bearer token, used when no API key is given.
    #[arg(
        help_heading = "Connection",
        long,
        env = "KAFKA_REST_BEARER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub bearer_token: Option<String>,

    /// The identity pool of --bearer-token.
    #[arg(
        long,
        help_heading = "Connection",
        env = "KAFKA_IDENTITY_POOL_ID",
        value_name = "POOL"
    )]
    pub identity_pool_id: Option<String>,

    /// Confluent Cloud (paths under /kafka/v3) or the self-managed REST Proxy
    /// (/v3). Default: KAFKA_REST_FLAVOUR, else cloud.
    #[arg(long, help_heading = "Connection", value_enum)]
    pub flavour: Option<Flavour>,

    /// The topic. Defaults to `demo` on the embedded emulator.
    #[arg(long, help_heading = "Input", value_name = "NAME")]
    pub topic: Option<String>,

    /// Read records from this file instead of standard input.
    #[arg(
        long,
        help_heading = "Input",
        value_name = "PATH",
        conflicts_with = "count"
    )]
    pub file: Option<PathBuf>,

    /// What a line's value and key are: text, a JSON value, or standard
    /// base64 of bytes (--key-format and --value-format set one each).
    #[arg(long, value_enum, default_value_t = Format::String, help_heading = "Input")]
    pub format: Format,

    /// What a line's key is; default: --format.
    #[arg(
        long,
        help_heading = "Input",
        value_enum,
        value_name = "FORMAT",
        requires = "key_separator",
        help_heading = "Input"
    )]
    pub key_format: Option<Format>,

    /// What a line's value is; default: --format.
    #[arg(long, value_enum, value_name = "FORMAT", help_heading = "Input")]
    pub value_format: Option<Format>,

    /// Split each line into key and value at the first SEP.
    #[arg(long, help_heading = "Input", value_name = "SEP", conflicts_with = "count",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub key_separator: Option<String>,

    /// Send every record to this partition instead of letting the server choose.
    #[arg(long, help_heading = "Input", value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,

    /// A header added to every record, as name=value (repeatable).
    #[arg(long = "header", help_heading = "Input", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Produce N generated records (keys key-0, key-1, ...) instead of reading input.
    #[arg(long, help_heading = "Input", value_name = "N")]
    pub count: Option<u64>,

    /// Size in bytes of each generated value (at most 1048576, the most a
    /// record holds).
    #[arg(
        long,
        help_heading = "Input",
        value_name = "B",
        default_value_t = 100,
        requires = "count",
        value_parser = parse_value_size
    )]
    pub value_size: usize,

    /// Use the streaming producer (long-lived chunked requests) instead of one
    /// request per record.
    #[arg(long, help_heading = "Delivery")]
    pub stream: bool,

    /// How long the streaming producer waits to gather records into one
    /// write (0: write at once).
    #[arg(long, value_name = "MS", requires = "stream", help_heading = "Delivery",
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub linger_ms: Option<u64>,

    /// Streaming connections per topic.
    #[arg(long, help_heading = "Delivery", value_name = "N", default_value_t = 1, requires = "stream",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub connections: u16,

    /// Requests in flight at once without --stream.
    #[arg(long, help_heading = "Delivery", value_name = "N", default_value_t = 1, conflicts_with = "stream",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// How long a record may take, retries included, before it fails: the
    /// streaming producer's delivery timeout, or without --stream the
    /// deadline of one record's attempts.
    #[arg(long, help_heading = "Delivery", value_name = "MS", default_value_t = 120_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_timeout_ms: u64,

    /// Attempts per record, the first included. Default: 10 with --stream,
    /// 5 without.
    #[arg(long, help_heading = "Delivery", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,

    /// Which credential options were given on the command line (rather than
    /// read from the environment, where the library's own order applies).
    #[arg(skip)]
    pub on_command_line: CommandLineCredentials,
}

/// Credential options given on the command line.
#[derive(Debug, Default)]
pub struct CommandLineCredentials {
    pub api_key: bool,
    pub bearer_token: bool,
    pub identity_pool_id: bool,
}

impl Args {
    /// Parses the command line (and the environment variables of the options).
    pub fn parse_with_sources() -> Args {
        let matches = Args::command().get_matches();
        let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        args.on_command_line = CommandLineCredentials {
            api_key: given("api_key") || given("api_secret"),
            bearer_token: given("bearer_token"),
            identity_pool_id: given("identity_pool_id"),
        };
        args
    }
}

/// The API flavour.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Flavour {
    /// Confluent Cloud: /kafka/v3.
    Cloud,
    /// The self-managed REST Proxy: /v3.
    RestProxy,
}

/// How a line becomes a key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The line as text (STRING).
    String,
    /// The line parsed as a JSON value (JSON).
    Json,
    /// The line decoded from standard base64 (BINARY).
    Binary,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn parse_value_size(text: &str) -> Result<usize, String> {
    let size: usize = text.parse().map_err(|e| format!("{e}"))?;
    if size > ccloud_kafka_rest::DEFAULT_MAX_RECORD_BYTES {
        return Err(format!(
            "{size} is more than a record can hold ({} bytes)",
            ccloud_kafka_rest::DEFAULT_MAX_RECORD_BYTES
        ));
    }
    Ok(size)
}
