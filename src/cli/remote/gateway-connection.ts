import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "../../../gen/portcullis/v1/auth_pb.js";
import { CommandError, oneLine } from "../command-error.ts";
import { credentialsFilePath, readStoredLogin } from "./credentials-file.ts";
import { DEFAULT_GATEWAY_URL, normalizeGatewayUrl } from "./gateway-url.ts";
import { createRememberedLogin, type RememberedLogin } from "./remembered-login.ts";
import { isCredentialExpired } from "./remote-error.ts";

/** How a command reaches the gateway, as given by flags (which win) and the environment. */
export interface ConnectionOptions {
  readonly url?: string | undefined;
  readonly token?: string | undefined;
  readonly apiKey?: string | undefined;
}

/** Where the credentials of a connection came from. */
export type CredentialSource = "token" | "api-key" | "login" | "none";

export interface GatewayConnection {
  readonly url: string;
  readonly credentials: CredentialSource;
  /** The path of the remembered login consulted (whether or not it exists). */
  readonly credentialsFile: string;
  /** The remembered login in use, when `credentials` is "login". */
  readonly login: RememberedLogin | undefined;
  client<S extends DescService>(service: S): Client<S>;
}

/** Calls that take longer are abandoned: a CLI must not hang on a stuck connection. */
const CALL_TIMEOUT_MS = 30_000;

/**
 * The gateway URL and credentials of a command. URL: `--url`, else PORTCULLIS_URL, else the remembered
 * login's, else the local default — the same for every command and every kind of credential, so that a
 * token, key or password goes where the user's last login went rather than to a local port someone else
 * may listen on. Credentials: `--token` / `--api-key`, else PORTCULLIS_TOKEN / PORTCULLIS_API_KEY (the
 * token wins when both are set), else the remembered login — but only if it was made for this same URL,
 * so that its tokens are never sent to another server. With `anonymous`, no credentials are looked up
 * (login). A credentials file that cannot be trusted (readable by others, not a login) is refused even
 * when only its URL is needed: a URL planted there would redirect the credential.
 */
export async function connectToGateway(options: ConnectionOptions, env: NodeJS.ProcessEnv = process.env, mode: { anonymous?: boolean } = {}): Promise<GatewayConnection> {
  const credentialsFile = credentialsFilePath(env);
  const flagOrEnv = (flag: string | undefined, name: string) => (flag !== undefined ? flag : env[name]?.trim() || undefined);
  const explicitUrl = options.url !== undefined ? normalizeGatewayUrl(options.url, "--url") : env["PORTCULLIS_URL"]?.trim() ? normalizeGatewayUrl(env["PORTCULLIS_URL"], "PORTCULLIS_URL") : undefined;

  if (options.token !== undefined && options.apiKey !== undefined) throw new CommandError("give either --token or --api-key, not both", 2);
  // Anonymous calls (Login) carry no credentials at all: a stale PORTCULLIS_TOKEN must not fail a login.
  const token = mode.anonymous || options.apiKey !== undefined ? undefined : flagOrEnv(options.token, "PORTCULLIS_TOKEN");
  const apiKey = mode.anonymous || token !== undefined ? undefined : flagOrEnv(options.apiKey, "PORTCULLIS_API_KEY");
  for (const [value, name] of [
    [token, "the token"],
    [apiKey, "the API key"],
  ] as const) {
    // Header values cannot hold control characters; say so instead of failing inside the HTTP client.
    if (value !== undefined && !/^[\x21-\x7e]+$/.test(value)) throw new CommandError(`${name} contains spaces or characters that a credential cannot hold`, 2);
  }

  if (mode.anonymous || token !== undefined || apiKey !== undefined) {
    const url = explicitUrl ?? (await rememberedUrl(credentialsFile)) ?? DEFAULT_GATEWAY_URL;
    const header: Record<string, string> = token !== undefined ? { authorization: `Bearer ${token}` } : apiKey !== undefined ? { "x-api-key": apiKey } : {};
    const transport = createTransport(url, [staticHeaders(header)]);
    return {
      url,
      credentials: token !== undefined ? "token" : apiKey !== undefined ? "api-key" : "none",
      credentialsFile,
      login: undefined,
      client: (service) => createClient(service, transport),
    };
  }

  const stored = await readStoredLogin(credentialsFile);
  const url = explicitUrl ?? stored?.url ?? DEFAULT_GATEWAY_URL;
  if (stored === undefined) {
    throw new CommandError(`not logged in: run "portcullis login" (or set PORTCULLIS_TOKEN or PORTCULLIS_API_KEY)`);
  }
  if (stored.url !== url) {
    throw new CommandError(`the remembered login is for ${stored.url}, not ${url}: run "portcullis login --url ${url}"`);
  }
  const auth = createClient(AuthService, createTransport(url, []));
  const login = createRememberedLogin(credentialsFile, stored, (refreshToken) => auth.refresh({ refreshToken }));
  const transport = createTransport(url, [rememberedLoginHeader(login)]);
  return { url, credentials: "login", credentialsFile, login, client: (service) => createClient(service, transport) };
}

/** The URL of the remembered login, when there is one, for commands that use other credentials. */
async function rememberedUrl(credentialsFile: string): Promise<string | undefined> {
  try {
    return (await readStoredLogin(credentialsFile))?.url;
  } catch (err) {
    // Without a trustworthy file the intended gateway is unknown: ask rather than guess.
    throw new CommandError(`${oneLine(err)} (or pass --url or PORTCULLIS_URL to name the gateway)`);
  }
}

/** A Connect transport (HTTP/1.1: it works through any proxy, and a CLI makes a handful of calls). */
export function createTransport(url: string, interceptors: Interceptor[]): Transport {
  return createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors, defaultTimeoutMs: CALL_TIMEOUT_MS });
}

function staticHeaders(headers: Record<string, string>): Interceptor {
  return (next) => (req) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  };
}

/**
 * Sends the remembered login's access token, refreshed when it is about to expire; when the server
 * still finds it expired (clocks disagree), refreshes once and retries. Unary calls only are retried: a
 * stream's request messages may already be consumed.
 */
function rememberedLoginHeader(login: RememberedLogin): Interceptor {
  return (next) => async (req) => {
    const token = await login.accessToken();
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      if (req.stream || !isCredentialExpired(err)) throw err;
      req.header.set("authorization", `Bearer ${await login.accessToken({ rejected: token })}`);
      return next(req);
    }
  };
}
