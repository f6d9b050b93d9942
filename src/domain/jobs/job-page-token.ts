import { createSignedPageTokens, type SignedPageTokens } from "../crypto/signed-page-token.ts";

/** Where a page of jobs ended: the last job's id and creation time (the all-users order needs both). */
export interface JobCursor {
  readonly id: string;
  readonly createdAt: number;
}

/** ListJobs page tokens, bound to the caller, the owner selection and the status filter (see signed-page-token.ts). */
export type JobPageTokens = SignedPageTokens<JobCursor>;

export function createJobPageTokens(key: Uint8Array): JobPageTokens {
  return createSignedPageTokens<JobCursor>(key, {
    pack: (cursor) => ({ i: cursor.id, t: cursor.createdAt }),
    unpack: ({ i, t }) => (typeof i === "string" && typeof t === "number" && Number.isSafeInteger(t) ? { id: i, createdAt: t } : undefined),
  });
}
