import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createPasswordHasher, DEFAULT_PASSWORD_HASH_PARAMS } from "../../src/domain/passwords/password-hasher.ts";
import { checkPasswordStrength } from "../../src/domain/passwords/password-policy.ts";

const STRONG = "violet harbor quantum tangerine";

function phcParams(hash: string): { id: string; m: number; t: number; p: number } {
  const [, id = "", , params = ""] = hash.split("$");
  const values = Object.fromEntries(params.split(",").map((pair) => [pair[0], Number(pair.slice(2))]));
  return { id, m: values["m"] ?? 0, t: values["t"] ?? 0, p: values["p"] ?? 0 };
}

async function timeMs(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

describe("password hasher", () => {
  const hasher = createPasswordHasher();

  it("defaults to at least OWASP's argon2id parameters", () => {
    expect(DEFAULT_PASSWORD_HASH_PARAMS.memoryKiB).toBeGreaterThanOrEqual(19_456);
    expect(DEFAULT_PASSWORD_HASH_PARAMS.timeCost).toBeGreaterThanOrEqual(2);
    expect(DEFAULT_PASSWORD_HASH_PARAMS.parallelism).toBeGreaterThanOrEqual(1);
  });

  it("hashes to an argon2id PHC string with its parameters and a fresh salt", async () => {
    const hash = await hasher.hash(STRONG);
    expect(hash).toMatch(/^\$argon2id\$v=19\$/);
    const params = phcParams(hash);
    expect(params).toMatchObject({ id: "argon2id" });
    expect(params.m).toBeGreaterThanOrEqual(19_456);
    expect(params.t).toBeGreaterThanOrEqual(2);
    expect(params.p).toBeGreaterThanOrEqual(1);
    expect(hash).not.toContain(STRONG);
    expect(await hasher.hash(STRONG)).not.toBe(hash);
  });

  it("verifies the right password and rejects a wrong one", async () => {
    const hash = await hasher.hash(STRONG);
    expect(await hasher.verify(hash, STRONG)).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify(hash, `${STRONG}!`)).toEqual({ ok: false, needsRehash: false });
    expect(await hasher.verify(hash, "")).toEqual({ ok: false, needsRehash: false });
  });

  it("verifies hashes written by the reference implementation (node-argon2), including weaker ones to re-hash", async () => {
    // Known answers produced by the argon2 npm package (the C reference implementation) with its m,p,t order.
    const reference = "$argon2id$v=19$m=19456,p=1,t=2$0f+imVQW1JQeOfHDzouf1Q$RoOMGVnHTbSFfn/SzTXlO7PpvgZZo02GMsnck3or5is";
    expect(await hasher.verify(reference, "correct horse battery staple")).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify(reference, "correct horse battery stapler")).toEqual({ ok: false, needsRehash: false });
    const weaker = "$argon2i$v=19$m=4096,p=2,t=3$OPfht+5d5We+p70cavYjVQ$cid5g7ZayklDF/0z2s96NY240oeBBrhH7CIHOfGFagE";
    expect(await hasher.verify(weaker, "pw-weak-params")).toEqual({ ok: true, needsRehash: true });
  });

  it("hashes on a low-priority thread, so logins yield the CPU to the event loop", async () => {
    await hasher.hash("warm up the pool of hashing threads");
    const { readdirSync, readFileSync } = await import("node:fs");
    const threads = readdirSync("/proc/self/task").map((tid) => {
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ").pop()!.split(" ");
      // stat fields 19 (nice) and 41 (scheduling policy; 5 is SCHED_IDLE), counted from 3 after "pid (comm) "
      return { nice: Number(fields[16]), policy: Number(fields[38]) };
    });
    expect(threads.map((t) => t.nice)).toContain(19);
    // Where util-linux's chrt exists, the hashing thread is also SCHED_IDLE.
    const { spawnSync } = await import("node:child_process");
    if (spawnSync("chrt", ["--version"]).status === 0) expect(threads.filter((t) => t.nice === 19).map((t) => t.policy)).toContain(5);
  });

  it("treats Unicode forms of the same password alike (NFKC)", async () => {
    const hash = await hasher.hash("ｆｕｌｌwidth passphrase ok");
    expect((await hasher.verify(hash, "fullwidth passphrase ok")).ok).toBe(true);
  });

  it("asks for a rehash when the configured parameters grow, only after a match", async () => {
    const weak = createPasswordHasher({ memoryKiB: 8192, timeCost: 1, parallelism: 1 });
    const hash = await weak.hash(STRONG);
    expect(await weak.verify(hash, STRONG)).toEqual({ ok: true, needsRehash: false });
    expect(await hasher.verify(hash, STRONG)).toEqual({ ok: true, needsRehash: true });
    expect(await hasher.verify(hash, "wrong password here")).toEqual({ ok: false, needsRehash: false });
    // Stronger stored parameters than configured are fine as they are.
    expect(await weak.verify(await hasher.hash(STRONG), STRONG)).toEqual({ ok: true, needsRehash: false });
  });

  it("answers ok: false for malformed or hostile stored hashes instead of throwing", async () => {
    const hash = await hasher.hash(STRONG);
    const bad = [
      "",
      "not a hash",
      "$argon2id$v=19$m=19456,t=2,p=1$",
      hash.slice(0, -10),
      hash.replace("argon2id", "bcrypt"),
      hash.replace(/m=\d+/, "m=99999999"), // would allocate ~100 GB
      hash.replace(/t=\d+/, "t=0"),
      `${hash}$extra`,
    ];
    for (const stored of bad) expect(await hasher.verify(stored, STRONG)).toEqual({ ok: false, needsRehash: false });
    expect(await hasher.verify(undefined as unknown as string, STRONG)).toEqual({ ok: false, needsRehash: false });
  });

  it("verifyDummy spends about as long as a real verify", async () => {
    const hash = await hasher.hash(STRONG);
    await hasher.verifyDummy("warm up the dummy hash");
    const real: number[] = [];
    const dummy: number[] = [];
    for (let i = 0; i < 3; i++) {
      real.push(await timeMs(() => hasher.verify(hash, "some wrong guess")));
      dummy.push(await timeMs(() => hasher.verifyDummy("some wrong guess")));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] ?? 0;
    expect(median(dummy)).toBeGreaterThan(median(real) / 3);
    expect(median(dummy)).toBeLessThan(median(real) * 3);
  });
});

