//! `records:batch`: many records in one request (self-managed REST Proxy).
//!
//! The request is `{"entries":[{"id":"0", ...record}, ...]}` and the answer,
//! HTTP 207, lists `successes` and `failures` by entry id. The request is
//! built here rather than by the generated code, because many of Confluent's
//! documents do not describe the operation; it goes through the same request
//! path as a single produce (credentials, the retry after a refused token,
//! bounded reads, the same reading of a refusal), and the 207 body is read by
//! [`outcomes`].

use crate::client::Client;
use crate::client::request::{RecordsPath, refusal};
use crate::client::response;
use crate::error::{ApiError, Error, ErrorScope, InvalidInput};
use crate::http::body;
use crate::limits::MAX_RESPONSE_BYTES;
use crate::wire::record::{Record, validate_topic};
use crate::wire::report::{DeliveryReport, ReportWire};
use serde_json::{Map, Value};

/// One record's outcome in a batch.
type Outcome = Result<DeliveryReport, Error>;

impl Client {
    /// Produces records with the REST Proxy's `records:batch` call, up to
    /// [`ClientBuilder::with_max_batch_entries`](crate::ClientBuilder::with_max_batch_entries)
    /// records (default 10) per request, and returns one outcome per record:
    /// element `i` is the outcome of `records[i]`.
    ///
    /// Only the self-managed REST Proxy serves this call; Confluent Cloud
    /// answers it with HTTP 404, which then becomes every record's error.
    ///
    /// * The topic is checked first; an invalid name is the only `Err` and
    ///   nothing is sent.
    /// * Each record is checked as [`Client::produce`] checks it. A record
    ///   that fails is not sent and its element holds the
    ///   [`Error::InvalidInput`]; the others are sent.
    /// * Requests are sent one after the other, in order, so records for the
    ///   same partition are written in the order given. A failed request does
    ///   not stop the ones after it.
    /// * A record the server refused holds [`Error::Api`] with status 207,
    ///   scope [`ErrorScope::Record`](crate::ErrorScope::Record) and the server's
    ///   `error_code` (e.g. 40403).
    /// * When a whole request fails (HTTP 401, 404, 422 with 42208, 429, 5xx,
    ///   a connection failure), each of its records holds an error with the
    ///   same error (a clone of it, a transport failure included).
    /// * A record the answer says nothing about holds [`Error::Decode`] with
    ///   status 207; its outcome is unknown, since the server took the
    ///   request.
    ///
    /// Nothing is retried.
    ///
    /// ```no_run
    /// use ccloud_kafka_rest::{Client, Record};
    /// # async fn run() -> Result<(), ccloud_kafka_rest::Error> {
    /// let client = Client::from_env()?;
    /// let records: Vec<Record> = (0..25).map(|i| Record::from_value(format!("event {i}"))).collect();
    /// for (record, outcome) in records.iter().zip(client.produce_batch("events", &records).await?) {
    ///     match outcome {
    ///         Ok(report) => println!("written at {report}"),
    ///         Err(error) if error.is_retriable() => println!("retry {record:?} later: {error}"),
    ///         Err(error) => println!("dropped {record:?}: {error}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn produce_batch(
        &self,
        topic: &str,
        records: &[Record],
    ) -> Result<Vec<Result<DeliveryReport, Error>>, Error> {
        validate_topic(topic)?;
        let mut slots: Vec<Option<Outcome>> = Vec::with_capacity(records.len());
        let mut sendable = Vec::with_capacity(records.len());
        for (index, record) in records.iter().enumerate() {
            match entry_fields(record, self.max_record_bytes()) {
                Ok(fields) => {
                    sendable.push((index, fields));
                    slots.push(None);
                }
                Err(error) => slots.push(Some(Err(error))),
            }
        }

        let mut pending = sendable.into_iter();
        loop {
            let (indices, entries): (Vec<usize>, Vec<Map<String, Value>>) =
                pending.by_ref().take(self.max_batch_entries()).unzip();
            if indices.is_empty() {
                break;
            }
            let outcomes = self
                .send_batch(topic, batch_body(entries), indices.len())
                .await;
            for (index, outcome) in indices.into_iter().zip(outcomes) {
                slots[index] = Some(outcome);
            }
        }
        Ok(slots
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| Err(decode_error(&Value::Null, "the record got no outcome")))
            })
            .collect())
    }

    /// Sends one batch and reads its outcomes.
    async fn send_batch(&self, topic: &str, body: Value, count: usize) -> Vec<Outcome> {
        match self.post_batch(topic, &body).await {
            Ok(json) => outcomes(&json, count),
            Err(error) => per_record(error, count),
        }
    }

    /// Posts the batch (again with a new token after a 401, as a single
    /// produce does) and returns the 207 body as JSON.
    async fn post_batch(&self, topic: &str, body: &Value) -> Result<Value, Error> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::invalid(InvalidInput::Json(e.to_string())))?;
        let url = self.records_url(topic, RecordsPath::Batch);
        self.with_credentials(|credentials| {
            let request = self.post_json(&url, credentials, body.clone());
            async move {
                let response = request.send().await.map_err(Error::transport)?;
                if response.status() != reqwest::StatusCode::MULTI_STATUS {
                    return Err(Error::Api(refusal(response).await));
                }
                let limited = body::read_limited(response, MAX_RESPONSE_BYTES)
                    .await
                    .map_err(Error::transport)?;
                if limited.overflowed {
                    return Err(Error::Interrupted(format!(
                        "the records:batch answer (HTTP 207) is longer than {MAX_RESPONSE_BYTES} \
                         bytes (MAX_RESPONSE_BYTES) and was not read further"
                    )));
                }
                serde_json::from_slice(&limited.bytes).map_err(|source| {
                    Error::decode(response::truncate(&limited.bytes), Some(207), source)
                })
            }
        })
        .await
    }
}

