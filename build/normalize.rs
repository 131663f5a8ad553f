//! Turns a Kafka REST v3 OpenAPI document (ours, or any version Confluent has
//! published for Confluent Cloud or the self-managed REST Proxy) into the small,
//! canonical document the code generator is run on.
//!
//! The wrapped operations are found by method and path, never by operation id,
//! and rebuilt in one canonical shape so that the generated Rust API is the same
//! whichever document went in. Every change that goes beyond trimming is
//! reported as a repair so that the build can print it.
//!
//! This file is shared by `build.rs` and the `normalize` integration test, so it
//! depends only on `serde_json`.

use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;

/// Path of the produce operation in the canonical document. The API prefix
/// (`/kafka/v3` on Confluent Cloud, `/v3` on the REST Proxy) moves into the
/// client's base URL, so one generated call serves both.
pub const PRODUCE_PATH: &str = "/clusters/{cluster_id}/topics/{topic_name}/records";
/// Path of the batch operation (REST Proxy only) in the canonical document.
pub const PRODUCE_BATCH_PATH: &str = "/clusters/{cluster_id}/topics/{topic_name}/records:batch";

/// Schema the produce operation's request body refers to in the canonical
/// document. The build replaces its generated type with the crate's own
/// `Record`, whose serialization is the wire format the producer streams too.
pub const WIRE_RECORD_SCHEMA: &str = "WireRecord";
/// Schema of the produce operation's success response in the canonical
/// document, replaced by the crate's own report reader.
pub const WIRE_REPORT_SCHEMA: &str = "WireReport";

/// The fingerprint ([`fingerprint`]) of the document the crate ships in
/// `openapi/kafka-rest-v3.yaml`: its repairs are known, and the build keeps
/// them to itself. A test holds it to the file.
pub const VENDORED_FINGERPRINT: u64 = 0xd250_9386_62cd_c6b3;

