//! Serializers: how a value of the stream becomes a Kafka record's value.

use eddy_core::BoxError;
use serde::Serialize;

/// Turns a value into the bytes of a Kafka record value.
pub trait Serializer<T>: Send + Sync + 'static {
    /// The record value for `value`.
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError>;
}

impl<T, F> Serializer<T> for F
where
    F: Fn(&T) -> Result<Vec<u8>, BoxError> + Send + Sync + 'static,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        self(value)
    }
}

/// The value's own bytes (`Vec<u8>`, `String`, anything `AsRef<[u8]>`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl<T: AsRef<[u8]>> Serializer<T> for RawBytes {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(value.as_ref().to_vec())
    }
}

/// The value's `Display` form as UTF-8 (a CSV row, a word count line).
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl<T: std::fmt::Display> Serializer<T> for Text {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(value.to_string().into_bytes())
    }
}

/// The value as a JSON document (serde).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonValue;

impl<T: Serialize> Serializer<T> for JsonValue {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }
}
