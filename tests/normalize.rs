//! Unit tests of `build/normalize.rs`, the step between the OpenAPI document
//! and the code generator. Each test feeds a small hand-written document and
//! checks the canonical document, the operations found and the repairs
//! reported. The last tests run the normalizer on the vendored document and,
//! when they are present beside the repository, on Confluent's published ones.

#[path = "../build/normalize.rs"]
mod normalize;

use normalize::{
    FoundOperation, NormalizeError, Normalized, PRODUCE_BATCH_PATH, PRODUCE_PATH,
    WIRE_RECORD_SCHEMA, WIRE_REPORT_SCHEMA, Wrapped,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// Helpers

/// Removes the indentation common to all non-blank lines, so that documents
/// can be written indented inside the tests.
fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    out
}

/// Parses a document assembled from top-level YAML blocks.
fn yaml(blocks: &[&str]) -> Value {
    let text: String = blocks.iter().map(|block| dedent(block)).collect();
    serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("test YAML does not parse: {e}\n{text}"))
}

fn normalized(blocks: &[&str]) -> Normalized {
    let input = yaml(blocks);
    normalize::normalize(&input).unwrap_or_else(|e| panic!("normalize failed: {e}"))
}

fn rejected(blocks: &[&str]) -> String {
    let input = yaml(blocks);
    match normalize::normalize(&input) {
        Ok(n) => panic!("normalize accepted the document: {:#}", n.document),
        Err(NormalizeError(message)) => message,
    }
}

/// The repair lines that contain every one of `fragments`.
fn repairs_with<'a>(n: &'a Normalized, fragments: &[&str]) -> Vec<&'a String> {
    n.repairs
        .iter()
        .filter(|line| fragments.iter().all(|f| line.contains(f)))
        .collect()
}

fn assert_repair(n: &Normalized, fragments: &[&str]) {
    let found = repairs_with(n, fragments);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one repair containing {fragments:?}, got {:#?}",
        n.repairs
    );
}

fn produce(n: &Normalized) -> &Value {
    &n.document["paths"][PRODUCE_PATH]["post"]
}

fn path_keys(n: &Normalized) -> Vec<&str> {
    n.document["paths"]
        .as_object()
        .expect("paths is a mapping")
        .keys()
        .map(String::as_str)
        .collect()
}

fn schema_names(n: &Normalized) -> Vec<&str> {
    n.document["components"]["schemas"]
        .as_object()
        .expect("components.schemas is a mapping")
        .keys()
        .map(String::as_str)
        .collect()
}

fn canonical_params() -> Value {
    json!([
        {"name": "cluster_id", "in": "path", "required": true, "schema": {"type": "string"},
         "description": "The Kafka cluster ID."},
        {"name": "topic_name", "in": "path", "required": true, "schema": {"type": "string"},
         "description": "The topic name."}
    ])
}