/// A document's fingerprint: FNV-1a over its bytes, enough to tell the
/// shipped document from any other.
pub fn fingerprint(text: &[u8]) -> u64 {
    text.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An operation the crate wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wrapped {
    /// `POST …/clusters/{cluster}/topics/{topic}/records`
    Produce,
    /// `POST …/clusters/{cluster}/topics/{topic}/records:batch`
    ProduceBatch,
}

impl Wrapped {
    /// The operation id the canonical document gives it; progenitor names the
    /// generated method after it (`produce_record`, `produce_records_batch`).
    pub fn operation_id(self) -> &'static str {
        match self {
            Wrapped::Produce => "produceRecord",
            Wrapped::ProduceBatch => "produceRecordsBatch",
        }
    }

    fn canonical_path(self) -> &'static str {
        match self {
            Wrapped::Produce => PRODUCE_PATH,
            Wrapped::ProduceBatch => PRODUCE_BATCH_PATH,
        }
    }

    fn classify(path: &str) -> Option<Wrapped> {
        // Whatever prefix the document uses, the operation is identified by
        // what follows it.
        let tail = &path[path.find("/clusters/")?..];
        let segments: Vec<&str> = tail.trim_start_matches('/').split('/').collect();
        let is_param = |s: &str| s.len() > 2 && s.starts_with('{') && s.ends_with('}');
        match segments.as_slice() {
            ["clusters", c, "topics", t, last] if is_param(c) && is_param(t) => match *last {
                "records" => Some(Wrapped::Produce),
                "records:batch" => Some(Wrapped::ProduceBatch),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Where a wrapped operation came from in the input document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundOperation {
    /// Which operation.
    pub wrapped: Wrapped,
    /// Its path in the input document.
    pub original_path: String,
    /// Its operation id in the input document, if it had one.
    pub original_id: Option<String>,
}

/// The result of normalizing a document.
#[derive(Debug)]
pub struct Normalized {
    /// The canonical document, ready for the generator.
    pub document: Value,
    /// The wrapped operations found, produce first.
    pub operations: Vec<FoundOperation>,
    /// One line per change made to the document beyond trimming.
    pub repairs: Vec<String>,
}

/// Why a document cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct NormalizeError(pub String);

impl fmt::Display for NormalizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NormalizeError {}

fn fail<T>(message: impl Into<String>) -> Result<T, NormalizeError> {
    Err(NormalizeError(message.into()))
}

/// Normalizes a parsed OpenAPI document. See `openapi/README.md` for the list
/// of changes and why each is made.
pub fn normalize(input: &Value) -> Result<Normalized, NormalizeError> {
    let Some(root) = input.as_object() else {
        return fail("the document is not a mapping at its top level; is it an OpenAPI document?");
    };
    let mut repairs = Vec::new();

    let version = match root.get("openapi") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => other.to_string(),
        None => {
            return fail(
                "the document has no `openapi` version field; only OpenAPI 3.0 documents are supported",
            );
        }
    };
    if !version.starts_with("3.0") {
        return fail(format!(
            "the document declares OpenAPI {version}; the generator reads OpenAPI 3.0 only. \
             Use Confluent's OpenAPI 3.0 document of the Kafka REST v3 API"
        ));
    }

    let Some(paths) = root.get("paths").and_then(Value::as_object) else {
        return fail("the document has no `paths`");
    };
    let empty = Map::new();
    let components = root
        .get("components")
        .and_then(Value::as_object)
        .unwrap_or(&empty);

    let mut found: Vec<(FoundOperation, Value)> = Vec::new();
    for (path, item) in paths {
        let Some(wrapped) = Wrapped::classify(path) else {
            continue;
        };
        let Some(item) = item.as_object() else {
            continue;
        };
        let Some(operation) = item.get("post").and_then(Value::as_object) else {
            continue;
        };
        if let Some((first, _)) = found.iter().find(|(f, _)| f.wrapped == wrapped) {
            repairs.push(format!(
                "ignored POST {path}: the same operation is already taken from POST {}",
                first.original_path
            ));
            continue;
        }
        let original_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let canonical =
            canonical_operation(path, wrapped, item, operation, components, &mut repairs)?;
        found.push((
            FoundOperation {
                wrapped,
                original_path: path.clone(),
                original_id,
            },
            canonical,
        ));
    }
    found.sort_by_key(|(f, _)| f.wrapped as u8);
    if !found.iter().any(|(f, _)| f.wrapped == Wrapped::Produce) {
        return fail(
            "the document has no produce operation (POST .../clusters/{cluster_id}/topics/{topic_name}/records); \
             it must be a Kafka REST v3 document that includes the Records (v3) operations",
        );
    }

    for (op, _) in &found {
        match &op.original_id {
            Some(id) if id == op.wrapped.operation_id() => {}
            Some(id) => repairs.push(format!(
                "POST {}: operation id `{id}` renamed to `{}` so the generated method keeps its name",
                op.original_path,
                op.wrapped.operation_id()
            )),
            None => repairs.push(format!(
                "POST {}: operation had no id; named it `{}`",
                op.original_path,
                op.wrapped.operation_id()
            )),
        }
    }

    // Only the schemas the kept operations reach, each repaired where needed.
    let source_schemas = components
        .get("schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut schemas = Map::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut seen = BTreeSet::new();
    for (_, operation) in &found {
        collect_schema_refs(operation, &mut queue);
    }
    while let Some(name) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(schema) = source_schemas.get(&name) else {
            return fail(format!(
                "schema `{name}` is referenced by a produce operation but is not defined under components/schemas"
            ));
        };
        let mut schema = schema.clone();
        strip_examples(&mut schema);
        repair_schema(&name, &mut schema, true, &mut repairs);
        collect_schema_refs(&schema, &mut queue);
        schemas.insert(name, schema);
    }

    let mut info = Map::new();
    let source_info = root.get("info").and_then(Value::as_object);
    let title = source_info
        .and_then(|i| i.get("title"))
        .and_then(Value::as_str)
        .unwrap_or("Kafka REST v3");
    info.insert("title".into(), json!(title));
    let api_version = match source_info.and_then(|i| i.get("version")) {
        Some(Value::String(v)) => v.clone(),
        Some(other) if !other.is_null() => {
            let v = other.to_string();
            repairs.push(format!("info.version `{v}` written as a string"));
            v
        }
        _ => {
            repairs.push("info.version missing; set to `3.0.0`".into());
            "3.0.0".into()
        }
    };
    info.insert("version".into(), json!(api_version));

    let mut out_paths = Map::new();
    for (op, operation) in &found {
        out_paths.insert(
            op.wrapped.canonical_path().into(),
            json!({ "post": operation }),
        );
    }
    let mut out_components = Map::new();
    out_components.insert("schemas".into(), Value::Object(schemas));
    if let Some(security) = components.get("securitySchemes") {
        out_components.insert("securitySchemes".into(), security.clone());
    }

    let document = json!({
        "openapi": version,
        "info": info,
        "paths": out_paths,
        "components": out_components,
    });
    Ok(Normalized {
        document,
        operations: found.into_iter().map(|(f, _)| f).collect(),
        repairs,
    })
}

/// Points the canonical produce operation's request body and JSON success
/// responses at [`WIRE_RECORD_SCHEMA`] and [`WIRE_REPORT_SCHEMA`], whose
/// generated types the build replaces with the crate's own. The document's
/// schemas stay in `components`, so their types are still generated. The
/// error responses get the error model the crate reads
/// ([`supply_error_model`]). Returns the repairs made.
pub fn use_wire_types(document: &mut Value) -> Result<Vec<String>, NormalizeError> {
    let mut repairs = Vec::new();
    let wire_ref = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let placeholders = [
        (WIRE_RECORD_SCHEMA, "One record as the client writes it."),
        (
            WIRE_REPORT_SCHEMA,
            "One delivery report as the client reads it.",
        ),
    ]
    .map(|(name, description)| {
        (
            name,
            json!({ "description": description, "type": "object" }),
        )
    });
    let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return fail("the canonical document has no components/schemas");
    };
    for (name, placeholder) in &placeholders {
        if schemas
            .get(*name)
            .is_some_and(|existing| existing != placeholder)
        {
            return fail(format!(
                "the document defines a schema named `{name}`, a name the build reserves for the produce call's own types"
            ));
        }
    }
    name_produce_schemas(document, &mut repairs);
    supply_error_model(document, &mut repairs);
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, placeholder) in placeholders {
            schemas.insert(name.into(), placeholder);
        }
    }

    let pointer = format!("/paths/{}/post", PRODUCE_PATH.replace('/', "~1"));
    let Some(operation) = document.pointer_mut(&pointer) else {
        return fail("the canonical document has no produce operation");
    };
    if let Some(schema) = operation.pointer_mut("/requestBody/content/application~1json/schema") {
        *schema = wire_ref(WIRE_RECORD_SCHEMA);
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return fail("the canonical produce operation has no responses");
    };
    let mut reports = false;
    for (status, response) in responses.iter_mut() {
        if !status.starts_with('2') {
            continue;
        }
        if let Some(schema) = response.pointer_mut("/content/application~1json/schema") {
            *schema = wire_ref(WIRE_REPORT_SCHEMA);
            reports = true;
        }
    }
    if !reports {
        repairs.push(format!(
            "POST {PRODUCE_PATH}: no JSON success response; added 200 with the delivery report"
        ));
        responses.insert(
            "200".into(),
            json!({
                "description": "The delivery report.",
                "content": { "application/json": { "schema": wire_ref(WIRE_REPORT_SCHEMA) } }
            }),
        );
    }
    Ok(repairs)
}

