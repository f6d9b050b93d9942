/**
 * Most documents one ordered `insertMany` may carry where correctness depends on nothing after a failed
 * document being stored (the audit chain's positions, a job's dense event log). MongoDB stops an ordered
 * insert at its first error. FerretDB 1.24 splits an insert into batches of 100 and, after a batch failed,
 * goes on with the next one: an ordered insert of 150 documents whose first is a duplicate still stores
 * documents 101 to 150 (test/unit/audit-store-contention.test.ts). Within one batch it stops as it should.
 */
export const ORDERED_INSERT_MAX = 100;
