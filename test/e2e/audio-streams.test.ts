import { existsSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AudioFormat, AudioStreamService, type SynthesizeResponse } from "../../gen/portcullis/v1/audio_stream_pb.js";
import { AuthService, LogoutScope } from "../../gen/portcullis/v1/auth_pb.js";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer, testPassword, type IdentityServer } from "../helpers/identity-server.ts";
import { codeOf, cpuTicks, eventually, receive } from "../helpers/audio.ts";

/** About 2,400 characters in 40 sentences: two and a half minutes of speech. */
const LONG_TEXT = Array.from({ length: 40 }, (_, i) => `This is sentence number ${i + 1} of a long text that keeps the engine busy for a while.`).join(" ");

/** The streams' hard parts: cancellation, slow readers, revocation, the per-caller cap and engine crashes. */
describe("audio streams under cancellation, slow readers, revocation and engine failure", () => {
  let gw: IdentityServer;
  const login = async (username: string) => (await gw.client(AuthService).login({ username, password: testPassword(username) })).accessToken;
  const engine = () => gw.gateway.audio.engine;
  const enginePid = () =>
    engine()
      .processes()
      .find((p) => p.ready)?.pid;
  /** Whether the engine process has used no CPU over a quarter of a second. */
  const engineIdle = async (pid: number) => {
    const before = await cpuTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, 250));
    return (await cpuTicks(pid)) === before;
  };

  beforeAll(async () => {
    // One engine process, so "the engine process" is well defined; two streams per caller.
    gw = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_TTS_ENGINE_PROCESSES: "1", PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL: "2" } });
    for (const name of ["canceller", "sloth", "revoked", "greedy", "bystander", "crasher"]) await gw.createUser(name, "user");
    await engine().warmUp();
  });
  afterAll(async () => {
    await gw.close();
  });

  it("cancelling mid-stream stops the engine at once: its CPU use returns to idle", async () => {
    const pid = enginePid()!;
    const stop = new AbortController();
    const stream = gw.client(AudioStreamService, { token: await login("canceller") }).synthesize({ text: LONG_TEXT, format: AudioFormat.WAV, sampleRateHz: 48000 }, { signal: stop.signal });
    let chunks = 0;
    const code = await codeOf(async () => {
      for await (const m of stream) if (m.payload.case === "chunk" && ++chunks === 20) stop.abort();
    });
    expect(code).toBe(Code.Canceled);
    const atCancel = await cpuTicks(pid);
    expect(await eventually(() => engineIdle(pid))).toBe(true);
    // Speaking the whole text at 48 kHz takes the engine seconds of CPU; after the cancel it used well
    // under one (clock ticks are 10 ms).
    expect((await cpuTicks(pid)) - atCancel).toBeLessThan(100);
    expect(await eventually(() => gw.gateway.audio.service.openStreams().length === 0)).toBe(true);
    expect(engine().processes()).toEqual([{ pid, ready: true, sessions: 0, pendingJobs: 0 }]); // same process, not killed
  });

  it("a slow reader pauses synthesis: memory stays bounded, then every byte arrives", async () => {
    const pid = enginePid()!;
    const iterator = gw
      .client(AudioStreamService, { token: await login("sloth") })
      .synthesize({ text: LONG_TEXT, format: AudioFormat.PCM_S16LE })
      [Symbol.asyncIterator]();
    const first = [(await iterator.next()).value, (await iterator.next()).value] as SynthesizeResponse[];
    expect(first.map((m) => m.payload.case)).toEqual(["header", "chunk"]);
    // The reader stops reading. Synthesis runs until the stream's buffer (and the HTTP/2 window) is full, then pauses.
    expect(await eventually(() => engineIdle(pid), 15_000)).toBe(true);
    const [stalled] = gw.gateway.audio.service.openStreams();
    const wholeText = 2400 * 0.063 * 22050 * 2; // ≈ 6.7 MB of PCM
    expect(stalled!.producedBytes).toBeLessThan(2.5 * 1024 * 1024);
    expect(stalled!.producedBytes).toBeLessThan(wholeText / 2);
    expect(stalled!.bufferedBytes).toBeLessThan(2 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(gw.gateway.audio.service.openStreams()[0]!.producedBytes).toBe(stalled!.producedBytes); // still paused
    // Reading again resumes synthesis; nothing was lost.
    const chunks = [first[1]!.payload.value] as Array<{ data: Uint8Array; sequence: number }>;
    let total = -1;
    for (let step = await iterator.next(); !step.done; step = await iterator.next()) {
      const payload = step.value.payload;
      if (payload.case === "chunk") chunks.push(payload.value);
      if (payload.case === "end") total = Number(payload.value.totalBytes);
    }
    expect(chunks.map((c) => c.sequence)).toEqual(chunks.map((_, i) => i));
    expect(chunks.reduce((n, c) => n + c.data.length, 0)).toBe(total);
    expect(total).toBeGreaterThan(wholeText / 2);
  }, 60_000);

  it("a revoked session's stream ends with UNAUTHENTICATED within 1 s, and its engine work stops", async () => {
    const pid = enginePid()!;
    const token = await login("revoked");
    const iterator = gw.client(AudioStreamService, { token }).synthesize({ text: LONG_TEXT })[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.payload.case).toBe("header");
    await gw.client(AuthService, { token }).logout({ scope: LogoutScope.CURRENT_SESSION });
    const revokedAt = Date.now();
    let code: Code | "ended normally" = "ended normally";
    try {
      while (!(await iterator.next()).done);
    } catch (error) {
      code = ConnectError.from(error).code;
    }
    expect(code).toBe(Code.Unauthenticated);
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
    expect(await eventually(() => gw.gateway.audio.service.openStreams().length === 0)).toBe(true);
    expect(await eventually(() => engineIdle(pid))).toBe(true);
  });

  it("a caller may hold only so many open streams: the next is RESOURCE_EXHAUSTED, others are unaffected", async () => {
    const greedy = gw.client(AudioStreamService, { token: await login("greedy") });
    const stops = [new AbortController(), new AbortController()];
    const held = stops.map((stop) => greedy.synthesize({ text: LONG_TEXT }, { signal: stop.signal })[Symbol.asyncIterator]());
    for (const it of held) expect((await it.next()).value?.payload.case).toBe("header");
    await expect(codeOf(() => receive(greedy.synthesize({ text: "one more" })))).resolves.toBe(Code.ResourceExhausted);
    // Someone else still speaks.
    const other = await receive(gw.client(AudioStreamService, { token: await login("bystander") }).synthesize({ text: "I am not affected." }));
    expect(other.chunks.length).toBeGreaterThan(0);
    // Closing one of the two frees its slot.
    stops[0]!.abort();
    await held[0]!.next().catch(() => undefined);
    expect(await eventually(() => gw.gateway.audio.service.openStreams().filter((s) => s.principal.startsWith("user:")).length === 1)).toBe(true);
    const again = await receive(greedy.synthesize({ text: "Now there is room." }));
    expect(again.chunks.length).toBeGreaterThan(0);
    stops[1]!.abort();
    await held[1]!.next().catch(() => undefined);
  });

  it("an engine process killed mid-synthesis ends its stream with UNAVAILABLE, never a hang, and is replaced", async () => {
    const pid = enginePid()!;
    const stream = gw.client(AudioStreamService, { token: await login("crasher") }).synthesize({ text: LONG_TEXT, format: AudioFormat.MP3, sampleRateHz: 48000 });
    let chunks = 0;
    const code = await codeOf(async () => {
      for await (const m of stream) if (m.payload.case === "chunk" && ++chunks === 3) process.kill(pid, "SIGKILL");
    });
    expect(code).toBe(Code.Unavailable);
    expect(
      await eventually(
        () =>
          engine()
            .processes()
            .some((p) => p.ready && p.pid !== pid),
        20_000,
      ),
    ).toBe(true);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    const after = await receive(gw.client(AudioStreamService, { token: await login("crasher") }).synthesize({ text: "Back again." }));
    expect(after.chunks.length).toBeGreaterThan(0);
    expect(gw.gateway.audio.engine.health()).toEqual({ state: "serving" });
  });

  it("stopping the gateway stops its engine processes", async () => {
    const second = await startIdentityServer({ dbName: testDatabaseName(import.meta.url), env: { PORTCULLIS_TTS_ENGINE_PROCESSES: "1" } });
    await second.gateway.audio.engine.warmUp();
    const pid = second.gateway.audio.engine.processes()[0]!.pid!;
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    await second.close();
    expect(await eventually(() => !existsSync(`/proc/${pid}`))).toBe(true);
  });
});
