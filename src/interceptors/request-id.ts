import { randomUUID } from "node:crypto";
import { ConnectError } from "@connectrpc/connect";
import { requestIdKey } from "../handlers/context-keys.ts";
import type { CallStep } from "./call-step.ts";

// A caller-supplied id is kept only when it is short and plain, so it can't inject into logs.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/;

/** The request id for a call: the caller's `x-request-id` when well-formed, else a new UUID. */
export function requestIdFor(offered: string | null | undefined): string {
  return typeof offered === "string" && ACCEPTABLE_REQUEST_ID.test(offered) ? offered : randomUUID();
}

/**
 * Gives every call a request id (see requestIdFor), unless the transport already gave it one when the
 * request arrived. It is put in the context for logs, audit records and errors, and echoed in the
 * `x-request-id` response header.
 */
export function createRequestIdStep(): CallStep {
  return {
    enter(req) {
      req.contextValues.set(requestIdKey, req.contextValues.get(requestIdKey) || requestIdFor(req.header.get("x-request-id")));
    },
    leave(res, req) {
      res.header.set("x-request-id", req.contextValues.get(requestIdKey));
      return res;
    },
    fail(error, req) {
      if (error instanceof ConnectError) error.metadata.set("x-request-id", req.contextValues.get(requestIdKey));
      return error;
    },
  };
}