describe("password policy", () => {
  it("refuses passwords shorter than 12 code points, counting characters not UTF-16 units", async () => {
    expect(await checkPasswordStrength("Sh0rt!pw", [])).toEqual({ ok: false, reason: expect.stringContaining("at least 12 characters") });
    // 11 emoji are 22 UTF-16 units but 11 characters.
    expect(await checkPasswordStrength("🦊🐙🦉🐢🦔🐝🦋🐞🦀🐡🦑", [])).toMatchObject({ ok: false, reason: expect.stringContaining("at least 12") });
  });

  it("refuses passwords longer than 1024 code points", async () => {
    const result = await checkPasswordStrength(`${STRONG} `.repeat(40), []);
    expect(result).toMatchObject({ ok: false, reason: expect.stringContaining("at most 1024") });
  });

  it.each(["password1234", "qwertyuiopasdf", "aaaaaaaaaaaaaaaa", "Password123!"])("refuses the common or patterned %s with a reason", async (password) => {
    const result = await checkPasswordStrength(password, []);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toMatch(/^The password is too easy to guess\./);
    expect(result.reason).not.toContain(password);
  });

  it("refuses a password built from the username or email", async () => {
    const byName = await checkPasswordStrength("margarethamilton1969", ["margarethamilton"]);
    expect(byName.ok).toBe(false);
    if (!byName.ok) expect(byName.reason).not.toContain("margarethamilton1969");
    expect(await checkPasswordStrength("margarethamilton1969", [])).toMatchObject({ ok: true });
    expect((await checkPasswordStrength("zephyrquill2024!", ["zephyr.quill@example.com"])).ok).toBe(false);
  });

  it("accepts a strong passphrase", async () => {
    expect(await checkPasswordStrength(STRONG, ["alice", "alice@example.com"])).toEqual({ ok: true });
    expect(await checkPasswordStrength("correct horse battery staple", [])).toEqual({ ok: true });
  });

  it("keeps zxcvbn's dictionaries off the calling thread's heap: checks run in their own thread", async () => {
    // A fresh process, so that nothing loaded before counts: its heap after a check, against before.
    const script = `
      const { checkPasswordStrength } = await import(${JSON.stringify(new URL("../../src/domain/passwords/password-policy.ts", import.meta.url).href)});
      globalThis.gc(); const before = process.memoryUsage().heapUsed;
      const verdicts = await Promise.all(["password1234", "correct horse battery staple"].map((p) => checkPasswordStrength(p, [])));
      globalThis.gc(); const after = process.memoryUsage().heapUsed;
      console.log(JSON.stringify({ verdicts: verdicts.map((v) => v.ok), grewBy: after - before }));`;
    const dir = await mkdtemp(join(tmpdir(), "portcullis-strength-"));
    const file = join(dir, "check.mjs");
    await writeFile(file, script);
    const { stdout } = await promisify(execFile)(process.execPath, ["--expose-gc", file]).finally(() => rm(dir, { recursive: true, force: true }));
    const { verdicts, grewBy } = JSON.parse(stdout) as { verdicts: boolean[]; grewBy: number };
    expect(verdicts).toEqual([false, true]);
    // The dictionaries are about 13 MB; on this heap they would show.
    expect(grewBy).toBeLessThan(4_000_000);
  });
});
