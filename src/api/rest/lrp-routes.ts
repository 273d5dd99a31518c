import { actualLRPToJson, decodeDesiredLRPCreateRequest, decodeDesiredLRPUpdateRequest, desiredLRPToJson, DiegoError, parseDomainMaxAge, writeJson } from "../../model/index.js";
import type { LrpApi } from "../core/lrp-api.js";
import type { Req } from "../http/types.js";
import { readJsonBody } from "./body.js";
import { bufferParts, sendJsonArray, type EncodedParts } from "./list.js";
import { send, sendJson } from "./reply.js";
import type { Route } from "./route.js";

// The LRP routes of contract section 7 (reference 2.1): desired LRPs, their instances, domains.

const json = (docs: string[]): EncodedParts => bufferParts(docs.map((d) => Buffer.from(d)));

/** Every Cache-Control value as sent: a header sent twice is two values (2015 read each). */
function cacheControlValues(req: Req): string[] {
  const raw = req.rawHeaders;
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === "cache-control") values.push(raw[i + 1]!);
  return values;
}

export function lrpRoutes(api: LrpApi): Route[] {
  return [
    {
      method: "POST",
      pattern: /^\/v1\/desired_lrps\/?$/,
      label: "/v1/desired_lrps",
      async handle(req, res) {
        await api.createDesiredLrp(decodeDesiredLRPCreateRequest(await readJsonBody(req)));
        send(res, 201);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/desired_lrps\/?$/,
      label: "/v1/desired_lrps",
      async handle(_req, res, _p, query) {
        await sendJsonArray(res, json((await api.listDesiredLrps(query.get("domain") ?? "")).map(desiredLRPToJson)));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/desired_lrps\/([^/]+)\/?$/,
      label: "/v1/desired_lrps/:guid",
      async handle(_req, res, [guid]) {
        sendJson(res, 200, desiredLRPToJson(await api.getDesiredLrp(guid!)));
      },
    },
    {
      method: "PUT",
      pattern: /^\/v1\/desired_lrps\/([^/]+)\/?$/,
      label: "/v1/desired_lrps/:guid",
      async handle(req, res, [guid]) {
        await api.updateDesiredLrp(guid!, decodeDesiredLRPUpdateRequest(await readJsonBody(req)));
        send(res, 204);
      },
    },
    {
      method: "DELETE",
      pattern: /^\/v1\/desired_lrps\/([^/]+)\/?$/,
      label: "/v1/desired_lrps/:guid",
      async handle(req, res, [guid]) {
        req.resume();
        await api.deleteDesiredLrp(guid!);
        send(res, 204);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/actual_lrps\/?$/,
      label: "/v1/actual_lrps",
      async handle(_req, res, _p, query) {
        await sendJsonArray(res, json((await api.listActualLrps({ domain: query.get("domain") ?? "" })).map(actualLRPToJson)));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/actual_lrps\/([^/]+)\/?$/,
      label: "/v1/actual_lrps/:guid",
      async handle(_req, res, [guid]) {
        await sendJsonArray(res, json((await api.listActualLrps({ processGuid: guid! })).map(actualLRPToJson)));
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/actual_lrps\/([^/]+)\/index\/([^/]*)$/,
      label: "/v1/actual_lrps/:guid/index/:index",
      async handle(_req, res, [guid, index]) {
        sendJson(res, 200, actualLRPToJson(await api.getActualLrp(guid!, index!)));
      },
    },
    {
      method: "DELETE",
      pattern: /^\/v1\/actual_lrps\/([^/]+)\/index\/([^/]*)$/,
      label: "/v1/actual_lrps/:guid/index/:index",
      async handle(req, res, [guid, index]) {
        req.resume();
        await api.killActualLrp(guid!, index!);
        send(res, 204);
      },
    },
    {
      method: "PUT",
      // An empty domain ("/v1/domains/") reaches the handler, which names it.
      pattern: /^\/v1\/domains\/([^/]*)$/,
      label: "/v1/domains/:domain",
      async handle(req, res, [domain]) {
        req.resume();
        const maxAge = parseDomainMaxAge(cacheControlValues(req));
        if ("problem" in maxAge) throw new DiegoError("InvalidRequest", maxAge.problem);
        await api.upsertDomain(domain!, maxAge.ttlSeconds);
        send(res, 204);
      },
    },
    {
      method: "GET",
      pattern: /^\/v1\/domains\/?$/,
      label: "/v1/domains",
      async handle(_req, res) {
        sendJson(res, 200, writeJson(await api.listDomains()));
      },
    },
  ];
}