/// A record as a batch entry, without its id; checked as a single produce
/// checks it.
fn entry_fields(record: &Record, max_record_bytes: usize) -> Result<Map<String, Value>, Error> {
    record.validate(max_record_bytes)?;
    match serde_json::to_value(record) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(other) => Err(Error::invalid(InvalidInput::Json(format!(
            "a record must serialize to a JSON object, not {other}"
        )))),
        Err(e) => Err(Error::invalid(InvalidInput::Json(e.to_string()))),
    }
}

/// `{"entries":[...]}`, each entry's id its position in the batch.
fn batch_body(entries: Vec<Map<String, Value>>) -> Value {
    let entries = entries
        .into_iter()
        .enumerate()
        .map(|(id, mut fields)| {
            fields.insert("id".to_owned(), Value::String(id.to_string()));
            Value::Object(fields)
        })
        .collect();
    let mut body = Map::new();
    body.insert("entries".to_owned(), Value::Array(entries));
    Value::Object(body)
}

/// The outcome of each of a batch's `count` entries from the 207 body.
/// Entries are matched by id; an entry the body does not answer, or answers
/// twice, gets a decode error.
fn outcomes(body: &Value, count: usize) -> Vec<Outcome> {
    let lists = ["successes", "failures"].map(|name| body.get(name).unwrap_or(&Value::Null));
    if !body.is_object()
        || lists
            .iter()
            .any(|list| !(list.is_array() || list.is_null()))
    {
        return per_record(
            decode_error(
                body,
                "a records:batch answer is an object with `successes` and `failures` arrays",
            ),
            count,
        );
    }
    let mut slots: Vec<Option<Outcome>> = (0..count).map(|_| None).collect();
    for (list, read) in lists
        .into_iter()
        .zip([success as fn(&Value) -> Outcome, failure])
    {
        for entry in list.as_array().into_iter().flatten() {
            let slot = entry
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<usize>().ok())
                .and_then(|index| slots.get_mut(index));
            // An entry with an id that was not sent answers no record; the
            // records it might have meant are reported below as unanswered.
            let Some(slot) = slot else { continue };
            *slot = Some(match slot {
                None => read(entry),
                Some(_) => Err(decode_error(
                    entry,
                    "the server answered this batch entry more than once",
                )),
            });
        }
    }
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(decode_error(
                    body,
                    "the server's records:batch answer has neither a success nor a failure for this record",
                ))
            })
        })
        .collect()
}

/// A success entry: a delivery report with an `id` and no `error_code`.
fn success(entry: &Value) -> Outcome {
    let Some(fields) = entry.as_object() else {
        return Err(decode_error(entry, "a batch success is not an object"));
    };
    let mut fields = fields.clone();
    fields.remove("id");
    fields
        .entry("error_code")
        .or_insert_with(|| Value::from(200));
    let wire: ReportWire = serde_json::from_value(Value::Object(fields)).map_err(|source| {
        Error::decode(
            response::truncate(entry.to_string().as_bytes()),
            Some(207),
            source,
        )
    })?;
    wire.into_result()
}

