import type { DescMessage, Message } from "@bufbuild/protobuf";
import { compileDecoder, type Decoder } from "./compile-decoder.js";
import { compileEncoder, type Encoder } from "./compile-encoder.js";

// One compiled encoder and decoder per message type, made on first use.

const encoders = new Map<string, Encoder<Message>>();
const decoders = new Map<string, Decoder<Message>>();

export function encoderFor<T extends Message>(schema: DescMessage): Encoder<T> {
  let e = encoders.get(schema.typeName);
  if (!e) encoders.set(schema.typeName, (e = compileEncoder(schema)));
  return e as Encoder<T>;
}

export function decoderFor<T extends Message>(schema: DescMessage): Decoder<T> {
  let d = decoders.get(schema.typeName);
  if (!d) decoders.set(schema.typeName, (d = compileDecoder(schema)));
  return d as Decoder<T>;
}
