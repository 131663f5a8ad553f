//! Strategies for JSON text from the grammar of reports and records, valid
//! and near-valid: any field order, escapes, number limits, whitespace, then
//! single-byte mutations. For property tests that the fast readers and
//! writers agree with serde_json.

use proptest::prelude::*;

/// Whitespace between tokens, as JSON allows it (and sometimes none).
pub fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![Just(" "), Just("\t"), Just("\r\n"), Just("\n")],
        0..3,
    )
    .prop_map(|pieces| pieces.concat())
}

/// A JSON string literal: plain text, escapes of every kind, raw UTF-8, and
/// now and then something JSON refuses (a raw control byte, a lone
/// surrogate).
pub fn string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => "[a-zA-Z0-9 ._-]{1,6}".prop_map(|s| s),
            1 => Just("\\n".to_owned()),
            1 => Just("\\\"".to_owned()),
            1 => Just("\\\\".to_owned()),
            1 => Just("\\/".to_owned()),
            1 => Just("\\u00e9".to_owned()),
            1 => Just("\\ud83d\\ude00".to_owned()),
            1 => Just("é😀".to_owned()),
            1 => Just("\\ud800".to_owned()),
            1 => Just("\u{1}".to_owned()),
        ],
        0..5,
    )
    .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
}

/// A JSON number near the limits of the integers it is read into, or in a
/// form an integer field refuses.
pub fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0i64..1000).prop_map(|n| n.to_string()),
        2 => any::<i32>().prop_map(|n| n.to_string()),
        2 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec![
            "2147483647", "2147483648", "-2147483648", "-2147483649",
            "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "18446744073709551616", "0", "-0", "01", "1.0", "1e2", "1E400", "-", "1.",
        ])
        .prop_map(str::to_owned),
    ]
}

/// `{` fields `}` with whitespace anywhere between tokens; `fields` are
/// `(name, value)` texts, in the order given.
pub fn object(
    fields: impl Strategy<Value = Vec<(String, String)>>,
) -> impl Strategy<Value = String> {
    (fields, prop::collection::vec(ws(), 16)).prop_map(|(fields, spaces)| {
        let space = |i: usize| spaces[i % spaces.len()].as_str();
        let mut out = format!("{}{{", space(0));
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{}\"{name}\"{}:{}{value}{}",
                space(i + 1),
                space(i + 2),
                space(i + 3),
                space(i + 4)
            ));
        }
        out.push('}');
        out
    })
}

/// Fields drawn from `choices` in any order, some repeated, some left out.
pub fn fields(
    choices: impl Strategy<Value = (String, String)> + Clone,
) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(choices, 0..9)
}

/// A single-byte change: replace, insert or delete at some position.
#[derive(Clone, Debug)]
pub enum Mutation {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        Just(b'"'),
        Just(b'\\'),
        Just(b'{'),
        Just(b'}'),
        Just(b','),
        Just(b':'),
        Just(b'0'),
        Just(b' '),
        Just(0x80),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<prop::sample::Index>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
    ]
}

impl Mutation {
    pub fn apply(&self, text: &[u8]) -> Vec<u8> {
        let mut out = text.to_vec();
        if out.is_empty() {
            return out;
        }
        match self {
            Mutation::Replace(i, b) => {
                let at = i.index(out.len());
                out[at] = *b;
            }
            Mutation::Insert(i, b) => out.insert(i.index(out.len() + 1), *b),
            Mutation::Delete(i) => {
                out.remove(i.index(out.len()));
            }
        }
        out
    }
}
