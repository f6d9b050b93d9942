import { randomBytes } from "node:crypto";
import { createChainSealer } from "../../src/domain/audit/audit-chain.ts";

/** A chain sealer with a throwaway key, for tests that write audit events without a gateway. */
export const testSealer = createChainSealer(randomBytes(32));