/// Rebuilds one wrapped operation: canonical id and path parameters, request
/// body and responses inlined, JSON media types only.
fn canonical_operation(
    path: &str,
    wrapped: Wrapped,
    path_item: &Map<String, Value>,
    operation: &Map<String, Value>,
    components: &Map<String, Value>,
    repairs: &mut Vec<String>,
) -> Result<Value, NormalizeError> {
    let mut out = Map::new();
    out.insert("operationId".into(), json!(wrapped.operation_id()));
    for key in ["summary", "description"] {
        if let Some(text) = operation.get(key).filter(|v| v.is_string()) {
            out.insert(key.into(), text.clone());
        }
    }

    // The generated method takes (cluster_id, topic_name, body) whatever the
    // document calls its path parameters. Parameters may be declared on the
    // path item as well as on the operation (which may redeclare one); every
    // other parameter is reported once.
    let mut dropped: Vec<(&str, &str)> = Vec::new();
    for holder in [path_item, operation] {
        let Some(params) = holder.get("parameters").and_then(Value::as_array) else {
            continue;
        };
        for param in params {
            let param = resolve(param, components, "parameters")?;
            let place = param.get("in").and_then(Value::as_str).unwrap_or("");
            let name = param.get("name").and_then(Value::as_str).unwrap_or("?");
            if place != "path" && !dropped.contains(&(place, name)) {
                dropped.push((place, name));
            }
        }
    }
    for (place, name) in dropped {
        repairs.push(format!(
            "POST {path}: dropped {place} parameter `{name}`, which the client does not send"
        ));
    }
    out.insert(
        "parameters".into(),
        json!([
            {"name": "cluster_id", "in": "path", "required": true, "schema": {"type": "string"},
             "description": "The Kafka cluster ID."},
            {"name": "topic_name", "in": "path", "required": true, "schema": {"type": "string"},
             "description": "The topic name."}
        ]),
    );

    let Some(body) = operation.get("requestBody") else {
        return fail(format!(
            "POST {path} has no requestBody; a produce operation needs one"
        ));
    };
    let mut body = resolve(body, components, "requestBodies")?.clone();
    strip_examples(&mut body);
    let Some(mut json_body) = json_media(&body) else {
        return fail(format!(
            "POST {path}: the request body has no application/json media type"
        ));
    };
    // An inline schema gets the repairs a named one would.
    repair_schema(
        &format!("POST {path} request body"),
        &mut json_body,
        true,
        repairs,
    );
    let mut request_body = Map::new();
    if let Some(description) = body.get("description") {
        request_body.insert("description".into(), description.clone());
    }
    request_body.insert("required".into(), json!(true));
    request_body.insert(
        "content".into(),
        json!({ "application/json": { "schema": json_body } }),
    );
    out.insert("requestBody".into(), Value::Object(request_body));

    let Some(responses) = operation.get("responses").and_then(Value::as_object) else {
        return fail(format!("POST {path} has no responses"));
    };
    let mut out_responses = Map::new();
    for (status, response) in responses {
        let mut response = resolve(response, components, "responses")?.clone();
        strip_examples(&mut response);
        let description = match response.get("description") {
            Some(description) => description.clone(),
            None => {
                // OpenAPI requires one; early Cloud documents left it out.
                repairs.push(format!(
                    "POST {path}: response {status} had no description; given an empty one"
                ));
                json!("")
            }
        };
        let has_content = response
            .get("content")
            .and_then(Value::as_object)
            .is_some_and(|c| !c.is_empty());
        let mut kept = json!({ "description": description });
        if has_content {
            match json_media(&response) {
                Some(mut schema) => {
                    repair_schema(
                        &format!("POST {path} response {status}"),
                        &mut schema,
                        true,
                        repairs,
                    );
                    kept["content"] = json!({ "application/json": { "schema": schema } });
                }
                None => {
                    // progenitor accepts one body type per operation; a
                    // non-JSON body (the HTML 429) then surfaces as an
                    // unexpected response carrying its status and text.
                    repairs.push(format!(
                        "POST {path}: dropped response {status}, whose body is not JSON (handled as an unexpected response)"
                    ));
                    continue;
                }
            }
        }
        out_responses.insert(status.clone(), kept);
    }
    out.insert("responses".into(), Value::Object(out_responses));
    Ok(Value::Object(out))
}