/// Every key anywhere in `value` that is named `key`, as JSON pointers.
fn keys_named(value: &Value, key: &str, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                if k == key {
                    out.push(here.clone());
                }
                keys_named(v, key, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                keys_named(v, key, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

const HEAD: &str = "
    openapi: 3.0.3
    info:
      title: Test API
      version: 1.2.3
";

/// Two plain schemas for `PRODUCE_OP`.
const SCHEMAS: &str = "
    components:
      schemas:
        Record:
          type: object
          properties:
            value:
              type: string
        Report:
          type: object
          properties:
            error_code:
              type: integer
";

/// A produce operation; `@PATH@` is replaced by the path under test.
const PRODUCE_OP: &str = "
    paths:
      '@PATH@':
        post:
          operationId: produceRecord
          requestBody:
            content:
              application/json:
                schema:
                  $ref: '#/components/schemas/Record'
          responses:
            '200':
              description: A delivery report.
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/Report'
";

fn produce_at(path: &str) -> Normalized {
    normalized(&[HEAD, &PRODUCE_OP.replace("@PATH@", path), SCHEMAS])
}

fn assert_plain_produce(n: &Normalized, original_path: &str) {
    assert_eq!(
        n.operations,
        vec![FoundOperation {
            wrapped: Wrapped::Produce,
            original_path: original_path.to_owned(),
            original_id: Some("produceRecord".to_owned()),
        }]
    );
    assert_eq!(path_keys(n), vec![PRODUCE_PATH]);
    assert_eq!(produce(n)["operationId"], "produceRecord");
    assert_eq!(produce(n)["parameters"], canonical_params());
    assert!(n.repairs.is_empty(), "unexpected repairs: {:#?}", n.repairs);
}

// ---------------------------------------------------------------------------
// Finding the operations

#[test]
fn finds_produce_under_the_cloud_prefix() {
    let path = "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records";
    let n = produce_at(path);
    assert_plain_produce(&n, path);
}

#[test]
fn finds_produce_under_the_rest_proxy_prefix() {
    let path = "/v3/clusters/{cluster_id}/topics/{topic_name}/records";
    let n = produce_at(path);
    assert_plain_produce(&n, path);
}

#[test]
fn finds_produce_without_a_prefix() {
    let n = produce_at(PRODUCE_PATH);
    assert_plain_produce(&n, PRODUCE_PATH);
}

#[test]
fn other_path_parameter_names_become_the_canonical_ones() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{clusterId}/topics/{topic}/records:
            post:
              operationId: produceRecord
              parameters:
                - name: clusterId
                  in: path
                  required: true
                  schema:
                    type: string
                - name: topic
                  in: path
                  required: true
                  schema:
                    type: string
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: ok
        ",
        SCHEMAS,
    ]);
    assert_eq!(path_keys(&n), vec![PRODUCE_PATH]);
    assert_eq!(
        n.operations[0].original_path,
        "/kafka/v3/clusters/{clusterId}/topics/{topic}/records"
    );
    assert_eq!(produce(&n)["parameters"], canonical_params());
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_missing_operation_id_is_synthesized() {
    let op = PRODUCE_OP
        .replace(
            "@PATH@",
            "/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        )
        .lines()
        .filter(|line| !line.contains("operationId"))
        .collect::<Vec<_>>()
        .join("\n");
    let n = normalized(&[HEAD, &op, SCHEMAS]);
    assert_eq!(n.operations[0].original_id, None);
    assert_eq!(produce(&n)["operationId"], "produceRecord");
    assert_repair(
        &n,
        &[
            "POST /v3/clusters/{cluster_id}/topics/{topic_name}/records",
            "no id",
            "`produceRecord`",
        ],
    );
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

#[test]
fn a_renamed_operation_id_is_restored() {
    let op = PRODUCE_OP
        .replace(
            "@PATH@",
            "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        )
        .replace("operationId: produceRecord", "operationId: createRecords");
    let n = normalized(&[HEAD, &op, SCHEMAS]);
    assert_eq!(
        n.operations[0].original_id.as_deref(),
        Some("createRecords")
    );
    assert_eq!(produce(&n)["operationId"], "produceRecord");
    assert_repair(&n, &["`createRecords`", "renamed", "`produceRecord`"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

#[test]
fn the_batch_operation_is_found_beside_produce() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /clusters/{cluster_id}/topics/{topic_name}/records:batch:
            post:
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Batch'
              responses:
                '207':
                  description: Per-entry results.
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/BatchResult'
          /clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecord
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: ok
        ",
        "
        components:
          schemas:
            Record:
              type: object
            Batch:
              type: object
              properties:
                entries:
                  type: array
                  items:
                    $ref: '#/components/schemas/Record'
            BatchResult:
              type: object
        ",
    ]);
    let found: Vec<Wrapped> = n.operations.iter().map(|o| o.wrapped).collect();
    assert_eq!(found, vec![Wrapped::Produce, Wrapped::ProduceBatch]);
    assert_eq!(
        n.operations[1].original_path,
        "/clusters/{cluster_id}/topics/{topic_name}/records:batch"
    );
    let mut paths = path_keys(&n);
    paths.sort_unstable();
    let mut expected = vec![PRODUCE_PATH, PRODUCE_BATCH_PATH];
    expected.sort_unstable();
    assert_eq!(paths, expected);
    let batch = &n.document["paths"][PRODUCE_BATCH_PATH]["post"];
    assert_eq!(batch["operationId"], "produceRecordsBatch");
    assert_eq!(Wrapped::ProduceBatch.operation_id(), "produceRecordsBatch");
    assert_eq!(batch["parameters"], canonical_params());
    assert_eq!(
        batch["responses"]["207"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/BatchResult"
    );
    assert_eq!(schema_names(&n), vec!["Batch", "BatchResult", "Record"]);
    assert_repair(&n, &["records:batch", "no id", "`produceRecordsBatch`"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

#[test]
fn a_batch_operation_alone_is_not_enough() {
    let op = PRODUCE_OP.replace(
        "@PATH@",
        "/v3/clusters/{cluster_id}/topics/{topic_name}/records:batch",
    );
    let message = rejected(&[HEAD, &op, SCHEMAS]);
    assert!(message.contains("no produce operation"), "{message}");
}

#[test]
fn other_methods_on_the_produce_path_are_ignored() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records:
            get:
              operationId: listRecords
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Listing'
            post:
              operationId: produceRecord
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: ok
        ",
        "
        components:
          schemas:
            Record:
              type: object
            Listing:
              type: object
        ",
    ]);
    let item = n.document["paths"][PRODUCE_PATH]
        .as_object()
        .expect("path item");
    assert_eq!(item.keys().collect::<Vec<_>>(), vec!["post"]);
    assert_eq!(n.operations.len(), 1);
    assert_eq!(schema_names(&n), vec!["Record"]);
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_get_alone_is_no_produce_operation() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            get:
              responses:
                '200':
                  description: ok
        ",
    ]);
    assert!(message.contains("no produce operation"), "{message}");
}

#[test]
fn a_second_produce_path_is_ignored() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecord
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: From Cloud.
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecordProxy
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/ProxyRecord'
              responses:
                '200':
                  description: From the REST Proxy.
        ",
        "
        components:
          schemas:
            Record:
              type: object
            ProxyRecord:
              type: object
        ",
    ]);
    assert_eq!(n.operations.len(), 1);
    assert_eq!(
        n.operations[0].original_path,
        "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records"
    );
    assert_eq!(path_keys(&n), vec![PRODUCE_PATH]);
    assert_eq!(
        produce(&n)["responses"]["200"]["description"],
        "From Cloud."
    );
    assert_eq!(schema_names(&n), vec!["Record"]);
    assert_repair(
        &n,
        &[
            "ignored POST /v3/clusters/{cluster_id}/topics/{topic_name}/records",
            "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        ],
    );
    // The ignored operation's id is not reported as renamed.
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

// ---------------------------------------------------------------------------
// Documents that cannot be used

#[test]
fn a_document_without_produce_is_rejected() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics:
            post:
              operationId: createKafkaTopic
              responses:
                '201':
                  description: created
        ",
    ]);
    assert!(message.contains("no produce operation"), "{message}");
    assert!(message.contains("/records"), "{message}");
}

#[test]
fn a_document_without_paths_is_rejected() {
    let message = rejected(&[HEAD]);
    assert!(message.contains("paths"), "{message}");
}

#[test]
fn openapi_3_1_is_rejected() {
    let message = rejected(&[
        "
        openapi: 3.1.0
        info:
          title: Test API
          version: 1.0.0
        ",
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        SCHEMAS,
    ]);
    assert!(message.contains("3.1.0"), "{message}");
    assert!(message.contains("3.0"), "{message}");
}

#[test]
fn a_document_without_an_openapi_version_is_rejected() {
    let message = rejected(&[
        "
        swagger: '2.0'
        info:
          title: Test API
          version: 1.0.0
        ",
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        SCHEMAS,
    ]);
    assert!(message.contains("openapi"), "{message}");
}

#[test]
fn a_numeric_openapi_version_3_0_is_accepted() {
    let n = normalized(&[
        "
        openapi: 3.0
        info:
          title: Test API
          version: 1.0.0
        ",
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        SCHEMAS,
    ]);
    assert_eq!(n.document["openapi"], "3.0");
}

#[test]
fn a_document_that_is_not_a_mapping_is_rejected() {
    for text in ["- openapi\n- 3.0.0\n", "just some text\n", "42\n"] {
        let input: Value = serde_norway::from_str(text).expect("YAML");
        let Err(NormalizeError(message)) = normalize::normalize(&input) else {
            panic!("accepted {text:?}");
        };
        assert!(message.contains("not a mapping"), "{message}");
    }
}

