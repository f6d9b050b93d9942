import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runCli } from "../helpers/cli-process.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { ensureGrpcurl } from "../helpers/grpcurl.ts";
import { noteSecret, saveLog } from "../helpers/secret-capture.ts";

const run = promisify(execFile);
const ROOT = new URL("../..", import.meta.url);
const grpcurl = await ensureGrpcurl();

/**
 * With no AI configuration at all, the gateway started as `npm start` does answers Query and QueryStream
 * from the built-in local responder, through grpcurl and reflection (the README's commands).
 */
describe.skipIf(grpcurl === undefined)("the local provider with no configuration (npm start, grpcurl)", () => {
  const dbName = testDatabaseName(import.meta.url);
  let dataDir = "";
  let home = "";
  let child: ChildProcess | undefined;
  let log = "";
  let address = "";
  let token = "";
  const call = async (method: string, body: object) => {
    const { stdout } = await run(grpcurl!, ["-plaintext", "-H", `authorization: Bearer ${token}`, "-d", JSON.stringify(body), address, `portcullis.v1.AiService/${method}`], { timeout: 20_000 });
    return stdout;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portcullis-local-ai-"));
    home = await mkdtemp(join(tmpdir(), "portcullis-local-home-"));
    const env = { MONGODB_URI: inject("mongodbUri"), PORTCULLIS_DB_NAME: dbName, PORTCULLIS_DATA_DIR: dataDir };
    child = spawn(process.execPath, ["src/main.ts"], { cwd: ROOT, env: { PATH: process.env["PATH"], HOME: home, PORTCULLIS_PORT: "0", ...env }, stdio: ["ignore", "pipe", "inherit"] });
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).on("line", (line) => {
        log += `${line}\n`;
        const parsed = JSON.parse(line) as { msg?: string; port?: number };
        if (parsed.msg?.startsWith("listening on")) resolve(parsed.port!);
      });
      child!.once("exit", (code) => reject(new Error(`gateway exited with ${code}`)));
    });
    address = `127.0.0.1:${port}`;
    const bootstrapped = await runCli(["bootstrap-owner", "--username", "lou", "--generate"], { home, env });
    const password = /: (\S+)\s*$/.exec(bootstrapped.stdout)?.[1];
    if (!password) throw new Error(`bootstrap-owner printed no password: ${bootstrapped.stderr}`);
    noteSecret(password);
    const { stdout } = await run(grpcurl!, ["-plaintext", "-d", JSON.stringify({ username: "lou", password }), address, "portcullis.v1.AuthService/Login"], { timeout: 20_000 });
    token = (JSON.parse(stdout) as { accessToken: string }).accessToken;
    noteSecret(token);
  });
  afterAll(async () => {
    child?.kill("SIGTERM");
    await new Promise((resolve) => (child?.exitCode !== null ? resolve(undefined) : child.once("exit", resolve)));
    // The database stays: the whole-run secret scan reads its audit events.
    await saveLog(dbName, log);
    await rm(dataDir, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it("Query answers from the local responder, which says what it is", async () => {
    const answer = JSON.parse(await call("Query", { prompt: "What is a portcullis?" })) as Record<string, unknown>;
    expect(answer).toMatchObject({ provider: "local", model: "local-echo", finishReason: "FINISH_REASON_STOP" });
    expect(answer["text"]).toBe("This is the Portcullis local responder, not a language model. You asked: «What is a portcullis?». Configure PORTCULLIS_AI_PROVIDERS for real answers.");
    expect(answer["usage"]).toMatchObject({ inputTokens: 4, outputTokens: 21, totalTokens: 25 });
  });

  it("QueryStream streams the answer word by word, the last message carrying usage and finish reason", async () => {
    const out = await call("QueryStream", { prompt: "Stream it", maxTokens: 5 });
    const messages = out
      .trim()
      .split(/\n(?=\{)/)
      .map((m) => JSON.parse(m) as Record<string, unknown>);
    expect(messages[0]).toMatchObject({ textDelta: "This", provider: "local", model: "local-echo" });
    expect(messages.slice(0, -1).map((m) => m["textDelta"])).toEqual(["This", " is", " the", " Portcullis", " local"]);
    expect(messages.at(-1)).toMatchObject({ finishReason: "FINISH_REASON_LENGTH", usage: { inputTokens: 2, outputTokens: 5, totalTokens: 7 } });
  });

  it("ListModels and GetStatus are honest that it is not a language model", async () => {
    const models = JSON.parse(await call("ListModels", {})) as { models: Array<Record<string, unknown>> };
    expect(models.models).toEqual([expect.objectContaining({ provider: "local", id: "local-echo", isDefault: true, displayName: expect.stringMatching(/not a language model/) })]);
    const status = JSON.parse(await call("GetStatus", {})) as { version: string; providers: Array<Record<string, unknown>>; ttsEngine: Record<string, unknown> };
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(status.providers).toEqual([
      expect.objectContaining({ name: "local", health: "HEALTH_STATE_HEALTHY", isDefault: true, defaultModel: "local-echo", detail: expect.stringMatching(/not a language model/) }),
    ]);
    // npm start warms the speech engine up right after it listens: healthy once it is ready.
    await expect
      .poll(async () => (JSON.parse(await call("GetStatus", {})) as { ttsEngine: Record<string, unknown> }).ttsEngine, { timeout: 20_000 })
      .toMatchObject({ name: expect.stringMatching(/^eSpeak NG/), health: "HEALTH_STATE_HEALTHY" });
  });
});
