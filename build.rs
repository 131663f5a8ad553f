//! Generates the crate's low-level client from the OpenAPI document.
//!
//! openapi/kafka-rest-v3.yaml (or the file named by KAFKA_REST_OPENAPI)
//!   → serde_norway → build/normalize.rs → progenitor → prettyplease
//!   → $OUT_DIR/codegen.rs, included privately by src/generated.rs.

#[path = "build/normalize.rs"]
mod normalize;

use normalize::{
    FoundOperation, Normalized, VENDORED_FINGERPRINT, WIRE_RECORD_SCHEMA, WIRE_REPORT_SCHEMA,
};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const VENDORED: &str = "openapi/kafka-rest-v3.yaml";
const OVERRIDE_VAR: &str = "KAFKA_REST_OPENAPI";
/// Set (to anything but empty) to print the repairs of any document.
const REPAIRS_VAR: &str = "KAFKA_REST_OPENAPI_REPAIRS";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=build/normalize.rs");
    println!("cargo::rerun-if-env-changed={OVERRIDE_VAR}");
    println!("cargo::rerun-if-env-changed={REPAIRS_VAR}");
    let (document, overridden) = match std::env::var_os(OVERRIDE_VAR) {
        Some(path) if !path.is_empty() => (PathBuf::from(path), true),
        _ => (PathBuf::from(VENDORED), false),
    };
    println!("cargo::rerun-if-changed={}", document.display());
    let asked = std::env::var_os(REPAIRS_VAR).is_some_and(|v| !v.is_empty());

    if let Err(message) = run(&document, overridden || asked) {
        // A readable failure instead of a panic's backtrace.
        eprintln!(
            "\nerror: cannot generate the Kafka REST client from {}\n",
            document.display()
        );
        for line in message.lines() {
            eprintln!("  {line}");
        }
        eprintln!();
        std::process::exit(1);
    }
}

/// Generates the client from `document`; its repairs are printed as
/// warnings when `show_repairs`, or when it is not the shipped document.
fn run(document: &Path, show_repairs: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(document).map_err(|e| {
        format!(
            "could not read the document: {e}.\n\
             Put an OpenAPI document of the Kafka REST v3 API at {VENDORED}, \
             or point {OVERRIDE_VAR} at one."
        )
    })?;
    let parsed: serde_json::Value = serde_norway::from_str(&text)
        .map_err(|e| format!("the document is not valid YAML or JSON: {e}"))?;
    let Normalized {
        document: canonical,
        operations,
        repairs,
    } = normalize::normalize(&parsed).map_err(|e| {
        format!("{e}.\nSee openapi/README.md for the documents this build accepts.")
    })?;
    let mut canonical = canonical;
    let wire_repairs = normalize::use_wire_types(&mut canonical).map_err(|e| {
        format!("{e}.\nSee openapi/README.md for the documents this build accepts.")
    })?;
    // The shipped document's repairs are known: a user's build stays quiet.
    if show_repairs || normalize::fingerprint(text.as_bytes()) != VENDORED_FINGERPRINT {
        for repair in repairs.iter().chain(&wire_repairs) {
            println!("cargo::warning={}: {repair}", document.display());
        }
    }

    let tokens = generate(&canonical).map_err(|first_error| {
        let culprits = find_culprits(&canonical, &operations);
        format!(
            "progenitor could not generate code: {first_error}\n{culprits}\
             What to do: check the operation's request body and response schemas against \
             openapi/README.md; add a repair to build/normalize.rs if Confluent's document \
             needs one (with a unit test in tests/normalize.rs), or set {OVERRIDE_VAR} to \
             the last document that built."
        )
    })?;
    let file: syn::File = syn::parse2(tokens)
        .map_err(|e| format!("progenitor produced code that does not parse: {e}"))?;
    let code = prettyplease::unparse(&file);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(out.join("codegen.rs"), code)
        .map_err(|e| format!("could not write codegen.rs: {e}"))?;
    Ok(())
}

/// Runs progenitor, turning its panics into errors.
fn generate(document: &serde_json::Value) -> Result<proc_macro2::TokenStream, String> {
    let spec: openapiv3::OpenAPI = serde_json::from_value(document.clone())
        .map_err(|e| format!("the normalized document is not valid OpenAPI 3.0: {e}"))?;
    let mut settings = GenerationSettings::default();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_derive("schemars::JsonSchema")
        .with_inner_type(path_tokens("crate::auth::Authenticator"))
        .with_hooks(HooksMode::Expected)
        // The produce call writes the crate's record and reads its report
        // directly, with no conversion through the document's types.
        .with_replacement(
            WIRE_RECORD_SCHEMA,
            "crate::wire::record::Record",
            std::iter::empty(),
        )
        .with_replacement(
            WIRE_REPORT_SCHEMA,
            "crate::client::response::ReportBody",
            std::iter::empty(),
        );
    let mut generator = Generator::new(&settings);

    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(|| generator.generate_tokens(&spec)));
    panic::set_hook(previous_hook);
    match result {
        Ok(Ok(tokens)) => Ok(tokens),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(panic_message(payload.as_ref())),
    }
}

/// Generates each wrapped operation on its own to say which one fails.
fn find_culprits(document: &serde_json::Value, operations: &[FoundOperation]) -> String {
    let mut lines = String::new();
    for op in operations {
        let mut alone = document.clone();
        if let Some(paths) = alone.get_mut("paths").and_then(|p| p.as_object_mut()) {
            paths.retain(|_, item| {
                item.pointer("/post/operationId").and_then(|v| v.as_str())
                    == Some(op.wrapped.operation_id())
            });
        }
        if let Err(e) = generate(&alone) {
            lines.push_str(&format!(
                "The failing operation: POST {} (operationId {}): {e}\n",
                op.original_path,
                op.original_id.as_deref().unwrap_or("none"),
            ));
        }
    }
    lines
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("progenitor panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("progenitor panicked: {s}")
    } else {
        "progenitor panicked".to_owned()
    }
}

fn path_tokens(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a Rust path")
}