/// The names `ccloud_kafka_rest::types` exports, whatever the document
/// calls its schemas: the request, its key or value and header, the
/// report and its key or value.
pub const PRODUCE_REQUEST_SCHEMA: &str = "ProduceRequest";
pub const PRODUCE_REQUEST_DATA_SCHEMA: &str = "ProduceRequestData";
pub const PRODUCE_REQUEST_HEADER_SCHEMA: &str = "ProduceRequestHeader";
pub const PRODUCE_RESPONSE_SCHEMA: &str = "ProduceResponse";
pub const PRODUCE_RESPONSE_DATA_SCHEMA: &str = "ProduceResponseData";

/// Gives the produce operation's schemas the names the crate exports: a
/// schema under another name is renamed (in every reference), an inline
/// one moved under the name, and one the document does not have at all is
/// supplied in the shape Confluent's documents give it. Each is reported.
fn name_produce_schemas(document: &mut Value, repairs: &mut Vec<String>) {
    let produce = format!("/paths/{}/post", PRODUCE_PATH.replace('/', "~1"));
    let request = format!("{produce}/requestBody/content/application~1json/schema");
    let response = document
        .pointer(&format!("{produce}/responses"))
        .and_then(|r| {
            let responses = r.as_object()?;
            let status = responses
                .iter()
                .find(|(status, r)| {
                    status.starts_with('2')
                        && r.pointer("/content/application~1json/schema").is_some()
                })
                .map(|(status, _)| status.clone())?;
            Some(format!(
                "{produce}/responses/{}/content/application~1json/schema",
                status.replace('~', "~0").replace('/', "~1")
            ))
        });
    name_schema_at(document, &request, PRODUCE_REQUEST_SCHEMA, repairs);
    if let Some(response) = &response {
        name_schema_at(document, response, PRODUCE_RESPONSE_SCHEMA, repairs);
    }
    for (holder, property, name) in [
        (PRODUCE_REQUEST_SCHEMA, "key", PRODUCE_REQUEST_DATA_SCHEMA),
        (PRODUCE_REQUEST_SCHEMA, "value", PRODUCE_REQUEST_DATA_SCHEMA),
        (
            PRODUCE_REQUEST_SCHEMA,
            "headers/items",
            PRODUCE_REQUEST_HEADER_SCHEMA,
        ),
        (PRODUCE_RESPONSE_SCHEMA, "key", PRODUCE_RESPONSE_DATA_SCHEMA),
        (
            PRODUCE_RESPONSE_SCHEMA,
            "value",
            PRODUCE_RESPONSE_DATA_SCHEMA,
        ),
    ] {
        let at = format!("/components/schemas/{holder}/properties/{property}");
        name_schema_at(document, &at, name, repairs);
    }
    // Where the document has nothing to name so: the shape Confluent's
    // documents give it.
    let data = |fields: Value| json!({ "type": "object", "properties": fields });
    for (name, shape) in [
        (PRODUCE_REQUEST_SCHEMA, data(json!({}))),
        (PRODUCE_RESPONSE_SCHEMA, data(json!({}))),
        (
            PRODUCE_REQUEST_DATA_SCHEMA,
            data(json!({ "type": { "type": "string" }, "data": {} })),
        ),
        (
            PRODUCE_REQUEST_HEADER_SCHEMA,
            data(json!({
                "name": { "type": "string" },
                "value": { "type": "string", "format": "byte", "nullable": true }
            })),
        ),
        (
            PRODUCE_RESPONSE_DATA_SCHEMA,
            data(json!({
                "type": { "type": "string" },
                "size": { "type": "integer", "format": "int64" }
            })),
        ),
    ] {
        let Some(schemas) = document
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        if !schemas.contains_key(name) {
            schemas.insert(name.into(), shape);
            repairs.push(format!(
                "no schema to export as `{name}`: supplied one in Confluent's shape"
            ));
        }
    }
}

