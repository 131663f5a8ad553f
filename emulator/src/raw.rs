//! A produce record as read from JSON, before any check: borrowed text,
//! `data` kept as its JSON, fields in any order. Both readers make these:
//! the compact one for records as clients write them, serde for the rest.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A string that borrows from the input when it has no escapes.
#[derive(Debug)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The `data` of a key or value, captured before its `type` is known (the fields
/// may come in any order): a JSON string as text, anything else in compact form.
#[derive(Debug)]
pub(crate) enum RawData<'a> {
    Str(Cow<'a, str>),
    Json(Vec<u8>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawData<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DataVisitor(std::marker::PhantomData))
    }
}

struct DataVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
    type Value = RawData<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(RawData::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawData::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(RawData::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(RawData::Json(if v {
            b"true".to_vec()
        } else {
            b"false".to_vec()
        }))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(RawData::Json(v.to_string().into_bytes()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(RawData::Json(v.to_string().into_bytes()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let mut buf = Vec::new();
        CompactVisitor(&mut buf).visit_f64(v)?;
        Ok(RawData::Json(buf))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RawData::Json(b"null".to_vec()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut buf = Vec::new();
        CompactVisitor(&mut buf).visit_map(map)?;
        Ok(RawData::Json(buf))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let mut buf = Vec::new();
        CompactVisitor(&mut buf).visit_seq(seq)?;
        Ok(RawData::Json(buf))
    }
}

/// Writes a JSON value compactly, keeping object members in their input order.
struct CompactVisitor<'b>(&'b mut Vec<u8>);

/// Writes one value (or object key), preceded by a comma unless it is the first.
struct CompactSeed<'b> {
    out: &'b mut Vec<u8>,
    comma: bool,
    key: bool,
}

impl<'de> DeserializeSeed<'de> for CompactSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.comma {
            self.out.push(b',');
        }
        if self.key {
            d.deserialize_str(CompactVisitor(self.out))
        } else {
            d.deserialize_any(CompactVisitor(self.out))
        }
    }
}

pub(crate) fn write_json<T: serde::Serialize + ?Sized, E: de::Error>(
    out: &mut Vec<u8>,
    v: &T,
) -> Result<(), E> {
    serde_json::to_writer(out, v).map_err(E::custom)
}

impl<'de> Visitor<'de> for CompactVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        write!(self.0, "{v}").map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        write!(self.0, "{v}").map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_json(self.0, &v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_json(self.0, v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut comma = false;
        while map
            .next_key_seed(CompactSeed {
                out: self.0,
                comma,
                key: true,
            })?
            .is_some()
        {
            self.0.push(b':');
            map.next_value_seed(CompactSeed {
                out: self.0,
                comma: false,
                key: false,
            })?;
            comma = true;
        }
        self.0.push(b'}');
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut comma = false;
        while seq
            .next_element_seed(CompactSeed {
                out: self.0,
                comma,
                key: false,
            })?
            .is_some()
        {
            comma = true;
        }
        self.0.push(b']');
        Ok(())
    }
}

/// A key or value object as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPayload<'a> {
    #[serde(rename = "type", default, borrow)]
    pub ty: Option<Text<'a>>,
    #[serde(default, borrow)]
    pub data: Option<RawData<'a>>,
    #[serde(default)]
    pub subject: Option<IgnoredAny>,
    #[serde(default)]
    pub subject_name_strategy: Option<IgnoredAny>,
    #[serde(default)]
    pub schema_id: Option<IgnoredAny>,
    #[serde(default)]
    pub schema_version: Option<IgnoredAny>,
    #[serde(default)]
    pub schema: Option<IgnoredAny>,
}

/// A record header as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeader<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(default, borrow)]
    pub value: Option<Text<'a>>,
}

/// A produce record (or a `records:batch` entry, which adds `id`) as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecord<'a> {
    #[serde(default, borrow)]
    pub id: Option<Text<'a>>,
    #[serde(default)]
    pub partition_id: Option<i64>,
    #[serde(default, borrow)]
    pub headers: Option<Vec<RawHeader<'a>>>,
    #[serde(default, borrow)]
    pub key: Option<RawPayload<'a>>,
    #[serde(default, borrow)]
    pub value: Option<RawPayload<'a>>,
    #[serde(default, borrow)]
    pub timestamp: Option<Text<'a>>,
}
