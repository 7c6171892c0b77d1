//! `RecordCodec`: a record's timestamp and value round-trip through bytes, and bytes that
//! are not a record are an error, never a panic.

use std::sync::Arc;

use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP, NO_TIMESTAMP};
use eddy_core::{BoxError, Record};
use eddy_runtime::codec::{Codec, CodecError, RecordCodec};
use eddy_runtime::repartition::Repartition;
use proptest::prelude::*;

/// UTF-8 text as its bytes; refuses to encode the empty string (to see encode errors).
struct Utf8;

impl Codec<String> for Utf8 {
    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if value.is_empty() {
            return Err("empty text has no encoding here".into());
        }
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(bytes)?.to_string())
    }
}

fn codec() -> RecordCodec<String> {
    RecordCodec::new(Arc::new(Utf8))
}

fn timestamps() -> impl Strategy<Value = i64> {
    prop_oneof![Just(NO_TIMESTAMP), Just(MIN_TIMESTAMP), Just(MAX_TIMESTAMP), MIN_TIMESTAMP..=MAX_TIMESTAMP]
}

proptest! {
    #[test]
    fn a_record_round_trips(value in ".+", timestamp in timestamps()) {
        let record = Record::new(value, timestamp);
        let mut bytes = Vec::new();
        codec().encode(&record, &mut bytes).unwrap();
        // The layout stage 2's readers rely on: the timestamp first, little endian.
        prop_assert_eq!(&bytes[..8], &timestamp.to_le_bytes());
        prop_assert_eq!(&bytes[8..], record.value.as_bytes());
        prop_assert_eq!(codec().decode(&bytes).unwrap(), record);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        match codec().decode(&bytes) {
            Ok(record) => {
                // Then they are exactly a record's bytes: its timestamp, then its text.
                prop_assert_eq!(&bytes[..8], &record.timestamp.to_le_bytes());
                prop_assert_eq!(&bytes[8..], record.value.as_bytes());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn fewer_bytes_than_a_timestamp_are_truncated() {
    let mut bytes = Vec::new();
    codec().encode(&Record::new("word".to_string(), 7), &mut bytes).unwrap();
    for len in 0..8 {
        let err = codec().decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, CodecError::Truncated(n) if n == len), "{err}");
    }
    // Eight bytes are a timestamp and an empty value, which this codec decodes.
    assert_eq!(codec().decode(&bytes[..8]).unwrap(), Record::new(String::new(), 7));
}

#[test]
fn a_timestamp_no_record_carries_is_refused() {
    // i64::MAX is the final watermark, never a record's time.
    let mut bytes = i64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"word");
    let err = codec().decode(&bytes).unwrap_err();
    assert!(matches!(err, CodecError::Timestamp(i64::MAX)), "{err}");
    assert!(err.to_string().contains("outside the range records use"), "{err}");
}

#[test]
fn a_value_its_codec_refuses_names_the_type() {
    let mut bytes = 5i64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    let err = codec().decode(&bytes).unwrap_err();
    assert!(matches!(err, CodecError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("do not decode as a alloc::string::String"), "{err}");

    let err = codec().encode(&Record::new(String::new(), 5), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, CodecError::Encode { .. }), "{err}");
    assert!(err.to_string().contains("empty text has no encoding here"), "{err}");
}

#[test]
fn a_mark_gives_its_codec_back_only_at_its_record_type() {
    let mark = Repartition::new("words", codec());
    assert_eq!(mark.topic("wc"), "wc-words-repartition");
    assert_eq!(mark.codec.record_type(), std::any::type_name::<String>());
    assert!(mark.codec_of::<u64>().is_none());
    let typed = mark.codec_of::<String>().expect("the mark's own record type");
    let mut bytes = Vec::new();
    typed.encode(&Record::new("to".to_string(), 3), &mut bytes).unwrap();
    assert_eq!(codec().decode(&bytes).unwrap(), Record::new("to".to_string(), 3));
}
