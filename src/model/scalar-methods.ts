import { ScalarType } from "@bufbuild/protobuf";

/**
 * The FastReader and FastWriter method that reads or writes a scalar of each type: the two
 * classes name them alike, so the generated codecs (compile-encoder.ts, compile-decoder.ts)
 * call `r.<name>()` and `w.<name>(v)`.
 */
export const scalarMethods: Readonly<Record<ScalarType, string>> = {
  [ScalarType.STRING]: "string",
  [ScalarType.BOOL]: "bool",
  [ScalarType.DOUBLE]: "double",
  [ScalarType.FLOAT]: "float",
  [ScalarType.INT32]: "int32",
  [ScalarType.UINT32]: "uint32",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.INT64]: "int64",
  [ScalarType.UINT64]: "uint64",
  [ScalarType.SINT64]: "sint64",
  [ScalarType.FIXED64]: "fixed64",
  [ScalarType.SFIXED64]: "sfixed64",
  [ScalarType.BYTES]: "bytes",
};
