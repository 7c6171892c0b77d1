//! The bytes a key is hashed over: exactly bincode 2's standard encoding (little endian,
//! variable-length integers), written straight into a reused buffer.
//!
//! bincode's serde path encodes a string one byte at a time, which made key hashing a
//! sixth of word count's per-record cost; this writer copies whole slices. The tests check
//! it produces bincode's bytes for every serde shape, so key groups stay those of
//! `xxh3(bincode(key))` (`docs/architecture.md`, *Keys and key groups*) and savepoints stay
//! portable.
//!
//! The same encoding can also be fed to a [`Hasher`] piece by piece ([`hash_key`]), for tables
//! that only need a fast hash in memory ([`local_hash`](crate::key::local_hash)).

use std::hash::Hasher;

use serde::ser::{self, Serialize};

/// Why a key could not be encoded.
#[derive(Debug)]
pub struct EncodeError(String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

/// Appends `value`'s bincode (standard config) encoding to `out`.
pub fn encode_key<K: Serialize + ?Sized>(value: &K, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    value.serialize(&mut KeyEncoder { out })
}

/// Feeds `value`'s bincode (standard config) encoding to `hasher`, a piece at a time, without
/// collecting the bytes first.
pub fn hash_key<K: Serialize + ?Sized, H: Hasher>(value: &K, hasher: &mut H) -> Result<(), EncodeError> {
    value.serialize(&mut KeyEncoder { out: &mut HashedBytes(hasher) })
}

/// Where an encoding goes: a buffer, or a hasher.
trait Bytes {
    fn push(&mut self, byte: u8);
    fn extend_from_slice(&mut self, bytes: &[u8]);
}

impl Bytes for Vec<u8> {
    #[inline]
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte)
    }
    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes)
    }
}

struct HashedBytes<'a, H>(&'a mut H);

impl<H: Hasher> Bytes for HashedBytes<'_, H> {
    #[inline]
    fn push(&mut self, byte: u8) {
        self.0.write_u8(byte)
    }
    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

struct KeyEncoder<'a, W> {
    out: &'a mut W,
}

impl<W: Bytes> KeyEncoder<'_, W> {
    /// bincode's varint: < 251 in one byte, else a marker byte and the fixed-width value.
    #[inline]
    fn varint(&mut self, v: u128) {
        if v < 251 {
            self.out.push(v as u8);
        } else if v <= u16::MAX as u128 {
            self.out.push(251);
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= u32::MAX as u128 {
            self.out.push(252);
            self.out.extend_from_slice(&(v as u32).to_le_bytes());
        } else if v <= u64::MAX as u128 {
            self.out.push(253);
            self.out.extend_from_slice(&(v as u64).to_le_bytes());
        } else {
            self.out.push(254);
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Signed integers are zigzag-encoded, then varint.
    fn zigzag(&mut self, v: i128) {
        self.varint(((v << 1) ^ (v >> 127)) as u128);
    }

    fn length(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        let len = len.ok_or_else(|| EncodeError("sequences and maps in keys need a known length".into()))?;
        self.varint(len as u128);
        Ok(())
    }
}

impl<'a, W: Bytes> ser::Serializer for &mut KeyEncoder<'a, W> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.out.push(v as u8);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.out.push(v as u8);
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.zigzag(v.into());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.zigzag(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.out.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.varint(v.into());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        self.varint(v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), EncodeError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), EncodeError> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EncodeError> {
        self.out.extend_from_slice(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.serialize_bytes(v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        self.varint(v.len() as u128);
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.out.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        self.out.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), EncodeError> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<(), EncodeError> {
        self.varint(index.into());
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.varint(index.into());
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, EncodeError> {
        self.length(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, EncodeError> {
        self.varint(index.into());
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, EncodeError> {
        self.length(len)?;
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, EncodeError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, EncodeError> {
        self.varint(index.into());
        Ok(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Compound values are their parts, one after another.
macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl<W: Bytes> ser::$trait for &mut KeyEncoder<'_, W> {
            type Ok = ();
            type Error = EncodeError;
            fn $method<T: Serialize + ?Sized>(&mut self, $($key: &'static str,)? value: &T) -> Result<(), EncodeError> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), EncodeError> {
                Ok(())
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, _key);
compound!(SerializeStructVariant, serialize_field, _key);

impl<W: Bytes> ser::SerializeMap for &mut KeyEncoder<'_, W> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, Serialize)]
    enum Shape {
        Unit,
        Newtype(i64),
        Tuple(u16, String),
        Struct { a: Option<u32>, b: Vec<i8> },
    }

    #[derive(Debug, Clone, Serialize)]
    struct Everything {
        b: bool,
        i: (i8, i16, i32, i64, i128),
        u: (u8, u16, u32, u64, u128),
        f: (f32, f64),
        c: char,
        s: String,
        bytes: serde_bytes_like::Bytes,
        o: Option<String>,
        unit: (),
        shapes: Vec<Shape>,
        map: BTreeMap<String, u64>,
    }

    /// `serialize_bytes`, which plain `Vec<u8>` does not use.
    mod serde_bytes_like {
        #[derive(Debug, Clone)]
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Unit),
            any::<i64>().prop_map(Shape::Newtype),
            (any::<u16>(), ".{0,300}").prop_map(|(a, b)| Shape::Tuple(a, b)),
            (any::<Option<u32>>(), proptest::collection::vec(any::<i8>(), 0..5))
                .prop_map(|(a, b)| Shape::Struct { a, b }),
        ]
    }

    fn everything() -> impl Strategy<Value = Everything> {
        (
            any::<bool>(),
            any::<(i8, i16, i32, i64, i128)>(),
            any::<(u8, u16, u32, u64, u128)>(),
            any::<(f32, f64)>(),
            any::<char>(),
            ".{0,40}",
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<Option<String>>(),
            proptest::collection::vec(shape(), 0..4),
            proptest::collection::btree_map(".{0,5}", any::<u64>(), 0..4),
        )
            .prop_map(|(b, i, u, f, c, s, bytes, o, shapes, map)| Everything {
                b,
                i,
                u,
                f,
                c,
                s,
                bytes: serde_bytes_like::Bytes(bytes),
                o,
                unit: (),
                shapes,
                map,
            })
    }

    proptest! {
        #[test]
        fn bytes_equal_bincode_standard(value in everything()) {
            let mut ours = Vec::new();
            encode_key(&value, &mut ours).unwrap();
            let theirs = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn integers_at_every_width_equal_bincode(v in any::<u64>(), shift in 0u32..64) {
            let v = v >> shift;
            let mut ours = Vec::new();
            encode_key(&(v, v as i64, -(v as i64)), &mut ours).unwrap();
            let theirs = bincode::serde::encode_to_vec((v, v as i64, -(v as i64)), bincode::config::standard()).unwrap();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn a_hasher_is_fed_exactly_the_bincode_bytes(value in everything()) {
            /// Keeps every byte it is fed, in order.
            #[derive(Default)]
            struct Recorder(Vec<u8>);
            impl Hasher for Recorder {
                fn write(&mut self, bytes: &[u8]) {
                    self.0.extend_from_slice(bytes);
                }
                fn finish(&self) -> u64 {
                    0
                }
            }
            let mut fed = Recorder::default();
            hash_key(&value, &mut fed).unwrap();
            let theirs = bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap();
            prop_assert_eq!(fed.0, theirs);
        }
    }
}
