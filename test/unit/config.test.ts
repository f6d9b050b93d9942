import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "../../src/config/config.ts";

describe("configuration", () => {
  it("has secure, documented defaults", () => {
    const config = loadConfig({}, "/srv/app");
    expect(config.host).toBe("127.0.0.1");
    expect(config.port).toBe(50051);
    expect(config.dataDir).toBe("/srv/app/data");
    expect(config.keyFile).toBe("/srv/app/data/keys.json");
    expect(config.mongodbUri).toBeUndefined();
    expect(config.tls).toBeUndefined();
    expect(config.suppliedKeys.encryptionKey).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads every variable it documents", () => {
    const config = loadConfig(
      {
        PORTCULLIS_HOST: "::1",
        PORTCULLIS_PORT: "8443",
        PORTCULLIS_DATA_DIR: "/var/lib/portcullis",
        MONGODB_URI: "mongodb://db.internal:27017/?replicaSet=rs0",
        PORTCULLIS_DB_NAME: "gw",
        PORTCULLIS_TOOLS_DIR: "/opt/tools",
        PORTCULLIS_TLS_CERT: "/etc/tls/cert.pem",
        PORTCULLIS_TLS_KEY: "/etc/tls/key.pem",
        PORTCULLIS_LOG_LEVEL: "warn",
        PORTCULLIS_SHUTDOWN_TIMEOUT_MS: "2500",
        PORTCULLIS_REFLECTION: "false",
        PORTCULLIS_KEY_FILE: "/run/secrets/keys.json",
        PORTCULLIS_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
        PORTCULLIS_API_KEY_PEPPER: Buffer.alloc(32, 9).toString("base64url"),
        PORTCULLIS_MAX_MESSAGE_BYTES: "65536",
        PORTCULLIS_CORS_ORIGINS: "https://console.example.com, http://localhost:5173",
        PORTCULLIS_RATE_LIMIT_DEFAULT: "10",
        PORTCULLIS_RATE_LIMIT_CREDENTIAL: "11",
        PORTCULLIS_RATE_LIMIT_EXPENSIVE: "12",
        PORTCULLIS_RATE_LIMIT_ADMIN: "13",
        PORTCULLIS_RATE_LIMIT_INFRASTRUCTURE: "14",
      },
      "/",
    );
    expect(config).toMatchObject({
      host: "::1",
      port: 8443,
      dataDir: "/var/lib/portcullis",
      dbName: "gw",
      toolsDir: "/opt/tools",
      tls: { certFile: "/etc/tls/cert.pem", keyFile: "/etc/tls/key.pem" },
      logLevel: "warn",
      shutdownTimeoutMs: 2500,
      reflection: false,
      keyFile: "/run/secrets/keys.json",
      maxMessageBytes: 65536,
      corsOrigins: ["https://console.example.com", "http://localhost:5173"],
      rateLimits: { default: 10, credential: 11, expensive: 12, admin: 13, infrastructure: 14 },
    });
    expect(config.suppliedKeys.encryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.suppliedKeys.apiKeyPepper).toEqual(Buffer.alloc(32, 9));
  });

  it.each([
    ["PORTCULLIS_PORT", "abc"],
    ["PORTCULLIS_PORT", "70000"],
    ["PORTCULLIS_HOST", "bad host!"],
    ["MONGODB_URI", "postgres://x"],
    ["PORTCULLIS_DB_NAME", "a/b"],
    ["PORTCULLIS_LOG_LEVEL", "loud"],
    ["PORTCULLIS_SHUTDOWN_TIMEOUT_MS", "-1"],
    ["PORTCULLIS_REFLECTION", "maybe"],
    ["PORTCULLIS_ENCRYPTION_KEY", "c2hvcnQ="],
    ["PORTCULLIS_API_KEY_PEPPER", "not base64!"],
    ["PORTCULLIS_MAX_MESSAGE_BYTES", "10"],
    ["PORTCULLIS_CORS_ORIGINS", "https://ok.example.com/path"],
    ["PORTCULLIS_RATE_LIMIT_CREDENTIAL", "0"],
    ["PORTCULLIS_TTS_ENGINE_PROCESSES", "0"],
    ["PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL", "0"],
  ])("rejects %s=%s naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      expect((error as ConfigError).variable).toBe(name);
      expect((error as Error).message.startsWith(`${name}: `)).toBe(true);
    }
  });

  it("names the missing half of a TLS pair", () => {
    expect(() => loadConfig({ PORTCULLIS_TLS_CERT: "/only/cert.pem" })).toThrow(/^PORTCULLIS_TLS_KEY: /);
    expect(() => loadConfig({ PORTCULLIS_TLS_KEY: "/only/key.pem" })).toThrow(/^PORTCULLIS_TLS_CERT: /);
  });

  it("never echoes a secret value in its error", () => {
    const secret = "mongodb-but-not:Sup3rS3cretPassw0rd@host";
    expect(() => loadConfig({ MONGODB_URI: secret })).toThrow(/^MONGODB_URI: /);
    try {
      loadConfig({ MONGODB_URI: secret });
    } catch (error) {
      expect((error as Error).message).not.toContain("Sup3rS3cret");
    }
  });

  it("reads an optional JSON file, with the environment taking precedence", async () => {
    const dir = await mkdtemp(join(tmpdir(), "portcullis-config-"));
    try {
      const file = join(dir, "portcullis.json");
      await writeFile(file, JSON.stringify({ PORTCULLIS_PORT: 7000, PORTCULLIS_LOG_LEVEL: "debug" }));
      const config = loadConfig({ PORTCULLIS_CONFIG_FILE: file, PORTCULLIS_LOG_LEVEL: "error" });
      expect(config.port).toBe(7000);
      expect(config.logLevel).toBe("error");
      await writeFile(file, JSON.stringify({ PORTCULLIS_PORTT: 1 }));
      expect(() => loadConfig({ PORTCULLIS_CONFIG_FILE: file })).toThrow(/^PORTCULLIS_CONFIG_FILE: unknown variable/);
      await writeFile(file, "{not json");
      expect(() => loadConfig({ PORTCULLIS_CONFIG_FILE: file })).toThrow(/^PORTCULLIS_CONFIG_FILE: /);
      expect(() => loadConfig({ PORTCULLIS_CONFIG_FILE: join(dir, "missing.json") })).toThrow(/file not found/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("sizes the speech engine pool from the cores unless told, and caps audio streams per caller", () => {
    const defaults = loadConfig({});
    expect(defaults.audio.engineProcesses).toBeGreaterThanOrEqual(1);
    expect(defaults.audio.engineProcesses).toBeLessThanOrEqual(4);
    expect(defaults.audio.maxStreamsPerPrincipal).toBe(4);
    expect(loadConfig({ PORTCULLIS_TTS_ENGINE_PROCESSES: "3", PORTCULLIS_AUDIO_MAX_STREAMS_PER_PRINCIPAL: "9" }).audio).toEqual({ engineProcesses: 3, maxStreamsPerPrincipal: 9 });
  });

  it("documents every variable in the README", async () => {
    const { readFile } = await import("node:fs/promises");
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    for (const variable of CONFIG_VARIABLES) expect(readme).toContain(`\`${variable.name}\``);
  });
});