/// Makes the schema at `at` (a JSON pointer into `document`) the one named
/// `name`: a reference to another name renames that schema; an inline
/// schema moves under the name. Nothing when `name` is already what is
/// there, or is taken by another schema.
fn name_schema_at(document: &mut Value, at: &str, name: &str, repairs: &mut Vec<String>) {
    let prefix = "#/components/schemas/";
    let Some(slot) = document.pointer(at).cloned() else {
        return;
    };
    let target = json!({ "$ref": format!("{prefix}{name}") });
    if slot == target {
        return;
    }
    let taken = document
        .pointer(&format!("/components/schemas/{name}"))
        .is_some();
    if taken {
        return;
    }
    match slot.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let Some(old) = reference.strip_prefix(prefix) else {
                return;
            };
            let old = old.to_owned();
            let Some(schemas) = document
                .pointer_mut("/components/schemas")
                .and_then(Value::as_object_mut)
            else {
                return;
            };
            let Some(schema) = schemas.remove(&old) else {
                return;
            };
            schemas.insert(name.into(), schema);
            replace_refs(document, &json!(format!("{prefix}{old}")), &target);
            repairs.push(format!(
                "schema `{old}` renamed `{name}`, the name `ccloud_kafka_rest::types` exports"
            ));
        }
        None if slot.is_object() => {
            if let Some(schemas) = document
                .pointer_mut("/components/schemas")
                .and_then(Value::as_object_mut)
            {
                schemas.insert(name.into(), slot);
            }
            if let Some(place) = document.pointer_mut(at) {
                *place = target;
            }
            repairs.push(format!(
                "an inline schema named `{name}`, the name `ccloud_kafka_rest::types` exports"
            ));
        }
        None => {}
    }
}

