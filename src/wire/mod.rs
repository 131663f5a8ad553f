//! What travels: records and how they are encoded, delivery reports and how
//! they are decoded. The serde forms (the generated client's) and the fast
//! paths (the streaming producer's) sit side by side, tested equal in
//! `src/testing`.

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod record;
pub(crate) mod report;
