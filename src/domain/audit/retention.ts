import type { AuditLog } from "./audit-log.ts";
import type { AuditLogStore, AuditSealsStore } from "./audit-log-store.ts";
import type { AuditRecorder } from "./audit-recorder.ts";
import { CHECKPOINT_TYP } from "./audit-signatures.ts";

const BATCH = 1000;

/**
 * Deletes events older than the retention period, oldest (lowest seq) first, and only as a prefix of the
 * chain: it stops at the first event that is still young, so the retained log stays one unbroken chain.
 * Before each deletion it saves a signed checkpoint (the last deleted seq and its hash); verification
 * then starts after the newest checkpoint, from its hash. A crash between checkpoint and deletion only
 * leaves events that verification skips and the next sweep deletes. Several instances may sweep at once:
 * checkpoints are insert-only by seq and deleting what is gone is a no-op.
 */
export function createRetentionSweeper(deps: { store: AuditLogStore; seals: AuditSealsStore; log: AuditLog; audit: AuditRecorder; retentionMs: number; now?: () => Date }) {
  const now = deps.now ?? (() => new Date());
  return async (): Promise<number> => {
    const cutoff = new Date(now().getTime() - deps.retentionMs);
    const { point, forged } = await deps.log.checkpoint();
    if (forged) throw new Error("audit retention: the latest checkpoint is not genuine; not sweeping");
    let from = point ? point.seq + 1 : ((await deps.store.firstSeq()) ?? 1);
    let deleted = 0;
    let last: { seq: number; hash: string } | undefined;
    for (;;) {
      const batch = await deps.store.range(from, Number.MAX_SAFE_INTEGER, BATCH);
      const expired: typeof batch = [];
      for (const event of batch) {
        if (event.time >= cutoff) break;
        expired.push(event);
      }
      const newest = expired.at(-1);
      if (!newest) break;
      await deps.seals.saveCheckpoint(await deps.log.signPoint(CHECKPOINT_TYP, { seq: newest.seq, hash: newest.hash }));
      deleted += await deps.store.deleteThrough(newest.seq);
      last = { seq: newest.seq, hash: newest.hash };
      from = newest.seq + 1;
      if (expired.length < batch.length || batch.length < BATCH) break;
    }
    if (last) {
      deps.audit.record({
        type: "audit.retention_sweep",
        outcome: "success",
        actor: { kind: "system", display: "retention" },
        metadata: { deleted, checkpoint_seq: last.seq, checkpoint_hash: last.hash, cutoff: cutoff.toISOString() },
      });
    }
    return deleted;
  };
}