/// The name the crate reads error bodies by: `generated::types::Error`.
const ERROR_SCHEMA: &str = "Error";

/// Gives the wrapped operations' error responses the error model the crate
/// reads, named [`ERROR_SCHEMA`]: a single model under another name is
/// renamed; a document without one (the oldest REST Proxy documents) gets
/// `{error_code, message}` for every error response, and `4XX` and `5XX`
/// when it declares none. Several models are left as they are.
fn supply_error_model(document: &mut Value, repairs: &mut Vec<String>) {
    let prefix = "#/components/schemas/";
    let is_error = |status: &str| !status.starts_with('2');
    let operations = |document: &Value| -> Vec<String> {
        let paths = document.get("paths").and_then(Value::as_object);
        paths
            .into_iter()
            .flatten()
            .map(|(path, _)| path.clone())
            .collect()
    };
    let responses_of = |path: &str| {
        format!(
            "/paths/{}/post/responses",
            path.replace('~', "~0").replace('/', "~1")
        )
    };
    let mut models = BTreeSet::new();
    for path in operations(document) {
        let responses = document
            .pointer(&responses_of(&path))
            .and_then(Value::as_object);
        for (status, response) in responses.into_iter().flatten() {
            if let Some(schema) = response
                .pointer("/content/application~1json/schema")
                .filter(|_| is_error(status))
            {
                let name = schema.get("$ref").and_then(Value::as_str);
                models.insert(name.and_then(|r| r.strip_prefix(prefix)).map(str::to_owned));
            }
        }
    }
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let error_ref = json!({ "$ref": format!("{prefix}{ERROR_SCHEMA}") });
    match models.len() {
        0 => {}
        1 => match models.into_iter().next().flatten() {
            Some(name) if name != ERROR_SCHEMA && !schemas.contains_key(ERROR_SCHEMA) => {
                // Renamed in every reference, so the generated type is `Error`.
                if let Some(schema) = schemas.remove(&name) {
                    schemas.insert(ERROR_SCHEMA.into(), schema);
                }
                replace_refs(document, &json!(format!("{prefix}{name}")), &error_ref);
                repairs.push(format!(
                    "error model `{name}` renamed `{ERROR_SCHEMA}`, the name the crate reads error bodies by"
                ));
                return;
            }
            // Already `Error`, inline, or `Error` taken by another schema:
            // left as it is.
            _ => return,
        },
        _ => return,
    }
    // No error response has a JSON body.
    schemas.entry(ERROR_SCHEMA).or_insert_with(|| {
        json!({
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": { "type": "integer", "format": "int32" },
                "message": { "type": "string", "nullable": true }
            }
        })
    });
    let body = json!({ "application/json": { "schema": error_ref } });
    for path in operations(document) {
        let Some(responses) = document
            .pointer_mut(&responses_of(&path))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut given = Vec::new();
        for (status, response) in responses.iter_mut() {
            if let Some(response) = response.as_object_mut().filter(|_| is_error(status)) {
                response.insert("content".into(), body.clone());
                given.push(status.clone());
            }
        }
        if given.is_empty() {
            for status in ["4XX", "5XX"] {
                responses.insert(
                    status.into(),
                    json!({ "description": "An error.", "content": body.clone() }),
                );
                given.push(status.into());
            }
        }
        repairs.push(format!(
            "POST {path}: no error model; responses {} read as `{ERROR_SCHEMA}` (error_code, message)",
            given.join(", ")
        ));
    }
}

