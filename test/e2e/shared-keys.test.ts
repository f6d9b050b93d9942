import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { KeyringError } from "../../src/keys/keyring.ts";
import { testDatabaseName } from "../helpers/database.ts";
import { startIdentityServer } from "../helpers/identity-server.ts";

describe("keys that instances sharing a database must share", () => {
  it("refuses to start an instance whose API-key pepper or encryption key differs from the others', naming the variable", async () => {
    const dbName = testDatabaseName(import.meta.url);
    const pepper = randomBytes(32).toString("base64");
    const encryption = randomBytes(32).toString("base64");
    const first = await startIdentityServer({ dbName, env: { PORTCULLIS_API_KEY_PEPPER: pepper, PORTCULLIS_ENCRYPTION_KEY: encryption } });
    try {
      const second = await startIdentityServer({ dbName, env: { PORTCULLIS_API_KEY_PEPPER: pepper, PORTCULLIS_ENCRYPTION_KEY: encryption } });
      await second.close();

      const otherPepper = randomBytes(32).toString("base64");
      const refused = await startIdentityServer({ dbName, env: { PORTCULLIS_API_KEY_PEPPER: otherPepper, PORTCULLIS_ENCRYPTION_KEY: encryption } }).then(
        async (gw) => {
          await gw.close();
        },
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(KeyringError);
      expect((refused as Error).message).toMatch(/^PORTCULLIS_API_KEY_PEPPER differs/);
      for (const secret of [pepper, otherPepper, encryption]) expect((refused as Error).message).not.toContain(secret);

      const wrongEncryption = await startIdentityServer({ dbName, env: { PORTCULLIS_API_KEY_PEPPER: pepper, PORTCULLIS_ENCRYPTION_KEY: randomBytes(32).toString("base64") } }).then(
        async (gw) => {
          await gw.close();
        },
        (error: unknown) => error,
      );
      expect((wrongEncryption as Error).message).toMatch(/^PORTCULLIS_ENCRYPTION_KEY differs/);
      const stored = await first.store.db
        .collection("meta")
        .find({ _id: { $regex: /^key_fingerprint:/ } as never })
        .toArray();
      expect(stored.map((d) => d._id).sort()).toEqual(["key_fingerprint:api_key_pepper", "key_fingerprint:encryption_key"]);
    } finally {
      await first.close();
    }
  });
});