// ---------------------------------------------------------------------------
// Parameters

#[test]
fn parameters_become_the_two_canonical_path_parameters() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster}/topics/{topic}/records:
            parameters:
              - $ref: '#/components/parameters/Cluster'
              - $ref: '#/components/parameters/Topic'
              - name: traceparent
                in: header
                schema:
                  type: string
            post:
              operationId: produceRecord
              parameters:
                - name: X-Request-Id
                  in: header
                  required: true
                  schema:
                    type: string
                - $ref: '#/components/parameters/Validate'
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: ok
        ",
        "
        components:
          parameters:
            Cluster:
              name: cluster
              in: path
              required: true
              example: lkc-1
              schema:
                type: string
            Topic:
              name: topic
              in: path
              required: true
              schema:
                $ref: '#/components/schemas/TopicName'
            Validate:
              name: validate_only
              in: query
              schema:
                type: boolean
          schemas:
            Record:
              type: object
            TopicName:
              type: string
        ",
    ]);
    assert_eq!(produce(&n)["parameters"], canonical_params());
    assert_repair(&n, &["dropped header parameter `X-Request-Id`"]);
    assert_repair(&n, &["dropped query parameter `validate_only`"]);
    assert_repair(&n, &["dropped header parameter `traceparent`"]);
    assert_eq!(n.repairs.len(), 3, "{:#?}", n.repairs);
    // Schemas reached only through dropped parameters are not kept.
    assert_eq!(schema_names(&n), vec!["Record"]);
    assert!(n.document["components"].get("parameters").is_none());
}

#[test]
fn an_operation_parameter_overriding_a_path_parameter_is_reported_once() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /clusters/{cluster_id}/topics/{topic_name}/records:
            parameters:
              - name: Trace
                in: header
                schema:
                  type: string
            post:
              operationId: produceRecord
              parameters:
                - name: Trace
                  in: header
                  required: true
                  schema:
                    type: string
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
              responses:
                '200':
                  description: ok
        ",
    ]);
    assert_repair(&n, &["dropped header parameter `Trace`"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

#[test]
fn a_dangling_parameter_reference_is_rejected() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              parameters:
                - $ref: '#/components/parameters/Nowhere'
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
              responses:
                '200':
                  description: ok
        ",
    ]);
    assert!(
        message.contains("#/components/parameters/Nowhere"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// Request body

#[test]
fn a_request_body_reference_is_inlined_and_required() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecord
              requestBody:
                $ref: '#/components/requestBodies/Produce'
              responses:
                '200':
                  description: ok
        ",
        "
        components:
          requestBodies:
            Produce:
              description: One record.
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/Record'
          schemas:
            Record:
              type: object
        ",
    ]);
    assert_eq!(
        produce(&n)["requestBody"],
        json!({
            "description": "One record.",
            "required": true,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}
        })
    );
    assert!(n.document["components"].get("requestBodies").is_none());
    assert_eq!(schema_names(&n), vec!["Record"]);
}

#[test]
fn a_json_media_type_with_parameters_becomes_application_json() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecord
              requestBody:
                required: false
                content:
                  text/plain:
                    schema:
                      type: string
                  application/json; charset=utf-8:
                    schema:
                      type: object
              responses:
                '200':
                  description: ok
                  content:
                    application/problem+json:
                      schema:
                        type: object
        ",
    ]);
    assert_eq!(
        produce(&n)["requestBody"],
        json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}}}})
    );
    assert_eq!(
        produce(&n)["responses"]["200"]["content"],
        json!({"application/json": {"schema": {"type": "object"}}})
    );
}

#[test]
fn a_request_body_without_json_is_rejected() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              requestBody:
                content:
                  application/octet-stream:
                    schema:
                      type: string
                      format: binary
              responses:
                '200':
                  description: ok
        ",
    ]);
    assert!(message.contains("application/json"), "{message}");
    assert!(
        message.contains("/v3/clusters/{cluster_id}/topics/{topic_name}/records"),
        "{message}"
    );
}

#[test]
fn a_produce_operation_without_request_body_is_rejected() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              responses:
                '200':
                  description: ok
        ",
    ]);
    assert!(message.contains("requestBody"), "{message}");
}

// ---------------------------------------------------------------------------
// Responses

/// A produce operation with the given `responses:` block (indented for the
/// operation) and the given `responses:` components.
fn with_responses(responses: &str, components: &str) -> Normalized {
    let op = format!(
        "
        paths:
          /kafka/v3/clusters/{{cluster_id}}/topics/{{topic_name}}/records:
            post:
              operationId: produceRecord
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
              responses:
{responses}"
    );
    let comps = format!(
        "
        components:
          responses:
{components}
          schemas:
            Report:
              type: object
            Error:
              type: object
            HtmlPage:
              type: string
        "
    );
    normalized(&[HEAD, &op, &comps])
}

