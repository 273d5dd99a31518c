import { createRegistry, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import * as v1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

// gRPC server reflection (v1 and the older v1alpha, same messages): tools such as grpcurl list
// the services and fetch their file descriptors, taken from the generated code's embedded
// descriptors, so no proto file is needed on either side.

/** The reply to one request, without the echo fields (valid_host, original_request). */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

type Request = v1.ServerReflectionRequest["messageRequest"];

const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });

/** A file and every file it imports, each once, the file first. */
function withDependencies(file: DescFile): DescFile[] {
  const out: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (f: DescFile): void => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    out.push(f);
    for (const d of f.dependencies) visit(d);
  };
  visit(file);
  return out;
}

const descriptors = (file: DescFile): Answer => ({
  case: "fileDescriptorResponse",
  value: { fileDescriptorProto: withDependencies(file).map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
});

/** The file declaring a fully-qualified symbol: a message, enum, service, method or field. */
function fileOfSymbol(registry: Registry, symbol: string): DescFile | undefined {
  const desc = registry.get(symbol);
  if (desc) return desc.file;
  // A method or a field: its parent's file.
  const parent = symbol.slice(0, symbol.lastIndexOf("."));
  return parent ? registry.get(parent)?.file : undefined;
}

export function createReflectionAnswers(files: readonly GenFile[], services: readonly string[]): (req: Request) => Answer {
  const registry = createRegistry(...files);
  const byName = new Map(files.flatMap(withDependencies).map((f) => [f.proto.name, f]));
  return (req) => {
    switch (req.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
      case "fileByFilename": {
        const f = byName.get(req.value);
        return f ? descriptors(f) : notFound(`file '${req.value.slice(0, 200)}'`);
      }
      case "fileContainingSymbol": {
        const f = fileOfSymbol(registry, req.value);
        return f ? descriptors(f) : notFound(`symbol '${req.value.slice(0, 200)}'`);
      }
      case "fileContainingExtension":
        return notFound(`extension ${req.value.extensionNumber} of '${req.value.containingType.slice(0, 200)}'`);
      case "allExtensionNumbersOfType":
        // None of the served types declares extension ranges.
        return registry.getMessage(req.value)
          ? { case: "allExtensionNumbersResponse", value: { baseTypeName: req.value, extensionNumber: [] } }
          : notFound(`type '${req.value.slice(0, 200)}'`);
      default:
        return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
    }
  };
}

export const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/** Registers both reflection services, describing `files` and listing `services`. */
export function registerReflection(router: ConnectRouter, files: readonly GenFile[], services: readonly string[]): void {
  const all = [...services, ...REFLECTION_SERVICES];
  const answer = createReflectionAnswers([...files, v1.file_grpc_reflection_v1_reflection, v1alpha.file_grpc_reflection_v1alpha_reflection], all);
  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield { validHost: req.host, originalRequest: req, messageResponse: answer(req.messageRequest) };
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req.messageRequest as Request) };
      }
    },
  });
}