/// A failure entry: the server's refusal of that record.
fn failure(entry: &Value) -> Outcome {
    let Some(code) = entry
        .get("error_code")
        .and_then(Value::as_i64)
        .and_then(|code| i32::try_from(code).ok())
    else {
        return Err(decode_error(entry, "a batch failure without an error_code"));
    };
    Err(Error::Api(ApiError {
        status: 207,
        error_code: Some(code),
        message: entry
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        retry_after: None,
        scope: ErrorScope::Record,
    }))
}

/// One error for each of `count` records from one error of their request.
fn per_record(error: Error, count: usize) -> Vec<Outcome> {
    let copies: Vec<Outcome> = (1..count).map(|_| Err(error.clone())).collect();
    std::iter::once(Err(error))
        .chain(copies)
        .take(count)
        .collect()
}

/// A decode error about `raw`, part of a 207 answer: the server took the
/// request, so the record may have been written.
fn decode_error(raw: &Value, message: &str) -> Error {
    Error::decode(
        response::truncate(raw.to_string().as_bytes()),
        Some(207),
        serde::de::Error::custom(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_carry_their_position_as_id() {
        let records = [Record::from_value("a"), Record::new().with_partition(2)];
        let entries = records
            .iter()
            .map(|r| entry_fields(r, 100).unwrap())
            .collect();
        assert_eq!(
            batch_body(entries),
            json!({"entries": [
                {"id": "0", "value": {"type": "STRING", "data": "a"}},
                {"id": "1", "partition_id": 2},
            ]})
        );
    }

    #[test]
    fn answers_are_matched_by_id_and_unanswered_entries_are_errors() {
        let body = json!({
            "successes": [{"id": "2", "cluster_id": "c", "topic_name": "t", "partition_id": 1,
                           "offset": 7, "timestamp": "2024-01-02T03:04:05.678Z",
                           "value": {"type": "STRING", "size": 1}}],
            "failures": [{"id": "0", "error_code": 40403, "message": "no such partition"},
                         {"id": "9", "error_code": 500, "message": "not ours"}],
        });
        let results = outcomes(&body, 4);
        assert_eq!(results.len(), 4);
        let error = results[0].as_ref().unwrap_err();
        assert_eq!(error.error_code(), Some(40403));
        assert_eq!(error.status(), Some(207));
        assert!(!error.is_retriable());
        assert!(matches!(results[1], Err(Error::Decode { .. })));
        let report = results[2].as_ref().unwrap();
        assert_eq!((report.partition, report.offset), (1, 7));
        assert!(matches!(results[3], Err(Error::Decode { .. })));
        // The server took the batch: unanswered records may have been written.
        for unanswered in [&results[1], &results[3]] {
            let error = unanswered.as_ref().unwrap_err();
            assert_eq!(error.status(), Some(207));
            assert_eq!(
                error.retry_class(),
                crate::RetryClass::OutcomeUnknown,
                "{error}"
            );
        }
    }

    #[test]
    fn an_entry_answered_twice_or_a_malformed_answer_is_an_error() {
        let body = json!({
            "successes": [{"id": "0", "partition_id": 0, "offset": 1}],
            "failures": [{"id": "0", "error_code": 40403}],
        });
        assert!(matches!(outcomes(&body, 1)[0], Err(Error::Decode { .. })));
        for body in [json!([]), json!({"successes": {}}), json!("x")] {
            let results = outcomes(&body, 2);
            assert_eq!(results.len(), 2);
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Err(Error::Decode { .. }))),
                "{body}"
            );
        }
    }

    #[test]
    fn a_request_error_is_given_to_every_record() {
        let error = Error::Api(ApiError {
            status: 503,
            error_code: Some(50302),
            message: "unavailable".into(),
            retry_after: None,
            scope: ErrorScope::Request,
        });
        let results = per_record(error, 3);
        assert_eq!(results.len(), 3);
        for result in &results {
            let error = result.as_ref().unwrap_err();
            assert_eq!(
                (error.status(), error.error_code()),
                (Some(503), Some(50302))
            );
            assert!(error.is_retriable());
        }
        assert_eq!(per_record(Error::Config("x".into()), 1).len(), 1);
    }
}
