//! bincode for what operators put into checkpoints: one encoding everywhere, errors that say
//! which operator's state did not decode.
//!
//! Decoding claims at most [`MAX_STATE_BYTES`] of memory per value: a length read from bytes
//! that are damaged or not eddy's (the checkpoint's checksums catch most, not a wrong file
//! written whole) must be an error, never an allocation of whatever it says, which aborts
//! the process.

use eddy_core::{Error, OperatorInfo, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The most memory one operator state value may claim when it is decoded (1 GiB; keyed
/// state is not decoded here but by eddy-state, per entry).
pub(crate) const MAX_STATE_BYTES: usize = 1 << 30;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn decode_config() -> impl bincode::config::Config {
    config().with_limit::<MAX_STATE_BYTES>()
}

/// Encodes a value for a checkpoint.
pub(crate) fn encode<V: Serialize + ?Sized>(info: &OperatorInfo, value: &V) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| info.error(format!("cannot encode state: {e}")))
}

/// Decodes a value from a checkpoint, all bytes of it.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    match bincode::serde::decode_from_slice(bytes, decode_config()) {
        Ok((value, read)) if read == bytes.len() => Ok(value),
        Ok((_, read)) => Err(Error::Checkpoint(format!("restored state has {} trailing bytes", bytes.len() - read))),
        Err(e) => {
            Err(Error::Checkpoint(format!("restored state does not decode as {}: {e}", std::any::type_name::<V>())))
        }
    }
}

/// Decodes a value that prefixes `bytes`, returning it and the rest.
pub(crate) fn decode_prefix<V: DeserializeOwned>(bytes: &[u8]) -> Result<(V, &[u8])> {
    bincode::serde::decode_from_slice(bytes, decode_config()).map(|(value, read)| (value, &bytes[read..])).map_err(
        |e| Error::Checkpoint(format!("restored state does not decode as {}: {e}", std::any::type_name::<V>())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length prefix claiming far more than the bytes hold (as damaged bytes may) is an
    /// error; without the limit bincode allocates it and the process aborts.
    #[test]
    fn a_huge_length_in_damaged_state_is_an_error_not_an_allocation() {
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&(1u64 << 59).to_le_bytes());
        let error = decode::<String>(&bytes).unwrap_err().to_string();
        assert!(error.contains("does not decode"), "{error}");
        assert!(decode::<Vec<u8>>(&bytes).is_err());
        assert!(decode_prefix::<String>(&bytes).is_err());
    }
}