/// Replaces every value equal to `from` under a `$ref` key with `to`.
fn replace_refs(value: &mut Value, from: &Value, to: &Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "$ref" && item == from {
                    *item = to["$ref"].clone();
                } else {
                    replace_refs(item, from, to);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| replace_refs(item, from, to)),
        _ => {}
    }
}

/// Follows a local `$ref` into `components/{section}`.
fn resolve<'a>(
    value: &'a Value,
    components: &'a Map<String, Value>,
    section: &str,
) -> Result<&'a Value, NormalizeError> {
    let mut current = value;
    for _ in 0..8 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return Ok(current);
        };
        let prefix = format!("#/components/{section}/");
        let Some(name) = reference.strip_prefix(&prefix) else {
            return fail(format!(
                "reference `{reference}` points outside #/components/{section}; only local references are supported"
            ));
        };
        let Some(target) = components.get(section).and_then(|s| s.get(name)) else {
            return fail(format!(
                "reference `{reference}` names nothing in the document"
            ));
        };
        current = target;
    }
    fail("a chain of more than 8 references; is it circular?")
}

/// The schema of a media type that is JSON (`application/json`, with or
/// without parameters, or a `+json` type).
fn json_media(holder: &Value) -> Option<Value> {
    let content = holder.get("content")?.as_object()?;
    content.iter().find_map(|(media, body)| {
        let essence = media.split(';').next().unwrap_or("").trim();
        let is_json =
            essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json");
        is_json.then(|| body.get("schema").cloned().unwrap_or_else(|| json!({})))
    })
}

fn collect_schema_refs(value: &Value, out: &mut VecDeque<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push_back(name.to_owned());
            }
            map.values().for_each(|v| collect_schema_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_schema_refs(v, out)),
        _ => {}
    }
}

/// Examples carry no meaning for generated code and some published ones do
/// not match their own schemas.
fn strip_examples(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("example");
            map.remove("examples");
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), inner) {
                    // The keys of `properties` are property names, which may
                    // be `example` too: only the property schemas are walked.
                    ("properties" | "patternProperties", Value::Object(properties)) => {
                        properties.values_mut().for_each(strip_examples);
                    }
                    (_, inner) => strip_examples(inner),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_examples),
        _ => {}
    }
}

/// Repairs one schema and, recursively, the schemas written inside it.
fn repair_schema(name: &str, schema: &mut Value, top_level: bool, repairs: &mut Vec<String>) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    // `type: int64` / `type: int32` are not OpenAPI types.
    if let Some(kind @ ("int64" | "int32")) = map.get("type").and_then(Value::as_str) {
        let format = kind.to_owned();
        map.insert("type".into(), json!("integer"));
        map.insert("format".into(), json!(format));
        repairs.push(format!(
            "schema `{name}`: `type: {format}` rewritten as `type: integer, format: {format}`"
        ));
    }
    // A nullable object referenced as an optional property would become a
    // newtype over `Option`; the property's optionality already says it may
    // be absent, and the server treats absent and null alike.
    let is_object =
        map.get("type").and_then(Value::as_str) == Some("object") || map.contains_key("properties");
    if top_level && is_object && map.get("nullable") == Some(&Value::Bool(true)) {
        map.remove("nullable");
        repairs.push(format!(
            "schema `{name}`: `nullable` removed from the object (an absent property means the same)"
        ));
    }
    for key in ["properties", "patternProperties"] {
        if let Some(Value::Object(props)) = map.get_mut(key) {
            for (prop, inner) in props.iter_mut() {
                repair_schema(&format!("{name}.{prop}"), inner, false, repairs);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(inner) = map.get_mut(key) {
            repair_schema(name, inner, false, repairs);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            for inner in items {
                repair_schema(name, inner, false, repairs);
            }
        }
    }
}