#[test]
fn response_references_are_inlined() {
    let n = with_responses(
        "
                '200':
                  $ref: '#/components/responses/Report'
                '404':
                  $ref: '#/components/responses/NotFound'
        ",
        "
            Report:
              description: A delivery report.
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/Report'
            NotFound:
              $ref: '#/components/responses/GenericError'
            GenericError:
              description: Something went wrong.
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/Error'
        ",
    );
    assert_eq!(
        produce(&n)["responses"],
        json!({
            "200": {"description": "A delivery report.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
            "404": {"description": "Something went wrong.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        })
    );
    assert!(n.document["components"].get("responses").is_none());
    assert_eq!(schema_names(&n), vec!["Error", "Report"]);
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn an_html_only_response_is_dropped() {
    let n = with_responses(
        "
                '200':
                  description: ok
                '429':
                  $ref: '#/components/responses/TooMany'
        ",
        "
            TooMany:
              description: Rate limited.
              content:
                text/html:
                  schema:
                    $ref: '#/components/schemas/HtmlPage'
                  example: <html></html>
        ",
    );
    let responses = produce(&n)["responses"].as_object().expect("responses");
    assert_eq!(responses.keys().collect::<Vec<_>>(), vec!["200"]);
    assert_repair(&n, &["/kafka/v3/", "dropped response 429", "not JSON"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
    // The HTML body's schema is not reached any more.
    assert!(schema_names(&n).is_empty(), "{:?}", schema_names(&n));
}

#[test]
fn a_response_with_json_and_html_keeps_only_json() {
    let n = with_responses(
        "
                '200':
                  description: ok
                '400':
                  description: Bad request.
                  content:
                    text/html:
                      schema:
                        $ref: '#/components/schemas/HtmlPage'
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Error'
        ",
        "
            Unused:
              description: unused
        ",
    );
    assert_eq!(
        produce(&n)["responses"]["400"],
        json!({"description": "Bad request.",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    );
    assert_eq!(schema_names(&n), vec!["Error"]);
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_response_without_content_is_kept() {
    let n = with_responses(
        "
                '204':
                  description: Nothing to say.
                '202':
                  description: Empty content map.
                  content: {}
        ",
        "
            Unused:
              description: unused
        ",
    );
    assert_eq!(
        produce(&n)["responses"],
        json!({
            "202": {"description": "Empty content map."},
            "204": {"description": "Nothing to say."}
        })
    );
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_status_range_is_kept() {
    let n = with_responses(
        "
                '200':
                  description: ok
                5XX:
                  description: Server error.
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Error'
        ",
        "
            Unused:
              description: unused
        ",
    );
    assert_eq!(
        produce(&n)["responses"]["5XX"],
        json!({"description": "Server error.",
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    );
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_produce_operation_without_responses_is_rejected() {
    let message = rejected(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
        ",
    ]);
    assert!(message.contains("no responses"), "{message}");
}

// ---------------------------------------------------------------------------
// The produce call's own types

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

#[test]
fn the_produce_call_sends_and_reads_the_wire_types() {
    let mut n = produce_at("/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records");
    let repairs = normalize::use_wire_types(&mut n.document).expect("wire types");
    // The document has no error model: the crate's is supplied; and its
    // schemas get the names the crate exports.
    let with = |fragment: &str| repairs.iter().filter(|r| r.contains(fragment)).count();
    assert_eq!(
        with("no error model; responses 4XX, 5XX read as `Error`"),
        1,
        "{repairs:#?}"
    );
    assert_eq!(
        with("schema `Record` renamed `ProduceRequest`"),
        1,
        "{repairs:#?}"
    );
    assert_eq!(
        with("schema `Report` renamed `ProduceResponse`"),
        1,
        "{repairs:#?}"
    );
    assert_eq!(repairs.len(), 6, "{repairs:#?}");
    assert_eq!(
        produce(&n)["requestBody"]["content"]["application/json"]["schema"],
        schema_ref(WIRE_RECORD_SCHEMA)
    );
    assert_eq!(
        produce(&n)["responses"]["200"]["content"]["application/json"]["schema"],
        schema_ref(WIRE_REPORT_SCHEMA)
    );
    // The document's own schemas stay, so their types are still generated.
    assert_eq!(
        schema_names(&n),
        [
            &PRODUCE_SCHEMAS[..],
            &[WIRE_RECORD_SCHEMA, WIRE_REPORT_SCHEMA]
        ]
        .concat()
    );

    let once = n.document.clone();
    let again = normalize::use_wire_types(&mut n.document).expect("wire types twice");
    assert!(again.is_empty(), "{again:#?}");
    assert_eq!(
        n.document, once,
        "applying the wire types twice changed the document"
    );
}

#[test]
fn error_responses_keep_the_documents_types() {
    let mut n = with_responses(
        "
                '200':
                  description: ok
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Report'
                '400':
                  description: Bad request.
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Error'
        ",
        "
            Unused:
              description: unused
        ",
    );
    normalize::use_wire_types(&mut n.document).expect("wire types");
    let responses = &produce(&n)["responses"];
    assert_eq!(
        responses["200"]["content"]["application/json"]["schema"],
        schema_ref(WIRE_REPORT_SCHEMA)
    );
    assert_eq!(
        responses["400"]["content"]["application/json"]["schema"],
        schema_ref("Error")
    );
}

#[test]
fn the_produce_schemas_get_the_names_the_crate_exports() {
    // An inline request with an inline key and value, a report under
    // another name, no headers: all end up under the exported names.
    let mut n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecords
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
                      properties:
                        partition_id:
                          type: integer
                        key:
                          type: object
                          properties:
                            type:
                              type: string
                            data: {}
                        value:
                          type: object
                          properties:
                            type:
                              type: string
                            data: {}
              responses:
                '200':
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Delivered'
        components:
          schemas:
            Delivered:
              type: object
              required: [partition_id, offset]
              properties:
                partition_id:
                  type: integer
                offset:
                  type: integer
                key:
                  $ref: '#/components/schemas/Stored'
            Stored:
              type: object
              properties:
                size:
                  type: integer
        ",
    ]);
    let repairs = normalize::use_wire_types(&mut n.document).expect("wire types");
    let schemas = &n.document["components"]["schemas"];
    for name in PRODUCE_SCHEMAS {
        assert!(schemas.get(name).is_some(), "{name} missing: {repairs:#?}");
    }
    for fragment in [
        "an inline schema named `ProduceRequest`",
        "an inline schema named `ProduceRequestData`",
        "schema `Delivered` renamed `ProduceResponse`",
        "schema `Stored` renamed `ProduceResponseData`",
        "no schema to export as `ProduceRequestHeader`",
    ] {
        let found = repairs.iter().filter(|r| r.contains(fragment)).count();
        assert_eq!(found, 1, "{fragment}: {repairs:#?}");
    }
    // The request's key moved; its value stays inline, the name taken.
    assert_eq!(
        schemas["ProduceRequest"]["properties"]["key"],
        schema_ref("ProduceRequestData")
    );
    assert_eq!(
        schemas["ProduceRequest"]["properties"]["value"]["type"],
        "object"
    );
    assert_eq!(
        schemas["ProduceResponse"]["properties"]["key"],
        schema_ref("ProduceResponseData")
    );
    assert!(schemas.get("Delivered").is_none() && schemas.get("Stored").is_none());
    // The produce call itself reads and writes the crate's own types.
    assert_eq!(
        produce(&n)["requestBody"]["content"]["application/json"]["schema"],
        schema_ref(WIRE_RECORD_SCHEMA)
    );
    // Named once, nothing more to do.
    assert!(
        normalize::use_wire_types(&mut n.document)
            .unwrap()
            .is_empty()
    );
}

/// The oldest REST Proxy documents have no error model at all.
#[test]
fn a_document_without_an_error_model_gets_the_crates() {
    let mut n = with_responses(
        "
                '200':
                  description: ok
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Report'
                '500':
                  description: Body-less.
        ",
        "
            Unused:
              description: unused
        ",
    );
    let repairs = normalize::use_wire_types(&mut n.document).expect("wire types");
    let errors: Vec<_> = repairs
        .iter()
        .filter(|r| r.contains("no error model"))
        .collect();
    assert_eq!(errors.len(), 1, "{repairs:#?}");
    assert!(
        errors[0].contains("responses 500 read as `Error`"),
        "{repairs:#?}"
    );
    let responses = &produce(&n)["responses"];
    assert_eq!(
        responses["500"]["content"]["application/json"]["schema"],
        schema_ref("Error")
    );
    // The error responses the document has: none added.
    assert!(responses.get("4XX").is_none(), "{responses:#}");
    let error = &n.document["components"]["schemas"]["Error"];
    assert_eq!(error["properties"]["error_code"]["format"], "int32");
    assert_eq!(error["required"], json!(["error_code", "message"]));
}

#[test]
fn an_error_model_under_another_name_is_named_error() {
    let op = PRODUCE_OP
        .replace(
            "@PATH@",
            "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        )
        .replace(
            "            '200':",
            "            '4XX':
              description: Client error.
              content:
                application/json:
                  schema:
                    $ref: '#/components/schemas/ApiError'
            '200':",
        );
    let schemas = SCHEMAS.to_owned()
        + "
        ApiError:
          type: object
          properties:
            error_code:
              type: integer
            detail:
              $ref: '#/components/schemas/Detail'
        Detail:
          type: string
";
    let mut n = normalized(&[HEAD, &op, &schemas]);
    let repairs = normalize::use_wire_types(&mut n.document).expect("wire types");
    let errors: Vec<_> = repairs
        .iter()
        .filter(|r| r.contains("error model"))
        .collect();
    assert_eq!(errors.len(), 1, "{repairs:#?}");
    assert!(
        errors[0].contains("error model `ApiError` renamed `Error`"),
        "{repairs:#?}"
    );
    assert_eq!(
        produce(&n)["responses"]["4XX"]["content"]["application/json"]["schema"],
        schema_ref("Error")
    );
    let schemas = schema_names(&n);
    assert!(
        schemas.contains(&"Error") && !schemas.contains(&"ApiError"),
        "{schemas:?}"
    );
    // What the model refers to stays.
    assert_eq!(
        n.document["components"]["schemas"]["Error"]["properties"]["detail"],
        schema_ref("Detail")
    );
    // Once named, nothing more to do.
    assert!(
        normalize::use_wire_types(&mut n.document)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_produce_without_a_json_success_response_gets_one() {
    let mut n = with_responses(
        "
                '204':
                  description: Nothing to say.
        ",
        "
            Unused:
              description: unused
        ",
    );
    let repairs = normalize::use_wire_types(&mut n.document).expect("wire types");
    assert_eq!(
        repairs
            .iter()
            .filter(|r| r.contains("no JSON success response"))
            .count(),
        1,
        "{repairs:#?}"
    );
    assert_eq!(
        produce(&n)["responses"]["200"]["content"]["application/json"]["schema"],
        schema_ref(WIRE_REPORT_SCHEMA)
    );
}

#[test]
fn a_document_schema_with_a_reserved_name_is_refused() {
    let schemas = SCHEMAS.replace("        Report:", &format!("        {WIRE_RECORD_SCHEMA}:"));
    let op = PRODUCE_OP
        .replace("@PATH@", PRODUCE_PATH)
        .replace("schemas/Report", &format!("schemas/{WIRE_RECORD_SCHEMA}"));
    let mut n = normalized(&[HEAD, &op, &schemas]);
    let NormalizeError(message) =
        normalize::use_wire_types(&mut n.document).expect_err("a reserved name was accepted");
    assert!(
        message.contains(WIRE_RECORD_SCHEMA) && message.contains("reserves"),
        "{message}"
    );
}

#[test]
fn the_batch_operation_keeps_the_documents_types() {
    let mut n = normalized(&[
        HEAD,
        "
        paths:
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:batch:
            post:
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '207':
                  description: Per-entry results.
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Report'
          /v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Report'
        ",
        SCHEMAS,
    ]);
    normalize::use_wire_types(&mut n.document).expect("wire types");
    // The document's types, under the names the crate exports.
    let batch = &n.document["paths"][PRODUCE_BATCH_PATH]["post"];
    assert_eq!(
        batch["requestBody"]["content"]["application/json"]["schema"],
        schema_ref("ProduceRequest")
    );
    assert_eq!(
        batch["responses"]["207"]["content"]["application/json"]["schema"],
        schema_ref("ProduceResponse")
    );
}

// ---------------------------------------------------------------------------
// Schemas

const REACHED: &str = "
    components:
      schemas:
        Record:
          type: object
          properties:
            headers:
              type: array
              items:
                $ref: '#/components/schemas/Header'
            tree:
              $ref: '#/components/schemas/Record'
        Header:
          allOf:
            - $ref: '#/components/schemas/Named'
            - type: object
              properties:
                value:
                  $ref: '#/components/schemas/Bytes'
        Named:
          type: object
          properties:
            name:
              type: string
        Bytes:
          type: string
          format: byte
        Report:
          type: object
          additionalProperties:
            $ref: '#/components/schemas/Size'
        Size:
          type: integer
        Unused:
          type: object
          properties:
            record:
              $ref: '#/components/schemas/Record'
        AlsoUnused:
          type: string
";

#[test]
fn only_reached_schemas_are_kept() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace(
            "@PATH@",
            "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records",
        ),
        REACHED,
    ]);
    assert_eq!(
        schema_names(&n),
        vec!["Bytes", "Header", "Named", "Record", "Report", "Size"]
    );
    // Kept schemas are copied unchanged when they need no repair.
    let source = yaml(&[REACHED]);
    for name in schema_names(&n) {
        assert_eq!(
            n.document["components"]["schemas"][name], source["components"]["schemas"][name],
            "{name}"
        );
    }
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn a_missing_schema_is_named() {
    let message = rejected(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          schemas:
            Record:
              type: object
              properties:
                key:
                  $ref: '#/components/schemas/RecordData'
            Report:
              type: object
        ",
    ]);
    assert!(message.contains("`RecordData`"), "{message}");
    assert!(message.contains("components/schemas"), "{message}");
}

#[test]
fn security_schemes_are_kept_and_other_components_dropped() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          securitySchemes:
            api-key:
              type: http
              scheme: basic
          headers:
            Retry-After:
              schema:
                type: integer
          schemas:
            Record:
              type: object
            Report:
              type: object
        ",
    ]);
    let components = n.document["components"].as_object().expect("components");
    assert_eq!(
        components.keys().collect::<Vec<_>>(),
        vec!["schemas", "securitySchemes"]
    );
    assert_eq!(
        components["securitySchemes"],
        json!({"api-key": {"type": "http", "scheme": "basic"}})
    );
}

// ---------------------------------------------------------------------------
// Schema repairs

#[test]
fn int64_and_int32_types_become_integer_formats() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          schemas:
            Record:
              type: object
              properties:
                partition_id:
                  type: int32
            Report:
              type: object
              properties:
                offset:
                  type: int64
                offsets:
                  type: array
                  items:
                    type: int64
                ok:
                  type: integer
                  format: int64
        ",
    ]);
    let schemas = &n.document["components"]["schemas"];
    assert_eq!(
        schemas["Record"]["properties"]["partition_id"],
        json!({"type": "integer", "format": "int32"})
    );
    assert_eq!(
        schemas["Report"]["properties"]["offset"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_eq!(
        schemas["Report"]["properties"]["offsets"]["items"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_eq!(
        schemas["Report"]["properties"]["ok"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_repair(
        &n,
        &["`Record.partition_id`", "`type: int32`", "format: int32"],
    );
    assert_repair(&n, &["`Report.offset`", "`type: int64`", "format: int64"]);
    assert_repair(&n, &["`Report.offsets`", "`type: int64`"]);
    assert_eq!(n.repairs.len(), 3, "{:#?}", n.repairs);
}

#[test]
fn int64_in_an_unreached_schema_is_not_reported() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          schemas:
            Record:
              type: object
            Report:
              type: object
            Offsets:
              allOf:
                - type: object
                  properties:
                    earliest:
                      type: int64
        ",
    ]);
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

#[test]
fn int64_inside_all_of_is_repaired() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          schemas:
            Record:
              type: object
            Report:
              allOf:
                - type: object
                  properties:
                    earliest:
                      type: int64
        ",
    ]);
    assert_eq!(
        n.document["components"]["schemas"]["Report"]["allOf"][0]["properties"]["earliest"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_repair(&n, &["`Report.earliest`", "`type: int64`"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
}

#[test]
fn nullable_is_removed_from_top_level_objects_only() {
    let n = normalized(&[
        HEAD,
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        "
        components:
          schemas:
            Record:
              type: object
              properties:
                key:
                  $ref: '#/components/schemas/Data'
                timestamp:
                  $ref: '#/components/schemas/Timestamp'
                partition_id:
                  type: integer
                  nullable: true
                extra:
                  type: object
                  nullable: true
                  properties:
                    a:
                      type: string
            Data:
              type: object
              nullable: true
              properties:
                data:
                  nullable: true
            Timestamp:
              type: string
              format: date-time
              nullable: true
            Report:
              nullable: true
              properties:
                error_code:
                  type: integer
        ",
    ]);
    let schemas = &n.document["components"]["schemas"];
    assert_eq!(
        schemas["Data"],
        json!({"type": "object", "properties": {"data": {"nullable": true}}})
    );
    // An object without `type` but with properties counts as an object.
    assert!(schemas["Report"].get("nullable").is_none());
    // Nullable properties and non-object schemas keep it.
    assert_eq!(schemas["Timestamp"]["nullable"], true);
    assert_eq!(
        schemas["Record"]["properties"]["partition_id"]["nullable"],
        true
    );
    assert_eq!(schemas["Record"]["properties"]["extra"]["nullable"], true);
    assert_repair(&n, &["schema `Data`", "`nullable` removed"]);
    assert_repair(&n, &["schema `Report`", "`nullable` removed"]);
    assert_eq!(n.repairs.len(), 2, "{:#?}", n.repairs);
}

#[test]
fn examples_are_stripped_everywhere() {
    let n = normalized(&[
        HEAD,
        "
        paths:
          /kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records:
            post:
              operationId: produceRecord
              parameters:
                - name: cluster_id
                  in: path
                  required: true
                  example: lkc-1
                  schema:
                    type: string
              requestBody:
                content:
                  application/json:
                    schema:
                      $ref: '#/components/schemas/Record'
                    examples:
                      one:
                        value:
                          value: hello
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema:
                        $ref: '#/components/schemas/Report'
                      example:
                        error_code: 200
        ",
        "
        components:
          schemas:
            Record:
              type: object
              example:
                value: hi
              properties:
                value:
                  type: string
                  example: hi
                example:
                  type: string
                  description: A property that happens to be called example.
                examples:
                  type: array
                  items:
                    type: string
                    example: x
              required:
                - example
            Report:
              type: object
              properties:
                error_code:
                  type: integer
                  example: 200
        ",
    ]);
    let mut found = Vec::new();
    keys_named(&n.document, "example", "", &mut found);
    keys_named(&n.document, "examples", "", &mut found);
    found.sort();
    assert_eq!(
        found,
        vec![
            "/components/schemas/Record/properties/example",
            "/components/schemas/Record/properties/examples",
        ],
        "only the properties named example(s) may remain"
    );
    let record = &n.document["components"]["schemas"]["Record"];
    assert_eq!(
        record["properties"]["examples"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(record["properties"]["value"], json!({"type": "string"}));
    assert!(n.repairs.is_empty(), "{:#?}", n.repairs);
}

// ---------------------------------------------------------------------------
// info

#[test]
fn a_numeric_info_version_becomes_a_string() {
    for (written, expected) in [("3", "3"), ("1.5", "1.5")] {
        let head = format!(
            "
            openapi: 3.0.0
            info:
              title: Numbers
              version: {written}
            "
        );
        let n = normalized(&[&head, &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH), SCHEMAS]);
        assert_eq!(
            n.document["info"],
            json!({"title": "Numbers", "version": expected})
        );
        assert_repair(&n, &["info.version", expected, "string"]);
        assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);
    }
}

#[test]
fn a_missing_info_version_becomes_3_0_0() {
    let n = normalized(&[
        "
        openapi: 3.0.0
        info:
          title: No version
        ",
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        SCHEMAS,
    ]);
    assert_eq!(
        n.document["info"],
        json!({"title": "No version", "version": "3.0.0"})
    );
    assert_repair(&n, &["info.version missing", "`3.0.0`"]);
    assert_eq!(n.repairs.len(), 1, "{:#?}", n.repairs);

    let n = normalized(&[
        "openapi: 3.0.0\n",
        &PRODUCE_OP.replace("@PATH@", PRODUCE_PATH),
        SCHEMAS,
    ]);
    assert_eq!(n.document["info"]["version"], "3.0.0");
    assert!(n.document["info"]["title"].is_string());
}

#[test]
fn a_string_info_version_is_kept() {
    let n = produce_at(PRODUCE_PATH);
    assert_eq!(
        n.document["info"],
        json!({"title": "Test API", "version": "1.2.3"})
    );
    assert_eq!(n.document["openapi"], "3.0.3");
}

// ---------------------------------------------------------------------------
// Whole documents

fn read_document(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Checks that the canonical document is one the generator's OpenAPI model
/// reads, and that its produce operation has the shape the crate relies on.
fn assert_generator_reads(n: &Normalized) -> openapiv3::OpenAPI {
    let spec: openapiv3::OpenAPI = serde_json::from_value(n.document.clone())
        .unwrap_or_else(|e| panic!("not an OpenAPI 3.0 document: {e}"));
    let Some(openapiv3::ReferenceOr::Item(item)) = spec.paths.paths.get(PRODUCE_PATH) else {
        panic!("no inline path item at {PRODUCE_PATH}");
    };
    let post = item.post.as_ref().expect("a POST operation");
    assert_eq!(post.operation_id.as_deref(), Some("produceRecord"));
    assert_eq!(post.parameters.len(), 2);
    let Some(openapiv3::ReferenceOr::Item(body)) = &post.request_body else {
        panic!("the request body is not inline");
    };
    assert!(body.required);
    assert_eq!(
        body.content.keys().collect::<Vec<_>>(),
        vec!["application/json"]
    );
    for (status, response) in &post.responses.responses {
        let openapiv3::ReferenceOr::Item(response) = response else {
            panic!("response {status} is not inline");
        };
        assert!(
            response.content.keys().all(|m| m == "application/json"),
            "response {status} has {:?}",
            response.content.keys().collect::<Vec<_>>()
        );
    }
    spec
}

fn vendored_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/kafka-rest-v3.yaml")
}

/// The repairs every Kafka REST document we know needs for the produce
/// operation: the HTML 429 dropped and the two nullable objects made plain.
fn assert_produce_repairs(n: &Normalized) {
    for op in &n.operations {
        assert_repair(
            n,
            &[&format!("POST {}: dropped response 429", op.original_path)],
        );
    }
    assert_repair(n, &["schema `ProduceRequestData`", "`nullable` removed"]);
    assert_repair(n, &["schema `ProduceResponseData`", "`nullable` removed"]);
    assert_eq!(
        n.repairs.len(),
        n.operations.len() + 2,
        "unexpected repairs: {:#?}",
        n.repairs
    );
}

const PRODUCE_SCHEMAS: [&str; 6] = [
    "Error",
    "ProduceRequest",
    "ProduceRequestData",
    "ProduceRequestHeader",
    "ProduceResponse",
    "ProduceResponseData",
];

#[test]
fn the_fingerprint_names_the_vendored_document() {
    let text = std::fs::read(vendored_path()).unwrap();
    let fingerprint = normalize::fingerprint(&text);
    assert_eq!(
        fingerprint,
        normalize::VENDORED_FINGERPRINT,
        "openapi/kafka-rest-v3.yaml is not the document the crate ships: if it was changed \
         on purpose, set VENDORED_FINGERPRINT in build/normalize.rs to {fingerprint:#x}"
    );
    // Any change shows.
    let mut changed = text.clone();
    changed.push(b'\n');
    assert_ne!(normalize::fingerprint(&changed), fingerprint);
}

#[test]
fn the_vendored_document_normalizes_with_the_expected_repairs() {
    let n = normalize::normalize(&read_document(&vendored_path())).expect("vendored document");
    assert_eq!(
        n.operations,
        vec![FoundOperation {
            wrapped: Wrapped::Produce,
            original_path: "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records".into(),
            original_id: Some("produceRecord".into()),
        }]
    );
    assert_produce_repairs(&n);
    assert_eq!(n.repairs.len(), 3);
    assert_eq!(schema_names(&n), PRODUCE_SCHEMAS);
    assert_eq!(n.document["info"]["version"], "3.0.0");

    let spec = assert_generator_reads(&n);
    let Some(openapiv3::ReferenceOr::Item(item)) = spec.paths.paths.get(PRODUCE_PATH) else {
        unreachable!()
    };
    let statuses: Vec<String> = item
        .post
        .as_ref()
        .expect("post")
        .responses
        .responses
        .keys()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        statuses,
        [
            "200", "400", "401", "403", "404", "413", "415", "422", "5XX"
        ]
    );
    let components = spec.components.expect("components");
    let mut schemes: Vec<&String> = components.security_schemes.keys().collect();
    schemes.sort_unstable();
    assert_eq!(schemes, ["external-access-token", "resource-api-key"]);
}

#[test]
fn normalizing_twice_changes_nothing() {
    let once = normalize::normalize(&read_document(&vendored_path())).expect("vendored document");
    let twice = normalize::normalize(&once.document).expect("canonical document");
    assert_eq!(twice.document, once.document);
    assert!(twice.repairs.is_empty(), "{:#?}", twice.repairs);
    assert_eq!(twice.operations[0].original_path, PRODUCE_PATH);
}

// ---------------------------------------------------------------------------
// Confluent's published documents, when the reference directory is present
// beside the repository (it is not shipped with the crate).

fn reference(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(name);
    if path.exists() {
        Some(path)
    } else {
        eprintln!("skipped: {} is not present", path.display());
        None
    }
}

#[test]
fn confluent_cloud_document_drops_in() {
    let Some(path) = reference("ccloud-kafkarest-v3.openapi.yaml") else {
        return;
    };
    let n = normalize::normalize(&read_document(&path)).expect("Cloud document");
    assert_eq!(
        n.operations,
        vec![FoundOperation {
            wrapped: Wrapped::Produce,
            original_path: "/kafka/v3/clusters/{cluster_id}/topics/{topic_name}/records".into(),
            original_id: Some("produceRecord".into()),
        }]
    );
    assert_produce_repairs(&n);
    assert_eq!(schema_names(&n), PRODUCE_SCHEMAS);
    assert_generator_reads(&n);

    // The same types come out of the vendored document.
    let ours = normalize::normalize(&read_document(&vendored_path())).expect("vendored document");
    assert_eq!(schema_names(&ours), schema_names(&n));
}

#[test]
fn rest_proxy_document_drops_in() {
    let Some(path) = reference("kafka-rest-v3.openapi.yaml") else {
        return;
    };
    let input = read_document(&path);
    let n = normalize::normalize(&input).expect("REST Proxy document");
    let found: Vec<(Wrapped, &str)> = n
        .operations
        .iter()
        .map(|o| (o.wrapped, o.original_path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                Wrapped::Produce,
                "/clusters/{cluster_id}/topics/{topic_name}/records"
            ),
            (
                Wrapped::ProduceBatch,
                "/clusters/{cluster_id}/topics/{topic_name}/records:batch"
            ),
        ]
    );
    // Both 429s (by $ref) dropped, the nullable objects made plain; the one
    // schema written with `type: int64` is not reached from produce, so it
    // is neither kept nor reported.
    assert_produce_repairs(&n);
    assert!(repairs_with(&n, &["int64"]).is_empty(), "{:#?}", n.repairs);
    let unreached = &input["components"]["schemas"]["PartitionWithOffsetsData"];
    assert!(
        unreached.to_string().contains(r#""type":"int64""#),
        "the document no longer has its `type: int64` schema; update this test"
    );
    assert!(!schema_names(&n).contains(&"PartitionWithOffsetsData"));
    for name in PRODUCE_SCHEMAS {
        assert!(schema_names(&n).contains(&name), "{name} missing");
    }
    let spec = assert_generator_reads(&n);
    let Some(openapiv3::ReferenceOr::Item(batch)) = spec.paths.paths.get(PRODUCE_BATCH_PATH) else {
        panic!("no batch operation");
    };
    assert_eq!(
        batch.post.as_ref().and_then(|p| p.operation_id.as_deref()),
        Some("produceRecordsBatch")
    );
}

// ---------------------------------------------------------------------------
// Documents in the manner of earlier ones (tests/documents), each trait of
// Confluent's earlier documents in one of them. CI also builds the crate,
// its examples and tests from each.

fn written_here(name: &str) -> (Normalized, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/documents")
        .join(name);
    let mut n = normalize::normalize(&read_document(&path)).expect("normalizes");
    let wire = normalize::use_wire_types(&mut n.document).expect("the crate's types go in");
    let schemas = &n.document["components"]["schemas"];
    for schema in PRODUCE_SCHEMAS {
        assert!(schemas.get(schema).is_some(), "{name}: no `{schema}`");
    }
    (n, wire)
}

fn one_with(repairs: &[String], fragment: &str) {
    let found = repairs.iter().filter(|r| r.contains(fragment)).count();
    assert_eq!(found, 1, "{fragment}: {repairs:#?}");
}

#[test]
fn an_early_cloud_document_builds_the_same_api() {
    let (n, wire) = written_here("early-cloud.yaml");
    one_with(
        &n.repairs,
        "operation id `produceRecords` renamed to `produceRecord`",
    );
    one_with(&n.repairs, "dropped response 429");
    assert!(wire.is_empty(), "{wire:#?}");
    let responses = &produce(&n)["responses"];
    // A response without a description gets an empty one (OpenAPI needs it).
    assert_eq!(responses["200"]["description"], "");
    one_with(&n.repairs, "response 200 had no description");
    // JSON kept beside plain text.
    assert_eq!(
        responses["400"]["content"],
        json!({ "application/json": { "schema": schema_ref("Error") } })
    );
    // The report's required fields and widths are the document's own.
    let report = &n.document["components"]["schemas"]["ProduceResponse"];
    assert_eq!(
        report["required"],
        json!(["cluster_id", "topic_name", "partition_id", "offset"])
    );
    assert!(report["properties"].get("error_code").is_none());
    assert_eq!(report["properties"]["partition_id"]["format"], "int32");
}

#[test]
fn an_early_rest_proxy_document_builds_the_same_api() {
    let (n, wire) = written_here("early-rest-proxy.yaml");
    one_with(&n.repairs, "operation had no id; named it `produceRecord`");
    one_with(&wire, "no error model; responses 4XX, 5XX read as `Error`");
    assert_eq!(produce(&n)["parameters"], canonical_params());
    let schemas = &n.document["components"]["schemas"];
    // Integers without a format stay so (the generator makes them i64).
    assert!(
        schemas["ProduceResponse"]["properties"]["offset"]
            .get("format")
            .is_none()
    );
    assert_eq!(
        schemas["ProduceRequestData"]["properties"]["type"]["enum"],
        json!(["BINARY", "JSON"])
    );
    assert_eq!(
        produce(&n)["responses"]["5XX"]["content"]["application/json"]["schema"],
        schema_ref("Error")
    );
}

#[test]
fn a_document_with_other_names_builds_the_same_api() {
    let (n, wire) = written_here("other-names.yaml");
    one_with(
        &n.repairs,
        "request body.partition_id`: `type: int32` rewritten",
    );
    for fragment in [
        "an inline schema named `ProduceRequest`",
        "schema `Delivery` renamed `ProduceResponse`",
        "schema `Payload` renamed `ProduceRequestData`",
        "schema `Stored` renamed `ProduceResponseData`",
        "no schema to export as `ProduceRequestHeader`",
        "error model `ApiError` renamed `Error`",
    ] {
        one_with(&wire, fragment);
    }
    let schemas = &n.document["components"]["schemas"];
    assert_eq!(schemas["ProduceRequest"]["required"], json!(["value"]));
    assert_eq!(
        schemas["ProduceRequest"]["properties"]["partition_id"],
        json!({ "type": "integer", "format": "int32" })
    );
}
