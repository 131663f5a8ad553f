//! Delivery reports: what the server says about each record.

use crate::error::{ApiError, Error};
use crate::record::DataType;
use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Where a record was written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The cluster that stored the record.
    pub cluster_id: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset in the partition.
    pub offset: i64,
    /// The record's timestamp as stored, when the server reports it.
    pub timestamp: Option<DateTime<Utc>>,
    /// Type and stored size of the key; `None` for a null key.
    pub key: Option<StoredData>,
    /// Type and stored size of the value; `None` for a null value.
    pub value: Option<StoredData>,
    /// How many times the record was sent before this report (1 when the
    /// first attempt succeeded).
    pub attempts: u32,
    /// True when an earlier attempt's outcome was unknown (a 5xx error code
    /// or a connection lost before its report): the record may also have
    /// been written by that attempt, so it may appear twice in the topic.
    pub possibly_duplicated: bool,
}

/// The report as the server writes it (`error_code` 200, `topic_name`,
/// `partition_id`, …), plus `attempts` and `possibly_duplicated` when the
/// record needed more than one attempt.
impl Serialize for DeliveryReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("error_code", &200)?;
        map.serialize_entry("cluster_id", &self.cluster_id)?;
        map.serialize_entry("topic_name", &self.topic)?;
        map.serialize_entry("partition_id", &self.partition)?;
        map.serialize_entry("offset", &self.offset)?;
        if let Some(timestamp) = &self.timestamp {
            let text = timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            map.serialize_entry("timestamp", &text)?;
        }
        if let Some(key) = &self.key {
            map.serialize_entry("key", key)?;
        }
        if let Some(value) = &self.value {
            map.serialize_entry("value", value)?;
        }
        if self.attempts > 1 {
            map.serialize_entry("attempts", &self.attempts)?;
        }
        if self.possibly_duplicated {
            map.serialize_entry("possibly_duplicated", &true)?;
        }
        map.end()
    }
}

/// `topic-partition@offset`, the way Kafka tools name a record's position.
impl std::fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}@{}", self.topic, self.partition, self.offset)
    }
}

/// The type and stored size of a key or value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredData {
    /// How the data was read.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Bytes stored.
    pub size: u64,
}

/// A delivery report as the server writes it, success or failure.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportWire {
    error_code: i32,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    cluster_id: Option<String>,
    #[serde(default)]
    topic_name: Option<String>,
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    key: Option<StoredData>,
    #[serde(default)]
    value: Option<StoredData>,
}

impl ReportWire {
    /// The report's `error_code` (200 on success).
    #[cfg(test)]
    pub(crate) fn error_code(&self) -> i32 {
        self.error_code
    }

    /// The offset, when the record was written.
    #[cfg(test)]
    pub(crate) fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// The record's outcome: a report, or the error the server gave for it.
    pub(crate) fn into_result(self) -> Result<DeliveryReport, Error> {
        if self.error_code != 200 {
            return Err(Error::Api(ApiError {
                status: 200,
                error_code: Some(self.error_code),
                message: self.message.unwrap_or_default(),
                retry_after: None,
                in_band: true,
            }));
        }
        match (self.partition_id, self.offset) {
            (Some(partition), Some(offset)) => Ok(DeliveryReport {
                cluster_id: self.cluster_id.unwrap_or_default(),
                topic: self.topic_name.unwrap_or_default(),
                partition,
                offset,
                timestamp: self.timestamp,
                key: self.key,
                value: self.value,
                attempts: 1,
                possibly_duplicated: false,
            }),
            _ => Err(Error::Decode {
                raw: format!("{self:?}"),
                source: serde::de::Error::custom(
                    "a successful delivery report without partition_id and offset",
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_failure_reports() {
        let ok: ReportWire = serde_json::from_str(
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":1,"offset":7,"timestamp":"2021-02-05T19:14:42.123Z","key":{"type":"STRING","size":2},"value":{"type":"JSON","size":9}}"#,
        )
        .unwrap();
        let report = ok.into_result().unwrap();
        assert_eq!((report.partition, report.offset), (1, 7));
        assert_eq!(
            report.key,
            Some(StoredData {
                data_type: DataType::String,
                size: 2
            })
        );
        assert_eq!(report.value.unwrap().size, 9);
        assert_eq!(report.to_string(), "t-1@7");
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"error_code":200,"cluster_id":"c","topic_name":"t","partition_id":1,"offset":7,"timestamp":"2021-02-05T19:14:42.123Z","key":{"type":"STRING","size":2},"value":{"type":"JSON","size":9}}"#
        );

        let failed: ReportWire =
            serde_json::from_str(r#"{"error_code":40403,"message":"no such partition"}"#).unwrap();
        let error = failed.into_result().unwrap_err();
        assert_eq!(error.error_code(), Some(40403));
        assert_eq!(error.status(), Some(200));
        assert!(!error.is_retriable());
    }
}
