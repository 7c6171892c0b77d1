//! bincode for what operators put into checkpoints: one encoding everywhere, errors that say
//! which operator's state did not decode.

use eddy_core::{Error, OperatorInfo, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a value for a checkpoint.
pub(crate) fn encode<V: Serialize + ?Sized>(info: &OperatorInfo, value: &V) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| info.error(format!("cannot encode state: {e}")))
}

/// Decodes a value from a checkpoint, all bytes of it.
pub(crate) fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    match bincode::serde::decode_from_slice(bytes, config()) {
        Ok((value, read)) if read == bytes.len() => Ok(value),
        Ok((_, read)) => Err(Error::Checkpoint(format!("restored state has {} trailing bytes", bytes.len() - read))),
        Err(e) => {
            Err(Error::Checkpoint(format!("restored state does not decode as {}: {e}", std::any::type_name::<V>())))
        }
    }
}

/// Decodes a value that prefixes `bytes`, returning it and the rest.
pub(crate) fn decode_prefix<V: DeserializeOwned>(bytes: &[u8]) -> Result<(V, &[u8])> {
    bincode::serde::decode_from_slice(bytes, config()).map(|(value, read)| (value, &bytes[read..])).map_err(|e| {
        Error::Checkpoint(format!("restored state does not decode as {}: {e}", std::any::type_name::<V>()))
    })
}
